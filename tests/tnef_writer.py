"""A minimal TNEF (winmail.dat) writer for tests: the attributes Outlook writes for a plain
message with file attachments (MS-OXTNEF 2.1.3), so the relay's unpacking is tested on the
format itself rather than on a stand-in."""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 1, 2
# (attribute id, attribute type) from MS-OXTNEF 2.1.3.2
ATT_TNEF_VERSION = (0x9006, 0x0008)
ATT_OEM_CODEPAGE = (0x9007, 0x0006)
ATT_MESSAGE_CLASS = (0x8008, 0x0007)
ATT_SUBJECT = (0x8004, 0x0001)
ATT_BODY = (0x800C, 0x0002)
ATT_ATTACH_REND_DATA = (0x9002, 0x0006)
ATT_ATTACH_TITLE = (0x8010, 0x0001)
ATT_ATTACH_DATA = (0x800F, 0x0006)


def _attribute(level: int, attribute: tuple[int, int], data: bytes) -> bytes:
    name, kind = attribute
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def winmail(*, sender: str, subject: str, body: str, files: list[tuple[str, bytes]]) -> bytes:
    """A winmail.dat whose sender, subject, body and attachments are the given ones."""
    out = struct.pack("<IH", SIGNATURE, 0x1234)
    out += _attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000))
    out += _attribute(LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0))
    out += _attribute(LVL_MESSAGE, ATT_MESSAGE_CLASS, b"IPM.Microsoft Mail.Note\x00")
    out += _attribute(LVL_MESSAGE, ATT_SUBJECT, f"{subject} [{sender}]".encode("cp1252") + b"\x00")
    out += _attribute(LVL_MESSAGE, ATT_BODY, body.encode("cp1252"))
    for name, data in files:
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, b"\x01\x00" + b"\xff" * 12)
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_TITLE, name.encode("cp1252") + b"\x00")
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_DATA, data)
    return out
