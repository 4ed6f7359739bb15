"""Text helpers: HTML to text, and the new text of a reply split from its quoted history. Pure.

Splitting uses mail-parser-reply (English and French attribution lines, Outlook, Gmail,
Apple Mail and Thunderbird headers) and then our own rules for what it leaves behind:
'>'-quoted blocks, Outlook's separator lines and French/English header blocks.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3
from mailparser_reply.parser import EmailMessage

from gateway.mail.sanitize import MAX_NESTING_WORK, nesting_work, stripped_text, valid_text

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
# the same patterns as one alternation (a line starts history if any of them matches), and
# the two attributions a client may wrap over two lines
_HISTORY_START = re.compile("|".join(f"(?:{p.pattern})" for p in _HISTORY_STARTS), re.IGNORECASE)
_WRAPPED_ATTRIBUTION = re.compile("|".join(f"(?:{p.pattern})" for p in _HISTORY_STARTS[3:5]), re.IGNORECASE)
_ATTRIBUTION_FIRST_HALF = re.compile(r"^(on|le)\s.{4,200}$", re.IGNORECASE)


# mail-parser-reply's header pattern for our languages, compiled once (the library builds it
# again for every message).
_REPLY_HEADERS = EmailMessage(text="", languages=list(_LANGUAGES)).HEADER_REGEX


def _line_starts(text: str):
    """Every offset where one of the library's header alternatives can begin: each starts
    with '^' (multi-line) or with a newline, so a match begins at offset 0, at a newline or
    just after one."""
    yield 0
    index = text.find("\n")
    while index >= 0:
        if index:
            yield index
        yield index + 1
        index = text.find("\n", index + 1)


def _reply_headers(text: str) -> list[str]:
    """What `_REPLY_HEADERS.findall(text)` gives, flattened to its non-empty groups, as the
    library reads it. Trying the pattern only where a match can begin is the same search
    (findall's leftmost, non-overlapping matches) at a fortieth of the cost: the library's
    one alternation tried at every character was 1.3 ms of a 4 KB reply."""
    found: list[str] = []
    cursor = 0
    for start in _line_starts(text):
        if start < cursor:
            continue
        match = _REPLY_HEADERS.match(text, start)
        if match:
            found.extend(group for group in match.groups(default="") if group)
            cursor = max(match.end(), start + 1)
    return found


def latest_reply(text: str) -> str:
    """The first fragment of `text` that mail-parser-reply's `parse_reply` would give: the
    body split at the attribution and header lines of our languages, the first non-empty
    part kept. Only the fragments' content is read, not the signature and disclaimer
    patterns the library runs over every fragment and we never use."""
    message = EmailMessage(text=text, languages=list(_LANGUAGES), _header_regex=_REPLY_HEADERS)
    body = message.text  # the library's own normalising (line ends, stripped lines, separators)
    current = 0
    for header in _reply_headers(body):
        position = body.find(header, current + 1 if current > 0 else current)
        content = body[current:position].strip()
        current = position if position >= 0 else 0
        if content:
            return content
    return body[current:].strip()


_QUOTE_START, _QUOTE_END = "\x00qs\x00", "\x00qe\x00"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "blockquote":
            self.parts.append(f"\n{_QUOTE_START}\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self.parts.append(f"\n{_QUOTE_END}\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML; blockquotes become '>'-quoted lines.

    html5ever (through nh3) reads the HTML first and keeps only the tags that shape the
    text, so html.parser only ever sees well-formed markup: on malformed input (megabytes
    of `</` or `<!--`) html.parser alone takes time quadratic in the size. Past the
    nesting bound that makes html5ever itself slow, the tags are stripped by a linear regex.
    """
    html = valid_text(html)
    if nesting_work(html) > MAX_NESTING_WORK:
        return stripped_text(html)
    try:
        html = nh3.clean(html, tags=_BLOCK_TAGS | {"span"}, clean_content_tags=_SKIP_TAGS - {"head"},
                         attributes={}, strip_comments=True, link_rel=None)
    except Exception:  # html5ever meeting something new must not stop a message
        return stripped_text(html)
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    depth = 0
    lines = []
    for line in "".join(extractor.parts).replace("\xa0", " ").splitlines():
        if line == _QUOTE_START:
            depth += 1
            continue
        if line == _QUOTE_END:
            depth = max(0, depth - 1)
            continue
        line = re.sub(r"[ \t]+", " ", line).strip()
        lines.append(f"> {line}" if depth and line else line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _starts_history(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if _HISTORY_START.match(line):
        return True
    # an attribution wrapped over two lines by the client ("Le ... <\naddr> a écrit :")
    if index + 1 < len(lines) and _ATTRIBUTION_FIRST_HALF.match(line):
        return _WRAPPED_ATTRIBUTION.match(f"{line} {lines[index + 1].strip()}") is not None
    return False


def new_text(text: str) -> str:
    """The part of a reply its author wrote now, without quoted history.

    A reply written above the history keeps what is above it; a reply written below or
    between quoted lines (bottom-posting, inline answers) keeps the unquoted lines.
    """
    text = text.replace("\r\n", "\n")
    if _answers_between_quotes(text):
        return _unquoted_lines(text)  # an inline reply: every unquoted line is new text
    try:
        latest = latest_reply(text)
    except Exception:  # the library's regexes must never stop a message; fall back to our rules
        latest = text
    lines = latest.splitlines()
    kept: list[str] = []
    for index in range(len(lines)):
        if _starts_history(lines, index):
            break
        kept.append(lines[index])
    result = "\n".join(kept).strip()
    if result:
        return result
    return _unquoted_lines(text) or _written_lines(text)


_OUTLOOK_BLOCK_RE = re.compile(r"^(-{2,}|_{10,}|(from|de|von)\s*:)", re.IGNORECASE)


def _answers_between_quotes(text: str) -> bool:
    """Whether the author answered between quoted lines: below the first '>'-quoted line
    of the history there is an unquoted line of their own (not an attribution, not the
    start of an Outlook header block, whose unquoted history is not theirs)."""
    lines = text.splitlines()
    start = next((i for i in range(len(lines)) if _starts_history(lines, i)), None)
    if start is None or _OUTLOOK_BLOCK_RE.match(lines[start].strip()):
        return False
    seen_quote = False
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(">"):
            seen_quote = True
        elif stripped and seen_quote:
            if _OUTLOOK_BLOCK_RE.match(stripped):
                return False
            if not _starts_history(lines, index) and not _attribution_tail(lines, index):
                return True
    return False


def _attribution_tail(lines: list[str], index: int) -> bool:
    """The second line of an attribution the client wrapped ("Le lun. ... <\naddr> a écrit :")."""
    return index > 0 and _starts_history(lines, index - 1) and not lines[index - 1].strip().startswith(">")


def _written_lines(text: str) -> str:
    """Every unquoted line: the last resort, so that a person's words are never lost."""
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith(">")).strip()


def _unquoted_lines(text: str) -> str:
    """Lines outside quotes and attributions: the answer of a bottom-posted or inline reply."""
    lines = text.splitlines()
    kept = []
    skip_next = False
    for index, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if _starts_history(lines, index):
            if not _HISTORY_START.match(stripped):
                skip_next = True  # the second half of a wrapped attribution
            if re.match(r"^-{2,}|^_{10,}", stripped):
                break  # an Outlook header block: everything below is history
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
