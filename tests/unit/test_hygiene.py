"""The relay transform end to end: real .eml scenarios through compose_relay, checked on the wire."""

from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from gateway.mail.attachments import DISGUISED, EXECUTABLE, EXECUTABLE_CONTENT, TOO_MANY, AttachmentPolicy, is_attachment
from gateway.mail.compose import Envelope, compose_relay
from gateway.mail.hygiene import Report, notice, relay_transform
from gateway.mail.parts import neutral_content_id
from gateway.mail.rewrite import remove_lines
from gateway.mail.sanitize import (
    CONDITIONAL_COMMENT,
    EVENT_HANDLER,
    FORM,
    FRAME,
    META_REFRESH,
    SCRIPT,
    SCRIPT_LINK,
    STYLESHEET,
    SVG,
)

MAIL = Path(__file__).resolve().parent.parent / "mail"
KEY = "test-secret-key-number-one-0001"
ENVELOPE = Envelope(
    from_name="Carol (customer) via Disputes",
    from_address="case+abcd2345-c-2q3fn2ozjdzpobvx@disputes.test",
    to_address="support@shop.test",
    subject="Re: [Case ABCD2345] Parcel never arrived",
    message_id="<abcd2345.1@disputes.test>",
    date=datetime(2024, 9, 17, 19, 0, 5, tzinfo=timezone.utc),
)
SCENARIOS = ["hostile_html.eml", "executable_attachment.eml", "double_extension.eml", "too_many_attachments.eml",
             "tracking_pixel.eml", "cid_inline_image.eml"]
EN = "[Removed by the dispute service: "
FR = "[Supprimé par le service de litiges : "


def relay(name: str, *, locale: str = "en", block: bool = True, policy: AttachmentPolicy | None = None,
          also=None, raw: bytes | None = None) -> tuple[bytes, Message, Report]:
    """compose_relay with the hygiene transform: (wire bytes, parsed back, report)."""
    transform, report = relay_transform(policy=policy or AttachmentPolicy(), block_remote_images=block,
                                        locale=locale, also=also)
    out = compose_relay(raw if raw is not None else (MAIL / name).read_bytes(), ENVELOPE, key=KEY, transform=transform)
    return out, email.message_from_bytes(out, policy=compat32), report


def texts(message: Message, kind: str) -> list[str]:
    """Decoded body parts of one type (attachments excluded)."""
    return [part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            for part in message.walk()
            if part.get_content_type() == kind and not part.is_multipart() and not is_attachment(part)]


def attachments(message: Message) -> list[str]:
    return [part.get_filename() for part in message.walk() if is_attachment(part)]


def everything(message: Message) -> str:
    """Every leaf decoded, so nothing hides behind quoted-printable or base64."""
    return "\n".join((part.get_payload(decode=True) or b"").decode("utf-8", "replace")
                     for part in message.walk() if not part.is_multipart())


@pytest.mark.parametrize("name", SCENARIOS)
def test_wire_format(name):
    out, message, _ = relay(name)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    again = email.message_from_bytes(out, policy=compat32)
    assert all(not part.defects for part in again.walk())
    assert message["Message-ID"] == ENVELOPE.message_id


@pytest.mark.parametrize("name", SCENARIOS)
def test_nothing_executable_reaches_the_reader(name):
    _, message, _ = relay(name)
    body = everything(message).lower()
    for bad in ("<script", "onerror", "onload", "javascript:", "vbscript:", "<iframe", "<form", "<svg",
                "http-equiv", "expression(", "phish.example", "tracker.example", "mailtrack"):
        assert bad not in body, bad
    assert not any(name.lower().endswith((".exe", ".scr")) for name in attachments(message))


SCENARIO_RESULTS = [
    # file, removed (filename, reason), attachments left, blocked images, notes that must be in html_removed
    ("executable_attachment.eml", [("invoice.exe", EXECUTABLE)], ["invoice.pdf"], 0, set()),
    ("double_extension.eml",
     [("invoice.pdf.exe", DISGUISED), ("receiptfdp.scr", DISGUISED), ("delivery-photo.jpg", EXECUTABLE_CONTENT)],
     ["terms.pdf"], 0, set()),
    ("too_many_attachments.eml", [(f"IMG_{n}.png", TOO_MANY) for n in range(4121, 4125)],
     [f"IMG_{n}.png" for n in range(4101, 4121)], 0, set()),
    ("tracking_pixel.eml", [], [], 2, {CONDITIONAL_COMMENT}),
    ("cid_inline_image.eml", [], ["damaged-box.png"], 1, set()),
    ("hostile_html.eml", [], [], 2,
     {SCRIPT, EVENT_HANDLER, SCRIPT_LINK, SVG, FORM, FRAME, META_REFRESH, STYLESHEET, CONDITIONAL_COMMENT}),
]


@pytest.mark.parametrize("name, removed, left, blocked, notes", SCENARIO_RESULTS, ids=[row[0] for row in SCENARIO_RESULTS])
def test_scenario_report_and_attachments(name, removed, left, blocked, notes):
    _, message, report = relay(name)
    assert [(item.filename, item.reason) for item in report.removed_attachments] == removed
    assert attachments(message) == left
    assert report.blocked_images == blocked
    assert notes <= set(report.html_removed)


@pytest.mark.parametrize("locale, opening, reason", [
    ("en", EN, "invoice.exe (executable file type)"),
    ("fr", FR, "invoice.exe (type de fichier exécutable)"),
    ("fr-CA", FR, "invoice.exe (type de fichier exécutable)"),
    ("fr_FR", FR, "invoice.exe (type de fichier exécutable)"),
    ("de", EN, "invoice.exe (executable file type)"),  # no German notice yet: English
])
def test_notice_in_both_alternatives_in_the_recipients_locale(locale, opening, reason):
    _, message, _ = relay("executable_attachment.eml", locale=locale)
    (plain,), (html,) = texts(message, "text/plain"), texts(message, "text/html")
    assert f"{opening}{reason}]" in plain
    assert plain.startswith("Hello,")
    assert plain.rstrip().endswith(f"{opening}{reason}]")
    assert f"{opening}{reason}]" in html
    assert "<p>Hello,</p>" in html


def test_notice_lists_every_removed_file_once():
    _, message, _ = relay("double_extension.eml")
    (plain,) = texts(message, "text/plain")
    assert plain.count(EN) == 1
    assert (f"{EN}invoice.pdf.exe (disguised file name), receiptfdp.scr (disguised file name), "
            "delivery-photo.jpg (executable content)]") in plain
    assert "Billing department" in plain


def test_file_names_in_the_html_notice_are_escaped():
    raw = (MAIL / "executable_attachment.eml").read_bytes().replace(b'"invoice.exe"', b'"<b>x</b>.exe"')
    _, message, _ = relay("", raw=raw)
    (html,) = texts(message, "text/html")
    assert "&lt;b&gt;x&lt;/b&gt;.exe" in html and "<b>x</b>" not in html


def test_remote_images_are_blocked_links_stay_clickable():
    _, message, _ = relay("tracking_pixel.eml")
    (html,) = texts(message, "text/html")
    assert "cdn.shop.example" not in html
    assert '<img alt="Shop Example">' in html
    assert re.search(r'<a href="https://shop.example/account/refunds/4471"[^>]* target="_blank" '
                     r'rel="noopener noreferrer nofollow">your account page</a>', html)
    assert 'href="mailto:support@shop.example"' in html
    assert "border-collapse:collapse" in html  # inline style kept


def test_remote_images_can_be_allowed_but_the_tracking_pixel_still_goes():
    _, message, report = relay("tracking_pixel.eml", block=False)
    (html,) = texts(message, "text/html")
    assert 'src="https://cdn.shop.example/brand/logo.png"' in html
    assert "mailtrack" not in html
    assert report.blocked_images == 1


def test_cid_image_is_kept_with_its_part():
    """Its Content-ID is replaced by a neutral one (an ID can name the sender's host), and
    the HTML's reference follows."""
    _, message, _ = relay("cid_inline_image.eml")
    (html,) = texts(message, "text/html")
    (image,) = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert image["Content-ID"] == neutral_content_id("<ii_m1a2b3c40>") != "<ii_m1a2b3c40>"
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html and "ii_m1a2b3c40" not in html
    assert "googleusercontent" not in html and "<img alt=\"Carol's signature\">" in html
    assert image.get_payload(decode=True).startswith(b"\x89PNG")
    assert EN not in everything(message)  # nothing removed, no notice


def test_hostile_html_keeps_its_real_link():
    _, message, _ = relay("hostile_html.eml")
    (html,) = texts(message, "text/html")
    assert 'href="https://shop.example/orders/4471?ref=mail&amp;lang=en"' in html
    assert "the refund never arrived" in html
    assert "Card number:" in html  # the form goes, its text stays


def test_also_runs_first_on_the_original_message():
    seen: list[list[str]] = []

    def also(message: Message) -> None:
        seen.append(attachments(message))
        remove_lines(["Please find the invoice attached, and the tool to open it."])(message)

    _, message, report = relay("executable_attachment.eml", also=also)
    assert seen == [["invoice.pdf", "invoice.exe"]]
    (plain,) = texts(message, "text/plain")
    assert "tool to open it" not in plain and EN in plain
    assert [item.filename for item in report.removed_attachments] == ["invoice.exe"]


def test_running_once_per_recipient_does_not_count_twice():
    transform, report = relay_transform(policy=AttachmentPolicy(), block_remote_images=True, locale="en")
    raw = (MAIL / "double_extension.eml").read_bytes()
    first = compose_relay(raw, ENVELOPE, key=KEY, transform=transform)
    second = compose_relay(raw, ENVELOPE, key=KEY, transform=transform)
    assert first == second
    assert len(report.removed_attachments) == 3


def test_clean_parts_are_not_touched():
    raw = b"""MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="a"

--a
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello
--a
Content-Type: text/html; charset=us-ascii
Content-Transfer-Encoding: 7bit

<p>Hello</p>
--a--
"""
    _, message, report = relay("", raw=raw)
    plain, html = [part for part in message.walk() if not part.is_multipart()]
    assert plain["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "7bit"
    assert report == Report()


def test_only_an_executable_becomes_the_notice():
    raw = b"""MIME-Version: 1.0
Content-Type: application/x-msdownload; name="setup.exe"
Content-Disposition: attachment; filename="setup.exe"
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AAA==
"""
    out, message, _ = relay("", raw=raw, locale="fr")
    assert message.get_content_type() == "text/plain"
    assert message.get_payload(decode=True).decode() == f"{FR}setup.exe (type de fichier exécutable)]\r\n"
    assert b"TVqQ" not in out


def test_attachments_without_a_text_body_get_a_notice_part():
    raw = b"""MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: image/png; name="box.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--m
Content-Type: application/octet-stream; name="run.bat"

@echo off
--m--
"""
    _, message, _ = relay("", raw=raw)
    parts = [part for part in message.walk() if not part.is_multipart()]
    assert [part.get_content_type() for part in parts] == ["text/plain", "image/png"]
    assert parts[0].get_payload(decode=True).decode() == f"{EN}run.bat (executable file type)]\r\n"
    assert "MIME-Version" not in parts[0]


def test_parts_with_raw_8bit_header_bytes_can_still_be_rewritten():
    raw = (b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"\n\n'
           b'--m\nContent-Type: text/plain; charset="utf-8"; x-note="caf\xc3\xa9"\n\nhi\n'
           b'--m\nContent-Type: text/html; charset="utf-8"; x-note="caf\xc3\xa9"\n\n<p onclick=x>hi</p>\n'
           b'--m\nContent-Type: application/octet-stream; name="a.exe"\n\nx\n--m--\n')
    _, message, report = relay("", raw=raw)
    assert texts(message, "text/plain")[0].rstrip().endswith(f"{EN}a.exe (executable file type)]")
    assert texts(message, "text/html")[0].startswith("<p>hi</p>")
    assert report.html_removed == [EVENT_HANDLER]


def test_notice_text():
    from gateway.mail.attachments import Removed

    removed = [Removed("a.exe", "application/octet-stream", 3, EXECUTABLE), Removed("", "image/png", 9, TOO_MANY)]
    assert notice(removed, "en") == f"{EN}a.exe (executable file type), image/png (too many attachments)]"
    assert notice(removed, "fr") == f"{FR}a.exe (type de fichier exécutable), image/png (trop de pièces jointes)]"
    long = [Removed("x" * 500 + ".exe", "application/octet-stream", 1, EXECUTABLE)]
    assert notice(long, "en") == f"{EN}{'x' * 119}… (executable file type)]"


CORPUS = sorted((MAIL / "corpus").rglob("*.eml"))


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_corpus_relays_cleanly(path):
    out, message, _ = relay("", raw=path.read_bytes())
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    for html in texts(message, "text/html"):
        assert "<script" not in html.lower()
