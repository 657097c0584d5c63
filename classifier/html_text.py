"""HTML → text words plus tokens for its structure (tag counts, hidden text, remote images, links).

Uses the stdlib `html.parser`, which never raises on broken markup. Spam of 2002 is mostly HTML
with <font> soup, remote images and text hidden by colour or display:none; ham HTML is rare and
plain. The caller cuts the HTML to its budget before it gets here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser

_COUNTED_TAGS = frozenset("font img table td a b i u center br p div span form input map area meta style script iframe".split())
_SKIP_TEXT = frozenset(("script", "style"))
_HIDING = ("display:none", "visibility:hidden", "font-size:0", "font-size: 0", "display: none")


class _Collector(HTMLParser):
    """Collects text, tag counts, link targets and signs of hidden text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: Counter[str] = Counter()
        self.urls: list[str] = []
        self.marks: set[str] = set()
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _COUNTED_TAGS:
            self.tags[tag] += 1
        if tag in _SKIP_TEXT:
            self._skipping += 1
        values = {k: (v or "").lower() for k, v in attrs}
        self._look_at(tag, values)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TEXT and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.marks.add("html:comment")

    def _look_at(self, tag: str, attrs: dict[str, str]) -> None:
        style = attrs.get("style", "").replace(" ", "")
        if any(h.replace(" ", "") in style for h in _HIDING):
            self.marks.add("html:hidden-style")
        if tag == "font" and attrs.get("color") in ("#ffffff", "white", "#fff"):
            self.marks.add("html:white-font")
        if tag == "font" and attrs.get("size", "").strip() in ("1", "-1", "-2", "0"):
            self.marks.add("html:tiny-font")
        target = attrs.get("href") or (attrs.get("src") if tag == "img" else "")
        if target and len(self.urls) < 50:
            self.urls.append(target)
        if tag == "img":
            self.marks.add("html:img:remote" if attrs.get("src", "").startswith("http") else "html:img:local")


def html_tokens(html: str, text_tokens: Callable[[str], Iterable[str]]) -> Iterator[str]:
    """Structure tokens, then the tokens `text_tokens` finds in the text and the link targets."""
    collector = _Collector()
    try:
        collector.feed(html)
        collector.close()
    except (AssertionError, ValueError):  # html.parser's rare complaints about malformed markup
        yield "html:parse-error"
    yield "html:present"
    yield from sorted(collector.marks)
    for tag, count in sorted(collector.tags.items()):
        yield f"html:{tag}"
        yield f"html:{tag}:{log_bucket(count)}"
    yield from text_tokens(" ".join(collector.urls))
    yield from text_tokens(" ".join(collector.text))


def log_bucket(n: int) -> int:
    """0, 1, 2, 4, 8, ...: a logarithmic bucket so counts generalise."""
    return 0 if n <= 0 else 1 << (n.bit_length() - 1)
