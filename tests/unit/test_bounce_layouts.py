"""Report layouts of particular MTAs read from real samples of the corpus: who failed, why,
and what it means for the address (gateway/mail/bounces)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.classify_corpus import Reader, load_expected
from gateway.mail.bounces import FailureKind, Reason, Verdict, detect, for_recipient
from gateway.mail.headers import decode

CORPUS = Path(__file__).resolve().parents[1] / "mail" / "corpus"


def _read(name: str):
    return Reader().read((CORPUS / name).read_bytes())


def test_lotus_notes_lists_the_failed_recipient_under_failure_reasons():
    # the reason is a Japanese line Notes does not explain; the address alone follows it
    verdict = detect((CORPUS / "heldout2/sisimai-dos-email-notes-01.eml").read_bytes())
    entry = verdict.failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@u1.example.co.jp", Reason.UNDEFINED,
                                                           FailureKind.TROUBLE)


@pytest.mark.parametrize("name", ["heldout/sisimai-mac-jp-kddi-01.eml",  # UTF-8, lines end in bare CR
                                  "heldout2/sisimai-dos-msp-jp-kddi-01.eml"])  # raw ISO-2022-JP subject, CRLF
def test_au_one_net_kddi_mailbox_full_is_a_bounce_for_a_working_address(name):
    ours = _read(name)
    assert (ours.classification, ours.verdict, ours.reasons[:1]) == ("bounce", "trouble", ["mailboxfull"])
    assert ours.recipients == {"kijitora@x0000000000000.dion.ne.jp"}


def test_a_report_whose_lines_end_in_bare_cr_reads_like_its_lf_copy():
    raw = (CORPUS / "heldout/sisimai-mac-jp-kddi-01.eml").read_bytes()
    assert b"\r" in raw and b"\n" not in raw
    assert Reader().read(raw) == Reader().read(raw.replace(b"\r", b"\n"))


def test_every_corpus_report_reads_the_same_with_lf_bare_cr_and_crlf_line_ends():
    reader, differ = Reader(), []
    for row in load_expected().values():
        lf = (CORPUS / row.path).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not reader.read(lf) == reader.read(lf.replace(b"\n", b"\r")) == reader.read(lf.replace(b"\n", b"\r\n")):
            differ.append(row.path)
    assert differ == []


def test_no_human_message_with_bare_cr_line_ends_is_taken_for_a_bounce():
    reader = Reader()
    human = sorted((CORPUS / "human").glob("*.eml"))
    assert [p.name for p in human
            if reader.read(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")).classification == "bounce"] == []


def test_sendmail_v5_transcript_names_the_recipient_only_in_the_unsent_message():
    ours = _read("heldout/sisimai-mac-mta-v5sendmail-01.eml")  # "421 ... Deferred", CR line ends
    assert (ours.verdict, ours.reasons[:1], ours.recipients) == ("trouble", ["expired"], {"kijitora@example.com"})
    assert not ours.permanent


def test_aol_recipient_blocks_without_a_blank_line_between_them_are_two_recipients():
    verdict = detect((CORPUS / "heldout2/sisimai-bsd-rhost-aol-03.eml").read_bytes())
    assert [(f.recipient, f.reason) for f in verdict.failures] == [
        ("sabineko@example.jp", Reason.MAILBOX_FULL), ("mikeneko@example.jp", Reason.USER_UNKNOWN)]


def test_amazon_ses_notice_inside_the_sns_envelope_is_read():
    raw = (CORPUS / "heldout/sisimai-bsd-email-amazonses-10.eml").read_bytes()
    ours = Reader().read(raw)
    assert (ours.classification, ours.verdict, ours.recipients) == ("bounce", "dead",
                                                                   {"bounce@simulator.amazonses.com"})
    assert detect(raw).detected_by == "ses"


def test_exchange_2007_alias_the_report_is_found_under_either_address():
    raw = (CORPUS / "heldout/sisimai-bsd-email-exchange2007-04.eml").read_bytes()
    verdict = detect(raw)
    entry = verdict.failures[0]
    # Original-Recipient is what we sent; Final-Recipient the mailbox the server rewrote it to
    assert (entry.recipient, entry.final_recipient) == ("neko-nyaan@cat.example.jp", "neko-nyaan@example.jp")
    assert for_recipient(raw, verdict, "Neko-Nyaan@example.jp") == entry
    assert for_recipient(raw, verdict, "neko-nyaan@cat.example.jp") == entry


def test_mcafee_gateway_unknown_user_is_a_dead_address_only_in_its_own_reports():
    raw = (CORPUS / "heldout/sisimai-dos-mta-mcafee-01.eml").read_bytes()
    entry = detect(raw).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@example.co.jp", Reason.USER_UNKNOWN,
                                                           FailureKind.DEAD)
    unmarked = raw.replace(b"X-NAI-Header: Modified by McAfee", b"X-Scanned-By: an unknown filter")
    assert detect(unmarked).failed[0].kind is FailureKind.TROUBLE  # the same words may be a filter's


def test_a_person_writing_a_japanese_error_subject_is_not_a_bounce():
    raw = ("From: Hanako <hanako@example.jp>\nTo: support@gateway.test\nSubject: =?UTF-8?B?"
           "44Oh44O844Or44Ko44Op44O86YCa55+l?=\nContent-Type: text/plain; charset=UTF-8\n\n"
           "昨日のメールエラー通知について質問があります。注文番号は 1234 です。\n").encode()
    assert Reader().read(raw).classification == "human"


def test_a_raw_iso_2022_jp_header_is_read_as_japanese():
    assert decode("\x1b$B%a!<%k%(%i!<DLCN\x1b(B") == "メールエラー通知"
    assert decode("Re: \x1b$B%F%9%H\x1b(B ok") == "Re: テスト ok"


def test_verizon_mms_gateway_no_valid_recipients_is_a_dead_address_only_from_that_gateway():
    raw = (CORPUS / "reports/sisimai-dos-lhost-verizon-01.eml").read_bytes()
    entry = detect(raw).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("0000000000@vzwpix.com", Reason.USER_UNKNOWN,
                                                           FailureKind.DEAD)
    elsewhere = raw.replace(b"sysadmin@m01.vzwpix.com", b"sysadmin@mms.example.net")
    assert detect(elsewhere).failed[0].kind is FailureKind.TROUBLE


def test_messagelabs_unindented_multiline_reply_stays_the_diagnostic():
    entry = detect((CORPUS / "reports/sisimai-bsd-rhost-messagelabs-01.eml").read_bytes()).failed[0]
    assert entry.recipient == "kijitora@example.messagelabs.com"
    assert "not permitted to 550 relay through this server without authentication" in entry.diagnostic


@pytest.mark.parametrize("name, reason", [
    ("heldout3/sisimai-bsd-rhost-godaddy-01.eml", Reason.TOO_MANY_CONN),  # 550 5.1.1 "... too many recipients this hour"
    ("heldout3/sisimai-bsd-rhost-godaddy-02.eml", Reason.BLOCKED),  # 553 5.1.3 with a Spamhaus lookup link
])
def test_a_dead_status_code_whose_words_blame_our_side_is_not_a_dead_address(name, reason):
    entry = detect((CORPUS / name).read_bytes()).failed[0]
    assert (entry.reason, entry.kind) == (reason, FailureKind.TROUBLE)


def test_a_dead_status_code_with_words_about_the_mailbox_stays_dead():
    from gateway.mail.bounces.base import failure
    assert failure("a@b.example", "5.1.1", "550 5.1.1 user unknown; blocked by policy").kind is FailureKind.DEAD
    assert failure("a@b.example", "5.1.1", "550 5.1.1 <a@b.example> recipient rejected").kind is FailureKind.DEAD


@pytest.mark.parametrize("name, header, other, reason, kind", [
    ("heldout3/sisimai-bsd-email-imailserver-01.eml", b"X-Mailer: <SMTP32 v990729>", b"X-Mailer: Mailer 1",
     Reason.USER_UNKNOWN, FailureKind.DEAD),
    ("heldout3/sisimai-bsd-email-imailserver-02.eml", b"X-Mailer: <SMTP32 v8.22>", b"X-Mailer: Mailer 1",
     Reason.MAILBOX_FULL, FailureKind.TROUBLE),
    ("heldout3/sisimai-bsd-email-verizon-02.eml", b"From: post_master@vtext.com", b"From: post_master@sms.example.net",
     Reason.USER_UNKNOWN, FailureKind.DEAD),
    ("heldout3/sisimai-bsd-lhost-messagelabs-02.eml", b"X-Msg-Ref: server-00.tower-000.messagelabs.com!",
     b"X-Msg-Ref: server-00.tower-000.filter.example!", Reason.USER_UNKNOWN, FailureKind.DEAD),
    ("heldout3/sisimai-bsd-email-gsuite-02.eml", b"<mailer-daemon@googlemail.com>", b"<mailer-daemon@mail.example.net>",
     Reason.USER_UNKNOWN, FailureKind.DEAD),
    # Symantec.cloud's bare "542 a@b Rejected" for an address not in the domain's valid list
    ("heldout4/sisimai-bsd-lhost-messagelabs-03.eml", b"X-Msg-Ref: server-0.tower-0.messagelabs.com!",
     b"X-Msg-Ref: server-0.tower-0.filter.example!", Reason.USER_UNKNOWN, FailureKind.DEAD),
])
def test_a_vendors_own_words_are_read_only_in_its_reports(name, header, other, reason, kind):
    raw = (CORPUS / name).read_bytes()
    assert header in raw
    entry = detect(raw).failed[0]
    assert (entry.reason, entry.kind) == (reason, kind)
    elsewhere = detect(raw.replace(header, other)).failed  # elsewhere the words are a guess (or no report read)
    assert [f.reason for f in elsewhere[:1]] != [reason]


def test_google_quotes_the_remote_reply_and_that_reply_is_read_not_its_summary():
    # "because the address couldn't be found" above the remote "550 #5.1.0 Address rejected" (a filter)
    entry = detect((CORPUS / "reports/sisimai-dos-email-gsuite-01.eml").read_bytes()).failed[0]
    assert (entry.reason, entry.kind) == (Reason.FILTERED, FailureKind.TROUBLE)


def test_amazon_ses_receiving_rule_template_mailbox_does_not_exist_is_a_filter_not_a_dead_address():
    raw = (CORPUS / "heldout3/sisimai-bsd-lhost-receivingses-01.eml").read_bytes()
    entry = detect(raw).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("userunknown@neko.example.jp", Reason.FILTERED,
                                                           FailureKind.TROUBLE)
    # the same words from an ordinary MTA's DSN are its recipient check
    assert detect(raw.replace(b"X-SES-Outgoing:", b"X-Other:")).failed[0].kind is FailureKind.DEAD


def test_mailmarshal_lists_the_failed_recipients_under_the_reason():
    entry = detect((CORPUS / "heldout3/sisimai-bsd-email-mailmarshalsmtp-02.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@nyaan.example.com", Reason.USER_UNKNOWN,
                                                           FailureKind.DEAD)  # "550 5.1.1 User unknown" above it


def test_an_address_followed_by_its_reason_in_brackets_is_a_failed_recipient():
    ours = _read("heldout3/sisimai-mac-email-x1-01.eml")  # "a@b [User unknown]", bare CR line ends
    assert (ours.verdict, ours.recipients) == ("trouble", {"kijitora@example.co.jp"})  # no command named: a filter


@pytest.mark.parametrize("name, reason", [
    ("heldout3/sisimai-bsd-rhost-cox-01.eml", Reason.BLOCKED),  # "sender rejected ... AUP#CDRBL" from cox.net
    ("heldout3/sisimai-bsd-rhost-spectrum-01.eml", Reason.TOO_MANY_CONN),  # "sender rejected ... AUP#In-1310"
    ("heldout3/sisimai-bsd-rhost-mimecast-01.eml", Reason.POLICY),  # "554 Host network not allowed"
    ("heldout3/sisimai-bsd-rhost-mimecast-02.eml", Reason.VIRUS),  # "554 email rejected due to security policies"
    ("heldout3/sisimai-bsd-rhost-nttdocomo-02.eml", Reason.REJECTED),  # docomo's "550 Unknown user" after DATA
])
def test_a_receiving_services_own_codes_give_the_reason_only_for_that_service(name, reason):
    from gateway.mail.bounces import remote_hosts
    raw = (CORPUS / name).read_bytes()
    entry = detect(raw).failed[0]
    assert entry.reason is reason and entry.kind is not FailureKind.DEAD
    elsewhere = replace(entry, recipient="someone@mail.example", remote_mta="dns; mx.mail.example")
    assert remote_hosts.refine(Verdict((elsewhere,), "dsn")).failures[0] == elsewhere


@pytest.mark.parametrize("name, reason", [
    ("heldout3/sisimai-bsd-email-gsuite-03.eml", Reason.NOT_ACCEPT),  # 4.0.0 "returned Null MX": no expiry
    ("heldout3/sisimai-bsd-email-office365-06.eml", Reason.NETWORK_ERROR),  # 5.4.312 "Message expired, DNS query failed"
    ("heldout3/sisimai-bsd-email-qmail-03.eml", Reason.REJECTED),  # "Connected to ... but sender was rejected"
    ("heldout3/sisimai-bsd-email-google-03.eml", Reason.FILTERED),  # Gmail: "554 5.7.0 Header error (state 18)"
])
def test_layout_words_that_name_the_step_or_the_domains_policy(name, reason):
    entry = detect((CORPUS / name).read_bytes()).failed[0]
    assert entry.reason is reason and entry.kind is FailureKind.TROUBLE


def test_qmail_names_the_refused_step_but_a_mailbox_reason_beside_it_stands():
    from gateway.mail.bounces.base import failure
    said = "<a@b.example>: Connected to 192.0.2.1 but sender was rejected. Remote host said: 552 5.2.2 mailbox full"
    assert failure("a@b.example", None, said).reason is Reason.MAILBOX_FULL


def test_exim_malformed_recipient_address_names_the_dropped_address():
    entry = detect((CORPUS / "heldout3/sisimai-bsd-email-exim-52.eml").read_bytes()).failed[0]
    # "kijitora@example.com <neko@example.net>: malformed address: ...": the one in brackets was dropped
    assert (entry.recipient, entry.reason, entry.kind) == ("neko@example.net", Reason.SYNTAX_ERROR,
                                                           FailureKind.TROUBLE)


def test_a_5_1_10_status_is_a_dead_address_only_in_microsofts_words_or_a_null_mx():
    from gateway.mail.bounces.base import failure
    # Sendmail's alias loop wrote 5.1.10 with "User unknown" only in the transcript: a filter, not proof
    entry = detect((CORPUS / "bounces/bounced-longer-status.eml").read_bytes()).failed[0]
    assert (entry.status, entry.kind) == ("5.1.10", FailureKind.TROUBLE)
    said = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    assert failure("a@b.example", "5.1.10", said).reason is Reason.USER_UNKNOWN
    assert failure("a@b.example", "5.1.10", "556 5.1.10 domain has a null MX").reason is Reason.NOT_ACCEPT


def test_a_report_in_a_charset_python_does_not_know_is_still_read():
    raw = (CORPUS / "autoreplies/flufl-qmail_08-cpanel-autoresponder-es.eml").read_bytes()
    assert b"ansi_x3.110-1983" in raw.lower()
    detect(raw)  # no LookupError from any detector
    bounce = (b"From: MAILER-DAEMON@mx.example.net\nTo: bounce@gateway.test\nSubject: failure notice\n"
              b"Content-Type: text/plain; charset=x-unknown-8\n\n<a@b.example>:\n550 5.1.1 user unknown\n")
    assert detect(bounce).failed[0].recipient == "a@b.example"


@pytest.mark.parametrize("said, reason", [
    ("550 5.7.1 Service unavailable; we do not accept mail from dynamic IPs", Reason.BLOCKED),
    ("554 5.7.1 This server does not accept mail from your IP address", None),
    ("550 This domain does not accept any mail", Reason.NOT_ACCEPT),
])
def test_not_accepting_mail_from_a_sender_is_no_domain_without_mail(said, reason):
    from gateway.mail.bounces.base import failure
    entry = failure("a@b.example", None, said)
    assert (entry.kind is FailureKind.DEAD) == (reason is Reason.NOT_ACCEPT)
    assert reason is None or entry.reason is reason


def test_aol_recipient_not_accepting_mail_from_us_is_a_working_address():
    # "could not be delivered because they are not accepting mail from xxx@lists.xxx.com"
    entry = detect((CORPUS / "bounces/flufl-aol-aol_01.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("screenname@aol.com", Reason.FILTERED, FailureKind.TROUBLE)


def test_kddi_failure_notice_under_a_plain_subject_is_known_by_its_sender():
    # au by KDDI: null sender, From no-reply@<host>.dion.ne.jp, Subject "Mail", no DSN
    raw = (CORPUS / "heldout4/sisimai-bsd-lhost-kddi-03.eml").read_bytes()
    ours = Reader().read(raw)
    assert (ours.classification, ours.verdict, ours.reasons[:1]) == ("bounce", "trouble", ["mailboxfull"])
    assert ours.recipients == {"kijitora@00000000000000.dion.ne.jp"}
    # the same message from a person (a real envelope sender) is no report
    assert Reader().read(raw.replace(b"Return-Path: <>", b"Return-Path: <a@cat.example.jp>", 1)).classification \
        != "bounce"


def test_interscan_transcript_names_the_recipient_in_the_rcpt_it_sent():
    # "Sent <<< RCPT TO:<a>" then "Received >>> 550 5.1.1 <a>... user unknown"
    entry = detect((CORPUS / "heldout4/sisimai-bsd-lhost-trendmicro-01.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@example.co.jp", Reason.USER_UNKNOWN,
                                                           FailureKind.DEAD)


def test_opensmtpd_envelope_expired_is_an_expiry_for_a_working_address():
    entry = detect((CORPUS / "heldout4/sisimai-bsd-lhost-opensmtpd-05.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@mail.example.co.jp", Reason.EXPIRED,
                                                           FailureKind.TROUBLE)


def test_domino_not_in_the_directory_in_japanese_is_a_dead_address():
    # ISO-2022-JP Diagnostic-Code: "... は Domino ディレクトリには見つかりません。"
    entry = detect((CORPUS / "heldout4/sisimai-bsd-lhost-domino-02.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@example.co.jp", Reason.USER_UNKNOWN,
                                                           FailureKind.DEAD)


def test_a_permanent_reply_under_a_temporary_status_keeps_its_stated_cause():
    # Postfix gave up with Status 4.0.0 on Orange's "550 mwinf5c04 ME Adresse IP source bloquee"
    entry = detect((CORPUS / "heldout4/sisimai-bsd-rhost-franceptt-06.eml").read_bytes()).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("xxxx@orange.fr", Reason.BLOCKED, FailureKind.TROUBLE)
    from gateway.mail.bounces.base import failure
    # a temporary reply the MTA gave up on is still an expiry
    assert failure("a@b.example", "4.0.0", "421 4.3.0 Upstream error").reason is Reason.EXPIRED


def test_gmail_gave_up_connecting_is_an_expiry_for_a_working_address():
    # "Delivery ... failed permanently: The recipient server did not accept our requests to connect"
    raw = (CORPUS / "heldout4/sisimai-bsd-email-google-10.eml").read_bytes()
    entry = detect(raw).failed[0]
    assert (entry.recipient, entry.reason, entry.kind) == ("kijitora@6jo.example.co.jp", Reason.EXPIRED,
                                                           FailureKind.TROUBLE)


def test_hotmail_jmrp_complaint_is_feedback_never_a_bounce():
    # staff@hotmail.com, "complaint about message from <ip>", the original attached with
    # X-HmXmrOriginalRecipient: an abuse complaint in Microsoft's pre-ARF format
    raw = (CORPUS / "heldout4/sisimai-bsd-arf-13.eml").read_bytes()
    ours = _read("heldout4/sisimai-bsd-arf-13.eml")
    assert (ours.verdict, ours.reasons, ours.recipients) == ("report", ["feedback"], {"recipient@hotmail.com"})
    assert not detect(raw).failed
    # the same words from anyone else are no complaint
    assert Reader().read(raw.replace(b"From: staff@hotmail.com", b"From: staff@mail.example.net")).verdict != "report"
