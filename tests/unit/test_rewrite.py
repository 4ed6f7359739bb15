"""replace_body: a staff reply carries only its new text, whatever its MIME structure."""

from __future__ import annotations

import email
from email.policy import compat32

from gateway.mail.rewrite import replace_body

NEW = "Please confirm the address."


def _texts(message) -> list[str]:
    return [p.get_payload(decode=True).decode() for p in message.walk()
            if not p.is_multipart() and p.get_content_maintype() == "text"]


def _run(raw: str):
    message = email.message_from_string(raw, policy=compat32)
    replace_body(NEW)(message)
    return message


def test_a_single_part_stays_a_single_part():
    message = _run('Content-Type: text/plain; name="body.txt"\n\nNew text\n> staff-only notice\n')
    assert not message.is_multipart() and message.get_payload(decode=True).decode() == NEW


def test_every_text_leaf_goes_and_files_stay():
    message = _run(
        'Content-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: multipart/alternative; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nnew\n> STAFF ONLY\n--b\nContent-Type: multipart/related; boundary=\"c\"\n\n"
        "--c\nContent-Type: text/html\n\n<p>new</p><blockquote>STAFF ONLY</blockquote>\n--c\n"
        "Content-Type: image/png\nContent-ID: <logo>\n\npng\n--c--\n--b--\n"
        '--a\nContent-Type: application/pdf; name="decision.pdf"\nContent-Disposition: attachment\n\n%PDF\n'
        '--a\nContent-Type: text/plain; name="q.txt"\nContent-Disposition: inline\n\nSTAFF ONLY\n'
        '--a\nContent-Type: text/csv; name="list.csv"\nContent-Disposition: attachment\n\na,b\n--a--\n')
    assert all("STAFF ONLY" not in text for text in _texts(message))
    names = [p.get_filename() for p in message.walk() if p.get_filename()]
    assert names == ["decision.pdf", "list.csv"]  # the unnamed inline logo went with the quoted HTML
    assert [t for t in _texts(message) if NEW in t]


def test_an_attached_notice_of_the_gateway_goes_other_messages_stay():
    message = _run(
        'Content-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: text/plain\n\nnew\n'
        "--a\nContent-Type: message/rfc822\n\nFrom: Disputes <case+x-s-y@d.test>\nX-Dispute-Gateway-Loop: <m@d> t\n\n"
        "STAFF ONLY\n--a\nContent-Type: message/rfc822\n\nFrom: courier@post.test\nSubject: delivered\n\nDelivered.\n"
        "--a--\n")
    forwarded = [p for p in message.walk() if p.get_content_type() == "message/rfc822"]
    assert len(forwarded) == 1 and forwarded[0].get_payload()[0]["From"] == "courier@post.test"
