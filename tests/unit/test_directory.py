"""Calendars and vCards: address fields answer through the case, the rest is scrubbed,
unchanged lines keep their bytes."""

from __future__ import annotations

from gateway.mail.directory import scrub_calendar, scrub_vcard
from gateway.mail.scrub import AddressScrubber

OWN = "case+k3q7-c-abcdefgh@disputes.test"
SCRUBBER = AddressScrubber.build(["support@shop.test", "bob@shop.test"], domain="disputes.test",
                                 case_reference="k3q7", own_address=OWN, locale="en")


def _no_html(html: str) -> str:
    return "<sanitised/>"


def test_address_properties_and_mailto_parameters_get_the_case_address():
    calendar = ("BEGIN:VEVENT\r\nORGANIZER;CN=\"Shop\";SENT-BY=\"mailto:bob@shop.test\":MAILTO:support@shop.test\r\n"
                "ATTENDEE;CN=support@shop.test:mailto:x@other.test\r\nEND:VEVENT\r\n")
    out = scrub_calendar(calendar, SCRUBBER, _no_html)
    assert f'SENT-BY="mailto:{OWN}"' in out and f":mailto:{OWN}\r\n" in out.replace("\r\n ", "")
    assert "ATTENDEE;CN=[address hidden]:mailto:x@other.test" in out


def test_unchanged_lines_keep_their_folding_and_changed_ones_are_folded():
    long_summary = "SUMMARY:" + "a" * 60 + "\r\n " + "b" * 10
    calendar = f"BEGIN:VEVENT\r\n{long_summary}\r\nDESCRIPTION:{'x' * 60} support@shop.test\r\nEND:VEVENT\r\n"
    out = scrub_calendar(calendar, SCRUBBER, _no_html)
    assert long_summary in out
    assert all(len(line.encode()) <= 75 for line in out.split("\r\n"))  # the changed line was 90
    assert "[address hidden]" in out.replace("\r\n ", "")


def test_the_html_description_is_sanitised():
    out = scrub_calendar("X-ALT-DESC;FMTTYPE=text/html:<script>x</script>\r\n", SCRUBBER, _no_html)
    assert out == "X-ALT-DESC;FMTTYPE=text/html:<sanitised/>\r\n"


def test_vcard_quoted_printable_and_base64_values_are_decoded_first():
    card = ("BEGIN:VCARD\nVERSION:2.1\nEMAIL;INTERNET;QUOTED-PRINTABLE:support=40sh=\nop.test\n"
            "NOTE;ENCODING=b:Ym9iQHNob3AudGVzdA==\nPHOTO;ENCODING=b:iVBORw0KGgo=\nEND:VCARD\n")
    out = scrub_vcard(card, SCRUBBER, _no_html)
    assert f"EMAIL;INTERNET;CHARSET=UTF-8:{OWN}" in out and "NOTE:[address hidden]" in out
    assert "PHOTO;ENCODING=b:iVBORw0KGgo=" in out


def test_a_card_without_hidden_addresses_is_unchanged():
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:x@other.test\r\nNOTE;ENCODING=QUOTED-PRINTABLE:caf=C3=A9\r\nEND:VCARD\r\n"
    assert scrub_vcard(card, SCRUBBER, _no_html) == card
