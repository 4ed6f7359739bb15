"""Messages read from bytes and written back out as bytes, at a cost that does not grow
with their size more than it must. Pure.

`email.message_from_bytes` first decodes the whole message to one string and wraps it
in a StringIO, which holds it at four bytes a character: a 25 MB message briefly takes
about 156 MiB before parsing starts. `from_bytes` feeds the same parser the same 8192
characters at a time straight from the bytes (about 40 MiB at the peak, the same tree).

The parser itself still reads every line in Python: 0.5 s for the 340,000 base64 lines of
a 25 MB message with photos, read twice on the way (the reading, the relay). Those lines can
never be a header or a boundary, so `from_bytes` hands the parser one placeholder line for
each long run of them and puts the runs back into the bodies afterwards: the same tree.

The generator turns every line ending of a body into the policy's one line by line: a
Python call per line, a third of a second for the 450,000 lines of a 25 MB message with
photos. `to_bytes` writes the same bytes with one substitution per body.
"""

from __future__ import annotations

import re
import secrets
from email.feedparser import FeedParser
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Policy, compat32
from io import BytesIO

_CHUNK = 8192  # what email.parser.Parser reads from its StringIO per call
_LINE_END = re.compile(r"\r\n|\r|\n")  # what the generator splits on


# A run of lines of base64's alphabet, from a line start: nothing the parser looks for (a
# header needs a colon, a continuation a space, a boundary two dashes, "From " a space).
RUN_LINES = 256
_RUN = re.compile(rb"(?<![^\r\n])(?:[A-Za-z0-9+/=]{1,998}(?:\r\n|\n|\r)){%d,}" % RUN_LINES)
FAST_PATH_BYTES = 256 * 1024  # below this, runs are too short to be worth the scan


def from_bytes(raw: bytes) -> Message:
    """`email.message_from_bytes(raw, policy=compat32)`, without the copies of the whole,
    and with long base64 runs set aside while the parser reads the rest."""
    runs = list(_RUN.finditer(raw)) if len(raw) >= FAST_PATH_BYTES else []
    if not runs:
        return _parsed(raw)
    marker = _marker_absent_from(raw)
    pieces, kept, last = [], {}, 0
    for number, run in enumerate(runs):
        start, end = run.span()
        line_end = b"\r\n" if raw.endswith(b"\r\n", start, end) else raw[end - 1:end]
        name = f"{marker}N{number}"
        pieces += (raw[last:start], name.encode("ascii"), line_end)
        kept[name] = (raw[start:end].decode("ascii"), line_end.decode("ascii"))
        last = end
    pieces.append(raw[last:])
    message = _parsed(b"".join(pieces))
    _put_back(message, re.compile(re.escape(marker) + r"N\d+"), kept)
    return message


def _parsed(raw: bytes) -> Message:
    parser = FeedParser(policy=compat32)
    for start in range(0, len(raw), _CHUNK):
        parser.feed(raw[start:start + _CHUNK].decode("ascii", "surrogateescape"))
    return parser.close()


def _marker_absent_from(raw: bytes) -> str:
    while True:
        marker = "DGWIRE" + secrets.token_hex(8)
        if marker.encode("ascii") not in raw:
            return marker


def _put_back(message: Message, names: re.Pattern, kept: dict[str, tuple[str, str]]) -> None:
    """Each placeholder line back to its run. The parser drops the line end before a boundary:
    a placeholder without its line end gives its run without the last one."""

    def restored(value):
        if not isinstance(value, str) or "DGWIRE" not in value:
            return value
        out, last = [], 0
        for found in names.finditer(value):
            text, line_end = kept[found.group(0)]
            out.append(value[last:found.start()])
            if value.startswith(line_end, found.end()):
                out.append(text)
                last = found.end() + len(line_end)
            else:
                out.append(text[:-len(line_end)])
                last = found.end()
        out.append(value[last:])
        return "".join(out)

    for part in message.walk():
        part._payload = restored(part._payload)
        part.preamble = restored(part.preamble)
        part.epilogue = restored(part.epilogue)


class _Generator(BytesGenerator):
    def _write_lines(self, lines: str) -> None:
        # the generator's own loop writes each line, then the policy's line ending after
        # every line but the last (which it writes only when not empty): the same substitution
        if lines:
            self.write(_LINE_END.sub(self._NL, lines))


def to_bytes(message: Message, policy: Policy) -> bytes:
    """`message.as_bytes(policy=policy)`, without the cost per line."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=policy).flatten(message, unixfrom=False)
    return out.getvalue()
