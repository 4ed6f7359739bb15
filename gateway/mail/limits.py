"""Bounded work per message: a raw message cut down to what the pipeline handles in bounded
time, with what was cut said in words. Pure.

The email package and the helpers after it cost more than linear time on some hostile
shapes: MIME nested a thousand deep (the parser recurses once per level and raises
RecursionError), a hundred thousand header fields (every header lookup and deletion walks
them all), megabytes of RFC 2047 words in one field. `bound` reads the raw bytes once,
linearly, and returns a copy without the excess: header fields past `max_header_fields` or
past `max_header_bytes` of a header block (the MIME fields of a part are always kept),
fields longer than `max_header_field_bytes` shortened, and MIME parts past `max_parts` or
deeper than `max_depth` dropped, the multiparts left open closed properly. The stored raw
message is never changed; only what processing reads is bounded. A message within the
limits comes back as the same bytes object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from gateway.settings import Limits  # noqa: F401 - the bounds are settings ([hygiene]); read here


@dataclass(frozen=True)
class Bounded:
    raw: bytes
    notes: tuple[str, ...] = ()  # what was dropped, for the case history and the log

    @property
    def limited(self) -> bool:
        return bool(self.notes)


_LINE_END = re.compile(rb"\r\n|\n|\r")
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # used with .match(raw, pos): anchored at pos
_STRUCTURAL = ("content-", "mime-version")
_LINE_BREAK = (-1, -1)


def bound(raw: bytes, limits: Limits = Limits()) -> Bounded:
    """`raw` within `limits`; see the module docstring."""
    return _Scanner(raw, limits).run()


@dataclass
class _Block:
    end: int  # where the header block ends (the blank line included)
    body: int  # where the entity's body starts
    content_type: str  # lower-case main type, "" when absent
    boundary: bytes | None
    kept: list[tuple[int, int]]  # byte ranges of the block to keep
    changed: bool


class _Scanner:
    def __init__(self, raw: bytes, limits: Limits) -> None:
        self.raw = raw
        self.limits = limits
        self.notes: dict[str, int] = {}
        self.out: list[bytes | memoryview] = []
        self.copied = 0  # raw[:copied] is accounted for in `out`
        self.changed = False

    # --- output -------------------------------------------------------------------------------
    def _note(self, text: str, count: int = 1) -> None:
        self.notes[text] = self.notes.get(text, 0) + count

    def _emit_block(self, start: int, block: _Block) -> None:
        """Copy up to `start`, then only the kept ranges of the header block (a range of
        (-1, -1) is the line end of a shortened field)."""
        if not block.changed:
            return
        self._copy_to(start)
        for begin, end in block.kept:
            self.out.append(b"\r\n" if begin < 0 else self.raw[begin:end])
        self.copied = block.end
        self.changed = True

    def _copy_to(self, position: int) -> None:
        if position > self.copied:
            self.out.append(self.raw[self.copied:position])
            self.copied = position

    def _cut(self, position: int, open_boundaries: list[bytes], why: str) -> Bounded:
        """Drop everything from `position` and close the multiparts still open."""
        self._copy_to(position)
        self._note(why)
        closing = b"".join(b"\r\n--" + boundary + b"--\r\n" for boundary in reversed(open_boundaries))
        self.out.append(closing)
        self.changed = True
        return self._result(done=True)

    def _result(self, *, done: bool = False) -> Bounded:
        notes = tuple(f"{text} ({count})" if count > 1 else text for text, count in self.notes.items())
        if not self.changed:
            return Bounded(self.raw, notes)
        if not done:
            self._copy_to(len(self.raw))
        return Bounded(b"".join(self.out), notes)

    # --- reading ------------------------------------------------------------------------------
    def _line_end(self, position: int) -> tuple[int, int]:
        """(end of the line's content, start of the next line) from `position`."""
        match = _LINE_END.search(self.raw, position)
        if match is None:
            return len(self.raw), len(self.raw)
        return match.start(), match.end()

    def _header_block(self, start: int) -> _Block:
        """The header block from `start` to its blank line, fields counted and bounded."""
        limits = self.limits
        raw = self.raw
        position = start
        kept: list[tuple[int, int]] = []
        fields = dropped = block_bytes = 0
        changed = False
        content_type = b""
        while position < len(raw):
            line_end, next_line = self._line_end(position)
            if line_end == position:  # the blank line ending the block
                kept.append((position, next_line))
                return self._finish(start, next_line, next_line, content_type, kept, changed, dropped)
            match = _FIELD.match(raw, position, min(position + 200, line_end))
            if match is None:  # not a header field: the body starts here (no blank line), as the parser reads it
                return self._finish(start, position, position, content_type, kept, changed, dropped)
            field_start = position
            position = next_line
            while position < len(raw) and raw[position:position + 1] in (b" ", b"\t"):  # folded lines
                position = self._line_end(position)[1]
            name = match.group(1).lower().decode("ascii")
            size = position - field_start
            if name.startswith(_STRUCTURAL):
                if name == "content-type":
                    content_type = raw[field_start:position]
                kept.append((field_start, position))
                continue
            fields += 1
            shortened = size > limits.max_header_field_bytes
            block_bytes += min(size, limits.max_header_field_bytes)
            if fields > limits.max_header_fields or block_bytes > limits.max_header_bytes:
                dropped += 1
                changed = True
                continue
            if shortened:
                self._note(f"a header field longer than {limits.max_header_field_bytes} bytes was shortened")
                kept.append((field_start, field_start + limits.max_header_field_bytes))
                kept.append(_LINE_BREAK)
                changed = True
                continue
            kept.append((field_start, position))
        return self._finish(start, len(raw), len(raw), content_type, kept, changed, dropped)

    def _finish(self, _start: int, end: int, body: int, content_type_field: bytes,
                kept: list[tuple[int, int]], changed: bool, dropped: int) -> _Block:
        if dropped:
            self._note(f"header fields past {self.limits.max_header_fields} fields or "
                       f"{self.limits.max_header_bytes} bytes were dropped", dropped)
        main, boundary = _content_type(content_type_field)
        return _Block(end, body, main, boundary, kept, changed)

    # --- the walk -----------------------------------------------------------------------------
    def run(self) -> Bounded:
        block = self._header_block(0)
        self._emit_block(0, block)
        stack: list[bytes] = []  # open multipart boundaries, outermost first
        depth_of_entity = 0
        parts = 0
        position = block.body
        entity = block
        while True:
            # descend into what the current entity holds
            if entity.content_type == "multipart" and entity.boundary:
                if depth_of_entity + 1 > self.limits.max_depth:
                    return self._cut(position, stack, f"MIME parts nested deeper than {self.limits.max_depth} "
                                                      "levels were dropped")
                stack.append(entity.boundary)
            elif entity.content_type == "message":
                if depth_of_entity + 1 > self.limits.max_depth:
                    return self._cut(position, stack, f"messages attached deeper than {self.limits.max_depth} "
                                                      "levels were dropped")
                depth_of_entity += 1
                inner = self._header_block(position)
                self._emit_block(position, inner)
                entity, position = inner, inner.body
                continue
            if not stack:
                return self._result()
            found = self._next_delimiter(position, stack)
            if found is None:
                return self._result()
            line_start, next_line, index, closing = found
            del stack[index + 1:]  # inner multiparts end with their parent's delimiter
            if closing:
                stack.pop()
                position = next_line
                if not stack:
                    return self._result()
                entity = _Block(next_line, next_line, "", None, [], False)  # keep looking for the parent's
                depth_of_entity = len(stack)
                continue
            parts += 1
            if parts > self.limits.max_parts:
                return self._cut(line_start, stack, f"MIME parts past the first {self.limits.max_parts} were dropped")
            depth_of_entity = len(stack)
            entity = self._header_block(next_line)
            self._emit_block(next_line, entity)
            position = entity.body

    def _next_delimiter(self, position: int, stack: list[bytes]) -> tuple[int, int, int, bool] | None:
        """The next delimiter line of any open multipart: (line start, next line, which, closing).

        A delimiter line is "--", an open boundary, "--" when it closes, then only spaces or
        tabs and at most one CR before the line feed (or the end); where several boundaries
        fit, the innermost one. Candidates are found with `bytes.find`: a regular expression
        anchored at line starts tries every byte of the body, about 40 ms per megabyte (a
        second for a 25 MB message, per read)."""
        raw = self.raw
        innermost_first = list(dict.fromkeys(reversed(stack)))
        for start in _lines_starting_with_dashes(raw, position):
            for boundary in innermost_first:
                after = start + 2 + len(boundary)
                if not raw.startswith(boundary, start + 2):
                    continue
                line_end = raw.find(b"\n", after)
                line_end = len(raw) if line_end < 0 else line_end
                closing = raw.startswith(b"--", after) and _only_blanks(raw, after + 2, line_end)
                if not closing and not _only_blanks(raw, after, line_end):
                    continue
                index = max(i for i, b in enumerate(stack) if b == boundary)
                next_line = self._line_end(line_end)[1] if line_end < len(raw) else len(raw)
                return start, next_line, index, closing
        return None


def _lines_starting_with_dashes(raw: bytes, position: int):
    """Where the lines from `position` on that begin with "--" start (a line starts at the
    beginning of `raw` and after each LF)."""
    if position == 0 and raw.startswith(b"--"):
        yield 0
    at = max(position - 1, 0)
    while (found := raw.find(b"\n--", at)) >= 0:
        yield found + 1
        at = found + 1


def _only_blanks(raw: bytes, start: int, end: int) -> bool:
    """raw[start:end] is spaces and tabs, then at most one CR."""
    rest = raw[start:end]
    if rest.endswith(b"\r"):
        rest = rest[:-1]
    return not rest.translate(None, b" \t")


def _content_type(field: bytes) -> tuple[str, bytes | None]:
    """(main type, multipart boundary) of a raw Content-Type field ("" and None when absent)."""
    if not field:
        return "", None
    holder = Message()
    try:
        holder["Content-Type"] = field.split(b":", 1)[1].decode("ascii", "replace").strip()
        main = holder.get_content_maintype()
        boundary = holder.get_boundary()
    except Exception:  # a field the email package cannot read: the parser will not nest it either
        return "", None
    if main == "multipart" and boundary:
        return "multipart", boundary.encode("ascii", "replace")
    if holder.get_content_type() in ("message/rfc822", "message/global"):
        return "message", None
    return main, None
