"""HTML → text words plus tokens for its structure (which tags, hidden text, remote images, links).

Parsed with selectolax's lexbor engine, an HTML5 parser in C that repairs broken markup as a
browser does, much faster than the stdlib `html.parser` (bench/results/spam_speed.md) and with
alike tokens (tags, attributes, text outside script and style, comments).
Spam of 2002 is mostly HTML with <font> soup, remote images and text hidden by colour or
display:none; ham HTML is rare and plain. Which tags are used is a token, how many of each is not:
counts describe a mailing template, and later ham (commercial newsletters) uses the same templates
as spam; neither SpamBayes nor SpamAssassin's Bayes counts tags (bench/results/spam_accuracy.md).
The caller cuts the HTML to its budget before it gets here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from selectolax.lexbor import LexborHTMLParser

_SEEN_TAGS = frozenset(
    "font img table td a b i u center br p div span form input map area meta style script iframe".split()
)
_SKIP_TEXT = ["script", "style"]
_HIDING = ("display:none", "visibility:hidden", "font-size:0")
_MAX_URLS = 50


class _Structure:
    """Tags used, link targets and signs of hidden text, gathered from the elements."""

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.marks: set[str] = set()

    def element(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "-comment":
            self.marks.add("html:comment")
            return
        if tag in _SEEN_TAGS:
            self.tags.add(tag)
        if attrs:
            self._look_at(tag, {k.lower(): (v or "").lower() for k, v in attrs.items()})
        elif tag == "img":
            self.marks.add("html:img:local")

    def _look_at(self, tag: str, attrs: dict[str, str]) -> None:
        style = attrs.get("style", "").replace(" ", "")
        if any(hiding in style for hiding in _HIDING):
            self.marks.add("html:hidden-style")
        if tag == "font" and attrs.get("color") in ("#ffffff", "white", "#fff"):
            self.marks.add("html:white-font")
        if tag == "font" and attrs.get("size", "").strip() in ("1", "-1", "-2", "0"):
            self.marks.add("html:tiny-font")
        target = attrs.get("href") or (attrs.get("src") if tag == "img" else "")
        if target and len(self.urls) < _MAX_URLS:
            self.urls.append(target)
        if tag == "img":
            self.marks.add("html:img:remote" if attrs.get("src", "").startswith("http") else "html:img:local")


def html_tokens(html: str, text_tokens: Callable[[str], Iterable[str]]) -> Iterator[str]:
    """Structure tokens, then the tokens `text_tokens` finds in the text and the link targets."""
    structure, text = _Structure(), ""
    try:
        tree = LexborHTMLParser(html.encode("utf-8", "replace"))
        if tree.root is not None:  # None: nothing to parse
            for node in tree.root.traverse():
                structure.element(node.tag or "", node.attributes)
            tree.strip_tags(_SKIP_TEXT)
            text = tree.root.text(separator=" ")
    except Exception:  # noqa: BLE001 — lexbor repairs any markup; this is for its own failures (memory)
        yield "html:parse-error"
    yield "html:present"
    yield from sorted(structure.marks)
    yield from (f"html:{tag}" for tag in sorted(structure.tags))
    yield from text_tokens(" ".join(structure.urls))
    yield from text_tokens(text)
