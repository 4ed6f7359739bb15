"""Inline CSS in relayed HTML: the properties and functions we keep, and splitting a style
attribute into declarations. Pure; used by sanitize.py."""

from __future__ import annotations

import re

STYLE_PROPERTIES = frozenset({
    "color", "background", "background-color", "background-image", "background-position",
    "background-repeat", "background-size", "border", "border-top", "border-right", "border-bottom",
    "border-left", "border-color", "border-style", "border-width", "border-top-color",
    "border-right-color", "border-bottom-color", "border-left-color", "border-top-style",
    "border-right-style", "border-bottom-style", "border-left-style", "border-top-width",
    "border-right-width", "border-bottom-width", "border-left-width", "border-radius",
    "border-collapse", "border-spacing", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent", "text-transform",
    "line-height", "letter-spacing", "word-spacing", "white-space", "word-wrap", "word-break",
    "overflow-wrap", "vertical-align", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "width", "height", "min-width", "max-width", "min-height", "max-height", "display", "direction",
    "list-style-type", "table-layout", "caption-side", "empty-cells", "float", "clear", "overflow",
})
HOSTILE_PROPERTIES = frozenset({"behavior", "-moz-binding", "-ms-behavior"})
CSS_FUNCTIONS = frozenset({
    "rgb", "rgba", "hsl", "hsla", "calc", "url", "linear-gradient", "radial-gradient",
    "repeating-linear-gradient", "repeating-radial-gradient",
})
CSS_FORBIDDEN = ("\\", "/*", "expression", "javascript:", "vbscript:")
# The look-behind makes a match start only where a name starts: without it, a value of
# 100,000 letters is rescanned from every position (quadratic; minutes per message).
CSS_FUNCTION = re.compile(r"(?<![a-z0-9_-])([a-z0-9_-]*)\s*\(")
CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.IGNORECASE | re.DOTALL)

MAX_STYLE_CHARS = 20_000  # an inline style longer than this is dropped whole (real ones are < 2,000)


def declarations(style: str) -> list[str]:
    """Split an inline style on the semicolons outside quotes and parentheses."""
    parts, current, depth, quote = [], [], 0, ""
    for char in style:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
