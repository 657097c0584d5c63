"""HTML mail made safe to show: sanitised by nh3 (ammonia), then shown in a sandboxed iframe under a
strict Content-Security-Policy (`body_policy`), so a mistake in one layer is caught by the next.

- No script in any form: <script> and <style> go with their content, event-handler attributes and
  javascript: (or data:) links go; the iframe's sandbox has no allow-scripts and the CSP no script-src.
- No request leaves for the sender's servers until the agent asks: remote images lose their src
  (they are counted, for the "load images" banner) and the CSP allows images from data: only;
  CSS may not name a URL, as only properties that cannot take url() are kept.
- `cid:` images are taken from the same message's inline parts and inlined as data: URIs, so the
  sandboxed frame, which has no cookies of ours, needs no request to us either.
- Links open in a new tab without a referrer.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass

import nh3

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_INLINE_IMAGE = 5 * 1024 * 1024

_TAGS = nh3.ALLOWED_TAGS | {"font"}
_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
_ATTRIBUTES.setdefault("*", set()).update({"style", "align", "valign", "width", "height", "bgcolor", "dir"})
_ATTRIBUTES["a"] = {"href", "title"}
_ATTRIBUTES["img"] = {"src", "alt", "title", "width", "height"}
_ATTRIBUTES["font"] = {"color", "face", "size"}
for _tag in ("table", "td", "th"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"border", "cellpadding", "cellspacing", "colspan", "rowspan"})
# CSS properties that take no URL (background and list-style-image would; so could content).
_STYLES = frozenset(
    """
    color background-color font font-family font-size font-style font-weight font-variant
    text-align text-decoration text-indent text-transform line-height letter-spacing word-spacing
    white-space vertical-align direction width height max-width min-width max-height min-height
    margin margin-top margin-right margin-bottom margin-left padding padding-top padding-right
    padding-bottom padding-left border border-top border-right border-bottom border-left
    border-color border-style border-width border-collapse border-spacing border-radius
    display float clear list-style-type table-layout
""".split()
)
_LINK_SCHEMES = ("http:", "https:", "mailto:")


@dataclass(frozen=True)
class InlineImage:
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Shown:
    html: str
    remote_images: int  # remote images blocked (or, when allowed, left in)


def sanitise(html: str, cid_images: dict[str, InlineImage], allow_remote: bool = False) -> Shown:
    """The mail's HTML as a fragment safe to put in the sandboxed frame."""
    remote = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        lowered = value.strip().lower()
        if tag == "img" and attribute == "src":
            if lowered.startswith(("http:", "https:", "//")):
                remote += 1
                return value if allow_remote and not lowered.startswith("//") else None
            if lowered.startswith("cid:"):
                return _data_uri(cid_images.get(_cid(value)))
            if lowered.startswith("data:"):
                return value if lowered.startswith(tuple(f"data:{t};" for t in IMAGE_TYPES)) else None
            return None
        if tag == "a" and attribute == "href":
            return value if lowered.startswith(_LINK_SCHEMES) or lowered.startswith("#") else None
        return value

    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLES,
        strip_comments=True,
    )
    return Shown(cleaned, remote)


def _cid(value: str) -> str:
    return value.strip()[4:].strip("<>").lower()


def _data_uri(image: InlineImage | None) -> str | None:
    if image is None or image.content_type not in IMAGE_TYPES or len(image.data) > MAX_INLINE_IMAGE:
        return None
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def body_policy(allow_remote: bool) -> str:
    """The Content-Security-Policy of the framed body: nothing but inline styles and data: images
    (and, once the agent asked, remote images)."""
    images = "data: http: https:" if allow_remote else "data:"
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )


DOCUMENT = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<style>body{{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:12px;
overflow-wrap:anywhere}} img{{max-width:100%;height:auto}} table{{max-width:100%}}</style></head>
<body>{body}</body></html>"""
