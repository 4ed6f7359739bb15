"""Mail hygiene over real SMTP: bounces that escalate, auto-replies, loops and the notice
ladder, floods, and sender trust from the administrator's Authentication-Results."""

from __future__ import annotations

import json
import smtplib
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from gateway import addresses, reports
from gateway.cli import main
from gateway.clock import BusinessCalendar
from gateway.models import Outbox
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail, tx_date, write_config

MAIL = Path(__file__).resolve().parents[1] / "mail"
CAL = BusinessCalendar("Europe/Paris", "FR")


def _open(gateway, alias="delivery"):
    gateway.send(build_mail(sender=CUSTOMER, to=f"{alias}@{DOMAIN}", subject="TX-1001 problem",
                            body="My parcel TX-1001 never arrived."), to=f"{alias}@{DOMAIN}")
    gateway.settle()
    return _case(gateway)


def _case(gateway):
    with gateway.runtime.database.unit_of_work() as db:
        return reports.show_case(db, reports.list_cases(db)[0]["reference"])


def _address(case, party):
    return addresses.case_address(case["reference"].lower(), party, domain=DOMAIN, keys=KEYS)


def _outbox_to(gateway, recipient):
    with gateway.runtime.database.unit_of_work() as db:
        return db.scalars(select(Outbox).where(Outbox.recipient == recipient).order_by(Outbox.id)).all()


def _headline(received):
    return received.text().split("\n", 1)[0]


def _postfix_dsn(sample: str, *, failed: str, verp: str) -> bytes:
    """A real Postfix DSN, re-addressed to our VERP address and the failed recipient."""
    raw = (MAIL / sample).read_bytes()
    return (raw.replace(b"nobody@merchant.test", failed.encode())
               .replace(b"bounces+abc123@disputes.test", verp.encode()))


def _send_dsn(gateway, raw: bytes, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.sendmail("<>", [to], raw)
    gateway.settle()


def _verp(gateway, row):
    return addresses.bounce_address(row.verp_token, domain=DOMAIN, keys=KEYS)


def _timers(gateway, tmp_path, at):
    assert main(["--config", str(write_config(tmp_path / "cli.toml", gateway.settings)), "timers", "run",
                 "--now", at.isoformat()], clock=gateway.clock) == 0


def test_hard_bounce_of_the_merchant_escalates_at_once(gateway, sink, tmp_path, capsys):
    case = _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    staff_before, customer_before = len(sink.to(STAFF[0])), len(sink.to(CUSTOMER))
    _send_dsn(gateway, _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT, verp=_verp(gateway, row)),
              _verp(gateway, row))
    case = _case(gateway)
    assert case["escalated"] and case["merchant_unreachable"] and case["state"] == "with_staff"
    assert case["bounces"][0]["status"] == "5.1.1" and case["bounces"][0]["kind"] == "dead"
    assert case["bounces"][0]["reason"] == "userunknown"
    escalation = sink.to(STAFF[0])[staff_before]
    assert escalation.text().startswith("Escalated") and "5.1.1" in escalation.text()
    assert "does not work" in sink.to(CUSTOMER)[customer_before].text()
    assert len(sink.to(CUSTOMER)) == customer_before + 1
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    capsys.readouterr()
    assert main(["--config", str(config), "merchants", "show", "shop1", "--json"], clock=gateway.clock) == 0
    merchant = json.loads(capsys.readouterr().out)
    assert merchant["address_status"] == "invalid" and "5.1.1" in merchant["address_invalid_reason"]
    # no more reminders go to the dead address
    merchant_before = len(sink.to(MERCHANT))
    _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 3))
    assert len(sink.to(MERCHANT)) == merchant_before
    # the merchant's address is updated; staff ask for the failed mail to be sent again
    gateway.load(tmp_path, merchants="merchant_id,name,support_email,locale\nshop1,Shop One,help@shop.test,en\n")
    capsys.readouterr()
    assert main(["--config", str(config), "merchants", "show", "shop1", "--json"], clock=gateway.clock) == 0
    assert json.loads(capsys.readouterr().out)["address_status"] == "ok"
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#retry"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    resent = sink.to("help@shop.test")
    assert len(resent) == 2 and any("never arrived" in r.text() for r in resent)
    assert all(r.rcpt_tos == ["help@shop.test"] and "help@shop.test" in r.header("To") for r in resent)


def test_smtp_5xx_at_delivery_is_a_hard_bounce(gateway, sink):
    sink.handler.rcpt_answers[MERCHANT] = ["550 5.1.1 <support@shop.test>: Recipient address rejected"]
    _open(gateway)
    case = _case(gateway)
    assert case["escalated"] and case["merchant_unreachable"]
    assert any(b["detected_by"] == "smtp" for b in case["bounces"])


def test_a_spam_refusal_at_send_time_is_that_messages_problem_not_the_merchants(gateway, sink):
    sink.handler.rcpt_answers[MERCHANT] = ["550 5.7.1 Message rejected as spam by content filter"]
    _open(gateway)
    case = _case(gateway)
    assert not case["escalated"] and not case["merchant_unreachable"]
    assert {(b["kind"], b["reason"]) for b in case["bounces"]} == {("message", "spamdetected")}
    told = [r for r in sink.to(STAFF[0]) if "refused by the merchant's mail server" in _headline(r)]
    assert len(told) == 1 and "taken for spam" in told[0].text() and "550 5.7.1" in told[0].text()
    with gateway.runtime.database.unit_of_work() as db:
        merchant = reports.show_merchant(db, "shop1")
    assert merchant["address_status"] == "ok" and merchant["delivery_trouble"] is None


def test_delay_warning_is_not_a_bounce(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    _send_dsn(gateway, _postfix_dsn("postfix_delayed_4xx.eml", failed=MERCHANT, verp=_verp(gateway, row)),
              _verp(gateway, row))
    case = _case(gateway)
    assert not case["escalated"] and case["bounces"][0]["kind"] == "delayed"


def test_an_expired_delivery_is_trouble_not_a_dead_address(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    _send_dsn(gateway, _postfix_dsn("postfix_expired_4xx.eml", failed=MERCHANT, verp=_verp(gateway, row)),
              _verp(gateway, row))
    case = _case(gateway)
    assert not case["escalated"] and case["bounces"][0]["reason"] == "expired"
    assert any(e["kind"] == "delivery_problem" for e in case["events"])
    assert "not getting through" in _headline(sink.to(STAFF[0])[-1])


def test_customer_bounce_is_shown_to_staff_only(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, CUSTOMER)[-1]
    merchant_before = len(sink.to(MERCHANT))
    _send_dsn(gateway, _postfix_dsn("postfix_dsn_unknown_user.eml", failed=CUSTOMER, verp=_verp(gateway, row)),
              _verp(gateway, row))
    assert "mail to the customer failed" in _headline(sink.to(STAFF[0])[-1])
    assert len(sink.to(MERCHANT)) == merchant_before and not _case(gateway)["escalated"]


def test_bounce_to_the_intake_address_is_matched_by_the_message_it_returns(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    raw = _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT, verp=f"disputes@{DOMAIN}")
    raw = raw.replace(b"<179566333106.13862.13762420898156194513@disputes.test>", row.message_id.encode())
    _send_dsn(gateway, raw, f"disputes@{DOMAIN}")
    case = _case(gateway)
    assert case["escalated"] and case["bounces"][0]["detected_by"] == "dsn"


def test_a_forged_bounce_naming_the_merchant_changes_nothing(gateway, sink):
    """A stranger's fake report to the intake cannot disable a merchant: it quotes nothing we sent."""
    _open(gateway)
    raw = _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT, verp=f"disputes@{DOMAIN}")
    _send_dsn(gateway, raw, f"disputes@{DOMAIN}")
    case = _case(gateway)
    assert not case["escalated"] and case["bounces"] == []
    with gateway.runtime.database.unit_of_work() as db:
        from gateway import reports as r

        assert "not trusted" in r.list_quarantine(db)["messages"][0]["disposition"]


def test_merchant_out_of_office_is_recorded_not_relayed_and_reminders_go_on(gateway, sink, tmp_path):
    case = _open(gateway)
    customer_before = len(sink.to(CUSTOMER))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Automatic reply: TX-1001 problem",
                            body="I am out of the office until Monday.",
                            headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert len(sink.to(CUSTOMER)) == customer_before
    case = _case(gateway)
    assert case["state"] == "awaiting_merchant"
    assert any(e["kind"] == "auto_reply_recorded" for e in case["events"])
    merchant_before = len(sink.to(MERCHANT))
    _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 2))
    assert len(sink.to(MERCHANT)) == merchant_before + 1


def test_vacation_reply_to_the_bounce_address_is_not_a_bounce(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    gateway.send(build_mail(sender=MERCHANT, to=_verp(gateway, row), subject="Out of office",
                            body="Back on Monday.", headers={"Auto-Submitted": "auto-replied"}),
                 to=_verp(gateway, row), sender="")
    gateway.settle()
    case = _case(gateway)
    assert not case["escalated"] and case["bounces"] == []


def test_our_own_mail_coming_back_is_dropped(gateway, sink):
    case = _open(gateway)
    relay = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message)
    before = len(sink.received)
    gateway.send(relay.raw, to=_address(case, "m"), sender=MERCHANT)  # a forwarding rule sent it back
    gateway.settle()
    assert len(sink.received) == before
    assert any(e["kind"] == "loop_dropped" for e in _case(gateway)["events"])


def test_a_vacation_responder_cannot_ping_pong_past_the_ladder(gateway, sink):
    """A responder that answers everything, without any auto-reply header, writes to the intake."""
    responder = "always-away@holiday.test"
    gateway.send(build_mail(sender=responder, to=f"disputes@{DOMAIN}", subject="Hello", body="I am away."),
                 to=f"disputes@{DOMAIN}", sender=responder)
    answered = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gateway.settle()
        ours = sink.to(responder)
        if len(ours) == answered:
            break
        for message in ours[answered:]:  # the responder answers each of our notices
            gateway.send(build_mail(sender=responder, to=f"disputes@{DOMAIN}", subject="Re: " + message.header("Subject"),
                                    body="I am away.", in_reply_to=message.header("Message-ID")),
                         to=f"disputes@{DOMAIN}", sender=responder)
        answered = len(ours)
    assert len(sink.to(responder)) == gateway.settings.hygiene.notices_per_address_per_hour


def test_a_flood_freezes_the_case_and_alerts_staff_once(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"freeze_after_messages": 5, "freeze_window_minutes": 10})
    case = _open(gateway)
    for number in range(8):
        gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body=f"Message {number}"),
                     to=_address(case, "c"))
    gateway.settle()
    relayed = [r for r in sink.to(MERCHANT) if "Message " in r.text()]
    assert len(relayed) == 4  # the opening message + 4 more make 5; the 6th freezes
    frozen_alerts = [r for r in sink.to(STAFF[0]) if "frozen" in _headline(r)]
    assert len(frozen_alerts) == 1 and _case(gateway)["frozen"]
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#unfreeze"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    assert not _case(gateway)["frozen"]


def _auth(result: str, authserv: str = "mx.gw.test", spf: str = "fail") -> dict:
    return {"Authentication-Results": f"{authserv}; spf={spf} smtp.mailfrom=shop.test; dkim=none; "
                                      f"dmarc={result} header.from=shop.test"}


def test_trusted_dmarc_fail_holds_a_reply_from_the_right_address(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": "mx.gw.test"})
    case = _open(gateway)
    customer_before = len(sink.to(CUSTOMER))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Refund refused.",
                            headers=_auth("fail")), to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert len(sink.to(CUSTOMER)) == customer_before
    assert "DMARC fails" in _case(gateway)["held_messages"][0]["reason"]


def test_authentication_results_from_another_authserv_id_are_ignored(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": "mx.gw.test"})
    case = _open(gateway)
    customer_before = len(sink.to(CUSTOMER))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Refund sent.",
                            headers=_auth("fail", authserv="attacker.example")), to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert len(sink.to(CUSTOMER)) == customer_before + 1


def test_a_merchant_without_dmarc_can_still_answer(backend, make_gateway, sink):
    gateway = make_gateway(backend, hygiene={"authserv_id": "mx.gw.test"})
    case = _open(gateway)
    customer_before = len(sink.to(CUSTOMER))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Refund sent.",
                            headers=_auth("none", spf="none")), to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert len(sink.to(CUSTOMER)) == customer_before + 1
    assert any(e["kind"] == "sender_unverified" for e in _case(gateway)["events"])


def test_hostile_content_is_made_safe_and_what_was_removed_is_listed(gateway, sink):
    case = _open(gateway)
    for sample, author in (("executable_attachment.eml", b"Carol Private <carol@customer.example>"),
                           ("hostile_html.eml", b"Mallory <mallory@attacker.example>")):
        raw = (MAIL / sample).read_bytes().replace(author, MERCHANT.encode())
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        gateway.send(raw, to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    events = [e for e in _case(gateway)["events"] if e["kind"] == "content_filtered"]
    assert events, "the filtering is recorded on the case for staff"
    for message in sink.to(CUSTOMER)[-2:]:
        raw_out = message.raw.decode("utf-8", "replace").lower()
        assert "<script" not in raw_out and "javascript:" not in raw_out and "onerror" not in raw_out
    assert any("removed by the dispute service" in m.text().lower() for m in sink.to(CUSTOMER)[-2:])


def test_a_second_bounce_of_the_same_dead_address_is_only_recorded(gateway, sink):
    _open(gateway)
    notice_row, relay_row = _outbox_to(gateway, MERCHANT)[-2:]
    _send_dsn(gateway, _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT,
                                    verp=_verp(gateway, relay_row)), _verp(gateway, relay_row))
    staff_before = len(sink.to(STAFF[0]))
    _send_dsn(gateway, _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT,
                                    verp=_verp(gateway, notice_row)), _verp(gateway, notice_row))
    case = _case(gateway)
    assert len(case["bounces"]) == 2 and len(sink.to(STAFF[0])) == staff_before
    assert [e["kind"] for e in case["events"]].count("merchant_bounced") == 1


def test_a_delay_warning_a_day_after_sending_makes_the_merchant_unreachable(backend, make_gateway, sink, clock):
    from datetime import timedelta

    gateway = make_gateway(backend)
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    clock.set(clock.now() + timedelta(hours=25))
    _send_dsn(gateway, _postfix_dsn("postfix_delayed_4xx.eml", failed=MERCHANT, verp=_verp(gateway, row)),
              _verp(gateway, row))
    case = _case(gateway)
    assert case["escalated"] and case["merchant_unreachable"]
    assert (case["bounces"][0]["kind"], case["bounces"][0]["reason"]) == ("trouble", "expired")
    assert "24 hours" in case["bounces"][0]["diagnostic"]
    with gateway.runtime.database.unit_of_work() as db:
        assert reports.show_merchant(db, "shop1")["address_status"] == "ok"  # unreachable, not dead


def test_a_new_case_for_a_merchant_already_known_dead_goes_to_staff_at_once(gateway, sink):
    _open(gateway)
    row = _outbox_to(gateway, MERCHANT)[-1]
    _send_dsn(gateway, _postfix_dsn("postfix_dsn_unknown_user.eml", failed=MERCHANT, verp=_verp(gateway, row)),
              _verp(gateway, row))
    merchant_before = len(sink.to(MERCHANT))
    gateway.send(build_mail(sender="dave@other.test", to=f"delivery@{DOMAIN}", subject="TX-2001 lost",
                            body="My parcel TX-2001 never arrived."), to=f"delivery@{DOMAIN}", sender="dave@other.test")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        dave = next(c for c in reports.list_cases(db) if c["customer_email"] == "dave@other.test")
    assert dave["escalated"] and dave["merchant_unreachable"] and dave["state"] == "with_staff"
    assert len(sink.to(MERCHANT)) == merchant_before
    assert "does not work" in sink.to("dave@other.test")[-1].text()


def test_a_busy_merchant_hears_of_every_new_case(backend, make_gateway, sink, tmp_path):
    """The notice ladder stops loops, not a merchant's own case notices."""
    gateway = make_gateway(backend, load=False)
    day = tx_date(gateway.clock.now()).date()
    rows = "".join(f"TX-50{n:02d},shop1,buyer{n}@customer.test,Buyer {n},10,EUR,{day}\n" for n in range(8))
    gateway.load(tmp_path, transactions="reference,merchant_id,customer_email,customer_name,amount,currency,"
                                        "transaction_date\n" + rows)
    for n in range(8):
        sender = f"buyer{n}@customer.test"
        gateway.send(build_mail(sender=sender, to=f"delivery@{DOMAIN}", subject=f"TX-50{n:02d} lost", body="Lost."),
                     to=f"delivery@{DOMAIN}", sender=sender)
    gateway.settle()
    notices = [r for r in sink.to(MERCHANT) if r.text().startswith("New customer case")]
    assert len(notices) == 8
