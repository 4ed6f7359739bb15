"""Classification and bounce detection on the real-world corpus (tests/mail/corpus) and on
the real Postfix samples: the same figures bench/classify_corpus.py prints, as thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.classify_corpus import envelope_sender
from gateway.mail.bounces import FailureKind, Reason, confirm, detect
from gateway.mail.classify import Kind, Signals, classify
from gateway.mail.parse import parse

MAIL = Path(__file__).resolve().parents[1] / "mail"
CORPUS = MAIL / "corpus"
KEYS = ("test-key-000000000000",)


def _rows(folder):
    return [line.split("\t") for line in (CORPUS / folder / "expected.tsv").read_text().splitlines() if line.strip()]


def _final(raw: bytes):
    classification = classify(parse(raw), Signals(mail_from=envelope_sender(raw), keys=KEYS))
    return confirm(classification, raw)


def test_at_least_95_percent_of_real_bounces_are_found_with_the_right_address():
    rows = [r for r in _rows("bounces") if r[2]]
    exact = 0
    for name, _kind, addresses, *_ in rows:
        classification, verdict = _final((CORPUS / "bounces" / name).read_bytes())
        if classification.kind is Kind.BOUNCE and set(addresses.split(",")) <= {f.recipient for f in verdict.failures}:
            exact += 1
    assert exact / len(rows) >= 0.95, f"{exact}/{len(rows)}"


@pytest.mark.parametrize("path", sorted((CORPUS / "human").glob("*.eml")), ids=lambda p: p.name)
def test_human_mail_is_never_taken_for_automatic_mail(path):
    raw = path.read_bytes()
    classification, verdict = _final(raw)
    head = raw.split(b"\n\n", 1)[0].lower()
    through_a_list = b"\nlist-id:" in head or b"\nprecedence: list" in head or b"\nprecedence: bulk" in head
    # A person's message that came through a mailing list (List-Id, Precedence: list/bulk)
    # is list mail; never a bounce, a loop or an auto-reply.
    allowed = {Kind.HUMAN, Kind.LIST} if through_a_list else {Kind.HUMAN}
    assert classification.kind in allowed, classification.reason
    assert not verdict.failures


@pytest.mark.parametrize("name, expected", [(r[0], r[1]) for r in _rows("autoreplies")])
def test_auto_replies(name, expected):
    classification, _ = _final((CORPUS / "autoreplies" / name).read_bytes())
    if expected == "yes":
        assert classification.kind is Kind.AUTO_REPLY, classification.reason
    else:
        assert classification.kind is not Kind.AUTO_REPLY, classification.reason


@pytest.mark.parametrize("path", sorted((CORPUS / "not_bounces").glob("*.eml")), ids=lambda p: p.name)
def test_non_bounces_report_no_failure(path):
    classification, verdict = _final(path.read_bytes())
    assert not (classification.kind is Kind.BOUNCE and verdict.failed)


@pytest.mark.parametrize("sample, kind, reason, status", [
    ("postfix_dsn_unknown_user.eml", FailureKind.DEAD, Reason.USER_UNKNOWN, "5.1.1"),
    ("postfix_dsn_remote_550.eml", FailureKind.DEAD, Reason.USER_UNKNOWN, "5.1.1"),
    ("postfix_dsn_full_message.eml", FailureKind.DEAD, Reason.USER_UNKNOWN, "5.1.1"),
    ("postfix_delayed_4xx.eml", FailureKind.DELAYED, Reason.DELAYED, "4.4.1"),
    ("postfix_delayed_remote_451.eml", FailureKind.DELAYED, Reason.DELAYED, "4.3.0"),
    # Action: failed with 4.x.x: the sender gave up on the message, the address is not dead
    ("postfix_expired_4xx.eml", FailureKind.TROUBLE, Reason.EXPIRED, "4.4.1"),
    ("postfix_expired_remote_451.eml", FailureKind.TROUBLE, Reason.EXPIRED, "4.3.0"),
    ("postfix_dsn_success_relayed.eml", FailureKind.REPORT, Reason.DELIVERED, "2.0.0"),
])
def test_real_postfix_dsns(sample, kind, reason, status):
    verdict = detect((MAIL / sample).read_bytes())
    assert verdict.detected_by == "dsn"
    assert (verdict.failures[0].kind, verdict.failures[0].reason, verdict.failures[0].status) == (kind, reason, status)


def test_the_relayed_message_sample_is_not_a_bounce():
    classification, verdict = _final((MAIL / "postfix_relayed_to_gateway.eml").read_bytes())
    assert classification.kind is not Kind.BOUNCE and not verdict
