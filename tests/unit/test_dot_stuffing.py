"""What the smarthost receives in DATA: every line that starts with a dot gets a second one
(RFC 5321 4.5.2), exactly as smtplib's sendmail sends it, so the receiver strips them back."""

from __future__ import annotations

import smtplib

import pytest

from gateway.transport import dot_stuffed


@pytest.mark.parametrize("raw", [
    b"", b".", b"..", b".\r\n", b"a\r\n.\r\nb", b"a\r\n..b\r\n", b"\n.\n.\n", b".start\r\nmiddle\r\n.end",
    b"no dots here\r\n", b"a.b\r\n c.\r\n", b"\r.\r\n", b"x\n...\n.",
])
def test_lines_starting_with_a_dot_get_a_second_one_as_smtplib_sends_them(raw):
    assert dot_stuffed(raw) == smtplib._quote_periods(raw)  # noqa: SLF001 - what sendmail sends


def test_a_large_body_is_stuffed_the_same():
    raw = b"".join(b".line %d\r\n" % n if n % 7 == 0 else b"line %d.\r\n" % n for n in range(50_000))
    assert dot_stuffed(raw) == smtplib._quote_periods(raw)  # noqa: SLF001
