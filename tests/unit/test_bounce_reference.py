"""Our reading of a report joined with Sisimai's (gateway/mail/bounces/reference.py): whose
reading wins, recipient by recipient."""

from __future__ import annotations

from gateway.mail.bounces import Failure, FailureKind, Reason, Verdict
from gateway.mail.bounces.reference import PLACEHOLDER, Entry, merged


def _ours(*failures: Failure, by: str = "text") -> Verdict:
    return Verdict(failures, by)


def _failure(recipient: str, reason: Reason, status: str = "5.0.0", permanent: bool = True, **more) -> Failure:
    return Failure(recipient, reason, status, "our words", permanent, **more)


def test_sisimai_decides_reason_status_and_words_where_it_reads_the_report():
    ours = _ours(_failure("a@shop.test", Reason.FILTERED))
    theirs = [Entry("a@shop.test", "userunknown", "5.1.1", soft=0, action="failed",
                    diagnostic="550 5.1.1 <a@shop.test>: User unknown", remote_mta="mx.shop.test")]
    verdict = merged(ours, theirs)
    (one,) = verdict.failures
    assert (one.reason, one.kind, one.status) == (Reason.USER_UNKNOWN, FailureKind.DEAD, "5.1.1")
    assert one.diagnostic.startswith("550 5.1.1") and one.remote_mta == "mx.shop.test"  # ours names none
    assert verdict.detected_by == "sisimai+text"


def test_a_dead_address_by_our_reading_is_trouble_when_sisimai_reads_a_filter():
    ours = _ours(_failure("a@shop.test", Reason.USER_UNKNOWN))
    (one,) = merged(ours, [Entry("a@shop.test", "filtered", "5.0.0", soft=1, action="failed")]).failures
    assert one.kind is FailureKind.TROUBLE and one.reason is Reason.FILTERED


def test_a_soft_user_unknown_is_never_a_dead_address():
    (one,) = merged(Verdict.none(), [Entry("a@shop.test", "userunknown", "4.1.1", soft=1)]).failures
    assert one.kind is FailureKind.TROUBLE


def test_a_warning_stays_a_warning_whatever_sisimai_calls_it():
    ours = _ours(_failure("a@shop.test", Reason.DELAYED, "4.4.7", permanent=False))
    (one,) = merged(ours, [Entry("a@shop.test", "expired", "4.4.7", soft=1, action="failed")]).failures
    assert one.kind is FailureKind.DELAYED


def test_sisimai_s_delayed_action_is_a_warning():
    ours = _ours(_failure("a@shop.test", Reason.EXPIRED, "4.4.7", permanent=False))
    (one,) = merged(ours, [Entry("a@shop.test", "expired", "4.4.7", soft=1, action="delayed")]).failures
    assert one.kind is FailureKind.DELAYED


def test_where_sisimai_cannot_decide_our_reason_stands():
    ours = _ours(_failure("a@shop.test", Reason.MAILBOX_FULL, "5.2.2"))
    for undecided in ("onhold", "undefined"):
        (one,) = merged(ours, [Entry("a@shop.test", undecided, "5.0.0", soft=1)]).failures
        assert one.reason is Reason.MAILBOX_FULL


def test_our_authentication_failure_is_finer_than_sisimai_s_block():
    ours = _ours(_failure("a@shop.test", Reason.AUTH_FAILURE, "5.7.26"))
    (one,) = merged(ours, [Entry("a@shop.test", "blocked", "5.7.26", soft=1)]).failures
    assert one.reason is Reason.AUTH_FAILURE


def test_complaints_ses_notices_and_challenges_stay_ours():
    for by, reason in (("arf", Reason.FEEDBACK), ("ses", Reason.DELIVERED), ("challenge", Reason.CHALLENGE)):
        ours = Verdict.report(reason, by)
        assert merged(ours, [Entry("a@shop.test", "userunknown", "5.1.1", soft=0)]) is ours


def test_without_sisimai_s_reading_ours_stands():
    ours = _ours(_failure("a@shop.test", Reason.MAILBOX_FULL))
    assert merged(ours, []) is ours
    assert merged(ours, [Entry("", "", "")]) is ours


def test_sisimai_s_placeholder_recipient_gives_way_to_ours():
    entry = Entry.from_sisimai({"recipient": PLACEHOLDER, "reason": "mailboxfull", "status": "5.2.2", "soft": 1})
    ours = _ours(_failure("a@shop.test", Reason.UNDEFINED))
    (one,) = merged(ours, [entry]).failures
    assert (one.recipient, one.reason) == ("a@shop.test", Reason.MAILBOX_FULL)


def test_the_address_as_we_sent_it_stays_the_recipient_beside_the_rewritten_mailbox():
    ours = _ours(_failure("sales@shop.test", Reason.USER_UNKNOWN, final_recipient="jane@shop.test"), by="dsn")
    (one,) = merged(ours, [Entry("jane@shop.test", "userunknown", "5.1.1", soft=0)]).failures
    assert (one.recipient, one.final_recipient) == ("sales@shop.test", "jane@shop.test")


def test_sisimai_names_recipients_we_missed_and_each_once():
    ours = _ours(_failure("a@shop.test", Reason.USER_UNKNOWN))
    theirs = [Entry("a@shop.test", "userunknown", "5.1.1", soft=0), Entry("b@shop.test", "mailboxfull", "5.2.2", soft=1),
              Entry("b@shop.test", "mailboxfull", "5.2.2", soft=1)]
    assert [(f.recipient, f.kind) for f in merged(ours, theirs).failures] == [
        ("a@shop.test", FailureKind.DEAD), ("b@shop.test", FailureKind.TROUBLE)]


def test_sisimai_s_words_in_utf8_are_read_back_as_text():
    """Perl hands over the remote server's bytes; JSON escapes each as \\u00XX."""
    utf8 = Entry.from_sisimai({"recipient": "a@shop.test", "reason": "mailboxfull", "diagnostic": "Bo\u00c3\u00aete pleine"})
    latin1 = Entry.from_sisimai({"recipient": "a@shop.test", "reason": "mailboxfull", "diagnostic": "Bo\u00eete pleine"})
    assert utf8.diagnostic == latin1.diagnostic == "Bo\u00eete pleine"
