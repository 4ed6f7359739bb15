"""Delivery reports read into one verdict with a reason (gateway/mail/bounces): the corpus
figures bench/classify_corpus.py prints, as thresholds, and the cases the issue names."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bench.classify_corpus import Reader, Tally, load_expected, score
from gateway.mail.bounces import FailureKind, Reason, detect
from gateway.mail.bounces.base import smtp_failure
from gateway.mail.bounces.reasons import reason_of

MAIL = Path(__file__).resolve().parents[1] / "mail"
CORPUS = MAIL / "corpus"


def _tally(name: str) -> Tally:
    tally = Tally()
    rows = [r for r in load_expected().values() if r.set == name]
    score(rows, Reader(), tally, defaultdict(lambda: defaultdict(int)), lambda *a: None)
    return tally


def test_tuning_corpus_figures():
    tally = _tally("tuning")
    assert tally.recipients_ok / tally.with_recipients >= 0.95
    assert tally.verdict_ok / tally.reports >= 0.88
    assert tally.dead_ok / tally.dead_ref >= 0.98  # reason agreement on dead addresses
    assert tally.soft_called_permanent / tally.soft_total <= 0.05  # it was about 95% before
    assert tally.not_failures_as_bounces == 0


@pytest.mark.parametrize("name", ["heldout", "heldout2"])
def test_held_out_corpus_never_takes_a_success_or_complaint_for_a_bounce(name):
    tally = _tally(name)
    assert tally.reports >= 10
    assert tally.not_failures_as_bounces == 0
    assert tally.soft_called_permanent == 0


@pytest.mark.parametrize("reply, kind, reason", [
    # a customer's message carrying the EICAR test string, refused by the smarthost's filter
    ("554 5.7.1 Message rejected: virus found (Eicar-Signature)", FailureKind.MESSAGE, Reason.VIRUS),
    ("552 5.3.4 Message size exceeds fixed limit", FailureKind.MESSAGE, Reason.MESSAGE_TOO_BIG),
    ("552 Message size exceeds maximum permitted", FailureKind.MESSAGE, Reason.MESSAGE_TOO_BIG),
    ("550 5.7.1 Message rejected as spam by Content Filtering", FailureKind.MESSAGE, Reason.SPAM),
    ("550 5.1.1 <shop@merchant.test>: Recipient address rejected: User unknown in virtual mailbox table",
     FailureKind.DEAD, Reason.USER_UNKNOWN),
    ("550 5.1.2 <shop@nowhere.test>: Recipient address rejected: Domain not found", FailureKind.DEAD,
     Reason.HOST_UNKNOWN),
    ("552 5.2.2 <shop@merchant.test>: mailbox full", FailureKind.TROUBLE, Reason.MAILBOX_FULL),
    ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", FailureKind.TROUBLE,
     Reason.BLOCKED),
    ("554 5.7.1 <shop@merchant.test>: Relay access denied", FailureKind.TROUBLE, Reason.NO_RELAYING),
    ("452 4.2.2 Mailbox full (still failing after 24 hours)", FailureKind.TROUBLE, Reason.MAILBOX_FULL),
    ("451 4.3.0 Temporary failure (gave up after 48 attempts)", FailureKind.TROUBLE, Reason.EXPIRED),
    ("550 5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy",
     FailureKind.TROUBLE, Reason.AUTH_FAILURE),
])
def test_the_smarthosts_refusal_at_send_time_is_read_like_a_report(reply, kind, reason):
    entry = smtp_failure("shop@merchant.test", int(reply[:3]), reply)
    assert (entry.kind, entry.reason) == (kind, reason)


def _sample(name: str) -> bytes:
    return (CORPUS / "reports" / name).read_bytes()


@pytest.mark.parametrize("line_end", [b"\r", b"\r\n"])
def test_cr_only_and_crlf_reports_read_like_lf_ones(line_end):
    raw = _sample("sisimai-bsd-email-exim-02.eml")
    expected = detect(raw)
    assert detect(raw.replace(b"\n", line_end)) == expected
    lines = raw.split(b"\n")  # mixed: every other line ends in CR LF
    mixed = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))
    assert {f.recipient for f in detect(mixed).failures} == {"kijitora@example.jp", "sabatora@example.jp"}


def test_an_encoded_final_recipient_is_decoded():
    raw = (MAIL / "postfix_dsn_unknown_user.eml").read_bytes().replace(b"\r\n", b"\n")
    raw = raw.replace(b"Original-Recipient: rfc822;nobody@merchant.test\n", b"")
    raw = raw.replace(b"Final-Recipient: rfc822; nobody@merchant.test",
                      b"Final-Recipient: =?utf-8?q?rfc822=3B_shop+2Bsales=40merchant=2Etest?=")
    entry = detect(raw).failures[0]
    assert (entry.recipient, entry.kind) == ("shop+sales@merchant.test", FailureKind.DEAD)


def test_a_report_with_a_broken_mime_boundary_is_still_read():
    raw = _sample("sisimai-bsd-rhost-outlook-01.eml")
    broken = raw.replace(b'boundary="9B095B5ADSN=_01D00052BDF896BA0006275EBLU004?OMC3S13.h"', b'boundary="elsewhere"')
    entry = detect(broken).failures[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@example.jp", Reason.MAILBOX_FULL,
                                                           FailureKind.TROUBLE)


def test_a_feedback_report_is_a_complaint_not_a_bounce():
    verdict = detect(_sample("sisimai-bsd-arf-03.eml"))
    assert verdict.reason is Reason.FEEDBACK and not verdict.failed


def test_a_success_dsn_is_delivery_evidence():
    verdict = detect((MAIL / "postfix_dsn_success_relayed.eml").read_bytes())
    entry = verdict.failures[0]
    assert (entry.recipient, entry.reason, entry.remote_mta) == ("support@merchant.test", Reason.DELIVERED,
                                                                 "dns; mx.merchant.test")
    assert not verdict.failed


def test_a_mailbox_full_5xx_is_trouble_not_a_dead_address():
    verdict = detect(_sample("sisimai-bsd-email-amazonses-03.eml"))  # Status 5.0.0, the words say 5.2.2
    entry = verdict.failures[0]
    assert (entry.reason, entry.kind, entry.permanent) == (Reason.MAILBOX_FULL, FailureKind.TROUBLE, True)


def test_a_challenge_request_is_recorded_not_a_bounce():
    raw = (b"From: MAILER-DAEMON@filter.test\nTo: bounce+x@d.test\nSubject: Please confirm your message\n"
           b"X-Boxtrapper: yes\n\nThe recipient uses a challenge-response system. Reply to this message to "
           b"confirm you are a human.\n")
    verdict = detect(raw)
    assert verdict.reason is Reason.CHALLENGE and not verdict.failed


def test_at_least_100_real_human_messages_and_none_is_taken_for_a_bounce():
    human = sorted((CORPUS / "human").glob("*.eml"))
    assert len(human) >= 100
    reader = Reader()
    assert [p.name for p in human if reader.read(p.read_bytes()).classification == "bounce"] == []


def _ses_notice(kind: str, body: str) -> bytes:
    return ("From: SES <no-reply@sns.amazonaws.com>\nTo: ops@gateway.test\nSubject: AWS Notification Message\n"
            "Content-Type: text/plain; charset=UTF-8\n\n" + '{"notificationType":"%s",%s}\n\n--\nunsubscribe: '
            "https://sns.example.test/\n" % (kind, body)).encode()


def test_an_amazon_ses_json_notice_is_read_by_its_fields():
    verdict = detect(_sample("sisimai-dos-ced-us-amazonses-01.eml"))  # a real SNS notice, CRLF
    entry = verdict.failures[0]
    assert (entry.recipient, entry.status, entry.kind) == ("bounce@simulator.amazonses.com", "5.1.1",
                                                           FailureKind.DEAD)
    transient = detect(_ses_notice("Bounce", '"bounce":{"bounceType":"Transient","bouncedRecipients":[{'
                                   '"emailAddress":"shop@merchant.test","status":"5.2.2","diagnosticCode":'
                                   '"smtp; 552 5.2.2 mailbox full"}]}'))
    assert (transient.failures[0].reason, transient.failures[0].kind) == (Reason.MAILBOX_FULL, FailureKind.TROUBLE)
    gone = detect(_ses_notice("Bounce", '"bounce":{"bounceType":"Transient","bouncedRecipients":[{'
                              '"emailAddress":"shop@merchant.test","status":"5.1.1","diagnosticCode":'
                              '"smtp; 550 5.1.1 user unknown"}]}'))
    assert gone.failures[0].kind is FailureKind.TROUBLE  # SES says temporary: never a dead address
    complaint = detect(_ses_notice("Complaint", '"complaint":{"complainedRecipients":[{"emailAddress":'
                                   '"shop@merchant.test"}],"complaintFeedbackType":"abuse"}'))
    assert complaint.reason is Reason.FEEDBACK and not complaint.failed
    delivered = detect(_ses_notice("Delivery", '"delivery":{"recipients":["shop@merchant.test"],'
                                   '"smtpResponse":"250 2.0.0 OK"}'))
    assert delivered.failures[0].reason is Reason.DELIVERED and not delivered.failed


def test_the_sending_mtas_own_bounce_category_wins():
    entry = detect(_sample("sisimai-dos-email-powermta-01.eml")).failures[0]  # 5.2.1 + bad-mailbox
    assert (entry.reason, entry.kind) == (Reason.USER_UNKNOWN, FailureKind.DEAD)


@pytest.mark.parametrize("words, reason", [
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", Reason.USER_UNKNOWN),
    ("556 5.1.10 Recipient address has null MX", Reason.NOT_ACCEPT),
    ("550 5.1.1 RCP-P2 Refused due to recipient preferences", Reason.FILTERED),
    ("550 Ip frequency limited [Blocked IP 192.0.2.22]", Reason.TOO_MANY_CONN),
    ("550 5.7.6 Failed to deliver", Reason.SECURITY_ERROR),
    # qmail names the command in its own words; "RCPT TO: a" in a summary of the envelope does not
    ("550 Unknown user a@example.jp; most progress was RCPT TO response", Reason.USER_UNKNOWN),
    ("550 - Requested action not taken: no such user here. RCPT TO: a@example.jp", Reason.FILTERED),
    # AOL: the recipient refuses the content, the address exists (never a dead address)
    ("550 could not be delivered because they are not accepting mail with attachments or embedded images",
     Reason.POLICY),
    ("550 This host does not accept mail", Reason.NOT_ACCEPT),
])
def test_reasons_read_from_codes_and_words(words, reason):
    assert smtp_failure("shop@merchant.test", int(words[:3]), words).reason is reason


@pytest.mark.parametrize("status, words, reason", [
    # words naming a mailbox that is there, or this one message, contradict a 5.1.1 status
    ("5.1.1", "550 [SUSPEND] Mailbox currently suspended - Please contact correspondent directly", Reason.SUSPEND),
    ("5.1.1", "550 RCPT TO:<a@b.test> max message size exceeded", Reason.MESSAGE_TOO_BIG),
    ("5.1.1", "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown in local recipient table",
     Reason.USER_UNKNOWN),
    # a mailbox-status code (5.2.x): only a missing user in so many words is one
    ("5.2.1", "550 5.2.1 Mailbox not available / Konto niedostepne (in reply to RCPT TO command)", Reason.FILTERED),
    ("5.2.1", "550 5.2.1 <a@b.test>... User Unknown (in reply to RCPT TO command)", Reason.USER_UNKNOWN),
])
def test_words_that_contradict_the_status_code_decide(status, words, reason):
    assert reason_of(status, words) is reason


@pytest.mark.parametrize("name, recipient", [
    ("sisimai-dos-lhost-apachejames-01.eml", "000000000000@vtext.example.com"),  # post_master, "RCPT TO: addr"
    ("sisimai-dos-lhost-x6-01.eml", "kijitora@nyaan.example.org"),  # From: mailer-daemon (no domain)
    ("sisimai-dos-lhost-verizon-01.eml", "0000000000@vzwpix.com"),  # only the returned original names it
    ("sisimai-dos-us-office365-01.eml", "kijitora@example.com"),  # no DSN part; 5.1.10 in the admin part
])
def test_reports_without_a_dsn_name_their_recipient(name, recipient):
    raw = _sample(name)
    ours = Reader().read(raw)
    assert ours.classification == "bounce" and ours.recipients == {recipient}
