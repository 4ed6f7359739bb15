"""Text helpers: HTML to text, and the new text of a reply split from its quoted history. Pure.

Splitting uses mail-parser-reply (English and French attribution lines, Outlook, Gmail,
Apple Mail and Thunderbird headers) and then our own rules for what it leaves behind:
'>'-quoted blocks, Outlook's separator lines and French/English header blocks.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

_LANGUAGES = ["en", "fr", "de", "es", "it"]
_BLOCK_TAGS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr", "pre"}
_SKIP_TAGS = {"script", "style", "head", "title"}
# Lines that start quoted history which mail-parser-reply does not always catch.
_HISTORY_STARTS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^-{2,}\s*(original message|message d'origine|message original|mensaje original|ursprüngliche nachricht)\s*-{2,}",
        r"^_{10,}\s*$",  # Outlook web: a line of underscores before From:/De :
        r"^(from|de|von)\s*:\s.*@",  # Outlook header block
        r"^on .{4,200} wrote:\s*$",
        r"^le .{4,200} a écrit\s*:\s*$",
        r"^>",
    )
]


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._in_quote = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "blockquote":
            self._in_quote += 1
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._in_quote = max(0, self._in_quote - 1)
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_quote:
            data = "\n".join("> " + line for line in data.splitlines() if line.strip())
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML; blockquotes become '>'-quoted lines."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # html.parser is lenient; this guards against pathological input
        return re.sub(r"<[^>]+>", " ", html)
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def new_text(text: str) -> str:
    """The part of a reply its author wrote now, without quoted history or signature."""
    text = text.replace("\r\n", "\n")
    try:
        latest = EmailReplyParser(languages=_LANGUAGES).parse_reply(text=text) or ""
    except Exception:  # the library's regexes must never stop a message; fall back to our rules
        latest = text
    kept: list[str] = []
    for line in latest.splitlines():
        if any(pattern.match(line.strip()) for pattern in _HISTORY_STARTS):
            break
        kept.append(line)
    return "\n".join(kept).strip()
