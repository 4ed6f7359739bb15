"""Case lifecycle over real SMTP: reminders, escalation, commands, closure, auto-close,
with time travel through `dispute-gateway timers run --now`."""

from __future__ import annotations

import threading

from dramatiq.brokers.stub import StubBroker
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from gateway import addresses, reports
from gateway.cli import main
from gateway.clock import BusinessCalendar, FixedClock
from gateway.casework import due_timers
from gateway.models import Case, Merchant
from workers.runtime import Runtime
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail, write_config

CAL = BusinessCalendar("Europe/Paris", "FR")


def _open(gateway, sink, alias="delivery", body="My parcel TX-1001 never arrived."):
    gateway.send(build_mail(sender=CUSTOMER, to=f"{alias}@{DOMAIN}", subject="TX-1001 problem", body=body),
                 to=f"{alias}@{DOMAIN}")
    gateway.settle()
    return _case(gateway)


def _case(gateway, reference=None):
    with gateway.runtime.database.unit_of_work() as db:
        reference = reference or reports.list_cases(db)[0]["reference"]
        return reports.show_case(db, reference)


def _address(case, party):
    return addresses.case_address(case["reference"].lower(), party, domain=DOMAIN, keys=KEYS)


def _timers(gateway, tmp_path, at: datetime, capsys=None) -> str:
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    assert main(["--config", str(config), "timers", "run", "--now", at.isoformat()], clock=gateway.clock) == 0
    return capsys.readouterr().out if capsys else ""


def _next_friday(after: datetime) -> datetime:
    """10:00 UTC on the first Friday after `after` that is a business day (no holiday)."""
    day = after.date() + timedelta(days=1)
    while day.weekday() != 4 or not CAL.is_business_day(day):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=timezone.utc)


def _subjects(sink, address):
    """The notice headline of each message (case mail keeps the thread subject)."""
    return [r.text().split("\n", 1)[0] for r in sink.to(address)]


def _texts(sink, address):
    return [r.text() for r in sink.to(address)]


def test_silent_merchant_is_reminded_twice_then_escalated_and_staff_are_cced(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    opened = datetime.fromisoformat(case["opened_at"])
    assert case["dispute_type"] == "not_delivered"
    before = len(sink.to(MERCHANT))
    out = _timers(gateway, tmp_path, CAL.add_business_days(opened, 2) - timedelta(minutes=1), capsys)
    assert "0 timer action" in out and len(sink.to(MERCHANT)) == before
    out = _timers(gateway, tmp_path, CAL.add_business_days(opened, 2), capsys)
    assert "merchant reminder 1 sent" in out
    assert len(sink.to(MERCHANT)) == before + 1 and "waiting for your answer" in _texts(sink, MERCHANT)[-1]
    _timers(gateway, tmp_path, CAL.add_business_days(opened, 2) + timedelta(hours=1))  # nothing twice
    assert len(sink.to(MERCHANT)) == before + 1
    _timers(gateway, tmp_path, CAL.add_business_days(opened, 5))
    second = _texts(sink, MERCHANT)[-1]
    escalation_day = CAL.add_business_days(opened, 7)
    assert "second reminder" in second and escalation_day.strftime("%-d %B %Y") in second
    assert "general information" in second.lower()
    customer_before = len(sink.to(CUSTOMER))
    out = _timers(gateway, tmp_path, escalation_day, capsys)
    assert "escalated" in out
    case = _case(gateway)
    assert case["escalated"] and case["state"] == "with_staff"
    history = [r for r in sink.to(STAFF[0]) if r.text().startswith("Escalated")]
    assert history and "My parcel TX-1001 never arrived." in history[-1].text()
    assert len(sink.to(CUSTOMER)) == customer_before + 1
    assert "SignalConso" in _texts(sink, CUSTOMER)[-1]
    assert "ODR" not in _texts(sink, CUSTOMER)[-1]
    # from now on staff get a copy of every relay, from the staff case address
    staff_before = len(sink.to(STAFF[0]))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Sorry, refund on its way."),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert "refund on its way" in _texts(sink, CUSTOMER)[-1]
    copy = sink.to(STAFF[0])[staff_before]
    assert "refund on its way" in copy.text() and "-s-" in copy.header("From")


def test_customer_resolved_closes_and_confirms_to_both(gateway, sink):
    case = _open(gateway, sink)
    merchant_before = len(sink.to(MERCHANT))
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="#resolved\nThanks!"),
                 to=_address(case, "c"))
    gateway.settle()
    case = _case(gateway)
    assert case["state"] == "closed" and case["closed_reason"] == "customer_resolved"
    assert "is closed" in _subjects(sink, CUSTOMER)[-1]
    assert len(sink.to(MERCHANT)) == merchant_before + 2  # the rest of the message and the closing notice
    # (delivered in parallel, so in either order; their Date headers keep them in order in a mail client)
    relayed, closing = sorted(sink.to(MERCHANT)[-2:], key=lambda r: "is closed" in r.text().split("\n", 1)[0])
    assert "is closed" in closing.text().split("\n", 1)[0]  # the notice's headline
    assert "#resolved" not in relayed.text() and "Thanks!" in relayed.text()


def test_quoted_resolved_does_not_close(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re",
                            body="Still nothing arrived.\n\nOn Mon, Shop wrote:\n> #resolved\n> please confirm"),
                 to=_address(case, "c"))
    gateway.settle()
    assert _case(gateway)["state"] == "awaiting_merchant"


def test_customer_escalate_brings_staff_in(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="We will not refund."),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert _case(gateway)["state"] == "awaiting_customer"
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="#escalade\nC'est inacceptable."),
                 to=_address(case, "c"))
    gateway.settle()
    case = _case(gateway)
    assert case["escalated"] and case["state"] == "with_staff"
    assert any("Escalated" in s for s in _subjects(sink, STAFF[1]))
    assert "inacceptable" in sink.to(MERCHANT)[-2].text() or "inacceptable" in sink.to(MERCHANT)[-1].text()


def test_merchant_cannot_close_or_escalate(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="#resolved\n#escalate\nDone."),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    case = _case(gateway)
    assert case["state"] == "awaiting_customer" and not case["escalated"]
    assert "#resolved" in sink.to(CUSTOMER)[-1].text()  # relayed as text


def test_staff_close_and_mail_to_a_closed_case(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re",
                            body="#close Merchant refunded 49.90 EUR on 1 Dec."), to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    closed = _case(gateway)
    assert closed["state"] == "closed" and closed["closed_reason"] == "staff_agreement"
    assert "Merchant refunded 49.90 EUR" in _texts(sink, CUSTOMER)[-1]
    assert "Merchant refunded 49.90 EUR" in _texts(sink, MERCHANT)[-1]
    merchant_before = len(sink.to(MERCHANT))
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="One more thing"),
                 to=_address(case, "c"))
    gateway.settle()
    assert len(sink.to(MERCHANT)) == merchant_before
    assert "not passed on" in _texts(sink, CUSTOMER)[-1]
    assert any(e["kind"] == "mail_to_closed_case" for e in _case(gateway)["events"])
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#reopen"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    assert _case(gateway)["state"] == "with_staff"


def test_staff_type_release_and_unknown_commands(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender="helper@shop.example", to=_address(case, "c"), subject="Re", body="I am Carol really"),
                 to=_address(case, "c"), sender="helper@shop.example")
    gateway.settle()
    held = _case(gateway)["held_messages"][0]
    merchant_before = len(sink.to(MERCHANT))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re",
                            body=f"#type damaged\n#release {held['id']}"), to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    case_now = _case(gateway)
    assert case_now["dispute_type"] == "damaged" and case_now["held_messages"][0]["released_at"]
    assert "I am Carol really" in sink.to(MERCHANT)[merchant_before].text()
    gateway.send(build_mail(sender=STAFF[1], to=_address(case, "s"), subject="Re", body="#frobnicate\nhello"),
                 to=_address(case, "s"), sender=STAFF[1])
    gateway.settle()
    answer = sink.to(STAFF[1])[-1]
    assert "#frobnicate" in answer.text() and "#close" in answer.text()
    assert "not understood" in answer.text().split("\n")[0]
    assert "not understood" not in _subjects(sink, STAFF[0])[-1]  # only the sender is answered


def test_payment_case_reminds_staff_at_the_end_of_the_business_day(gateway, sink, tmp_path):
    _open(gateway, sink, alias="payment", body="I was charged twice for TX-1001.")
    case = _case(gateway)
    assert case["dispute_type"] == "double_charge"
    due = datetime.fromisoformat(case["next_due_at"])
    assert due.astimezone(CAL.tz).hour == 17
    before = len(sink.to(STAFF[0]))
    _timers(gateway, tmp_path, due)
    assert "no staff answer" in _subjects(sink, STAFF[0])[-1]
    assert len(sink.to(STAFF[0])) == before + 1


def test_customer_reminders_after_the_merchant_answered(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Can you send a photo?"),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    answered = datetime.fromisoformat(_case(gateway)["next_due_at"]) - timedelta(days=7)
    _timers(gateway, tmp_path, answered + timedelta(days=7))
    assert "waiting for your answer" in _subjects(sink, CUSTOMER)[-1]
    _timers(gateway, tmp_path, answered + timedelta(days=14))
    assert len([s for s in _subjects(sink, CUSTOMER) if "waiting for your answer" in s]) == 2
    assert _case(gateway)["state"] == "awaiting_customer"  # silence never closes early


def test_auto_close_180_days_after_the_transaction(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Refund sent."),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    tx_date = datetime.fromisoformat(case["transaction_date"])
    _timers(gateway, tmp_path, tx_date + timedelta(days=100))
    assert "card" in _subjects(sink, CUSTOMER)[-1].lower()
    _timers(gateway, tmp_path, tx_date + timedelta(days=170))
    assert "will close on" in _subjects(sink, CUSTOMER)[-1] and "will close on" in _subjects(sink, MERCHANT)[-1]
    out = _timers(gateway, tmp_path, tx_date + timedelta(days=180), capsys)
    assert "closed" in out
    case = _case(gateway)
    assert case["state"] == "closed" and case["closed_reason"] == "expired"
    assert "is closed" in _subjects(sink, CUSTOMER)[-1] and "is closed" in _subjects(sink, MERCHANT)[-1]


def test_recent_customer_message_postpones_auto_close(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    tx_date = datetime.fromisoformat(case["transaction_date"])
    clock_runtime_now = tx_date + timedelta(days=175)
    gateway.clock.set(clock_runtime_now)
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="Still waiting!"),
                 to=_address(case, "c"))
    gateway.settle()
    _timers(gateway, tmp_path, tx_date + timedelta(days=181))
    assert _case(gateway)["state"] != "closed"
    _timers(gateway, tmp_path, clock_runtime_now + timedelta(days=14))
    assert _case(gateway)["state"] == "closed"


def test_two_schedulers_at_once_send_each_reminder_exactly_once(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    at = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 2)
    before = len(sink.to(MERCHANT))
    runtimes = [Runtime(gateway.settings, clock=FixedClock(at), inline=True, broker=StubBroker())
                for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(runtime):
        barrier.wait()
        due_timers.run_all_due(runtime.database, settings=runtime.settings, renderer=runtime.renderer,
                               now=runtime.now(), enqueue_delivery=runtime.enqueue_delivery)

    threads = [threading.Thread(target=run, args=(r,)) for r in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for runtime in runtimes:
        runtime.database.dispose()
    assert len(sink.to(MERCHANT)) == before + 1


def test_a_released_merchant_reply_counts_as_the_merchants_answer(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender="helpdesk@shop-support.example", to=_address(case, "m"), subject="Re",
                            body="We refunded you today."), to=_address(case, "m"), sender="helpdesk@shop-support.example")
    gateway.settle()
    held = _case(gateway)["held_messages"][0]
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body=f"#release {held['id']}"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    case_now = _case(gateway)
    assert case_now["state"] == "awaiting_customer"
    assert "We refunded you today." in sink.to(CUSTOMER)[-1].text()
    merchant_before = len(sink.to(MERCHANT))
    _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 8))
    assert len(sink.to(MERCHANT)) == merchant_before and not _case(gateway)["escalated"]


def test_an_unanswered_category_question_is_asked_again_then_goes_to_staff(gateway, sink, tmp_path):
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="TX-1001", body="Problem with TX-1001"),
                 to=f"disputes@{DOMAIN}")
    gateway.settle()
    opened = datetime.fromisoformat(_case(gateway)["opened_at"])
    _timers(gateway, tmp_path, opened + timedelta(days=7))
    assert "not heard from you" in _texts(sink, CUSTOMER)[-1]
    _timers(gateway, tmp_path, opened + timedelta(days=21))
    case = _case(gateway)
    assert case["escalated"] and case["state"] == "with_staff"
    assert any(r.text().startswith("Escalated") and "payment or a delivery" in r.text() for r in sink.to(STAFF[0]))


def test_a_held_message_to_the_merchant_address_does_not_stop_the_reminders(gateway, sink, tmp_path, capsys):
    """A held message counts for nothing until staff release it: anyone who learned the
    merchant's case address could otherwise silence the reminders and the escalation."""
    case = _open(gateway, sink)
    gateway.send(build_mail(sender="helpdesk@shop-support.example", to=_address(case, "m"), subject="Re",
                            body="We are on it."), to=_address(case, "m"), sender="helpdesk@shop-support.example")
    gateway.settle()
    assert _case(gateway)["held_messages"]
    out = _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 2), capsys)
    assert "merchant reminder 1 sent" in out
    _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 8))
    assert _case(gateway)["escalated"]


def test_staff_activity_holds_off_auto_close_and_a_reopened_case_can_close_again(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    tx_date = datetime.fromisoformat(case["transaction_date"])
    gateway.clock.set(tx_date + timedelta(days=178))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#to merchant\nPlease answer."),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    _timers(gateway, tmp_path, tx_date + timedelta(days=181))
    assert _case(gateway)["state"] != "closed"
    _timers(gateway, tmp_path, tx_date + timedelta(days=178 + 14))
    assert _case(gateway)["state"] == "closed"
    gateway.clock.set(tx_date + timedelta(days=200))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#reopen"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    _timers(gateway, tmp_path, tx_date + timedelta(days=201))
    assert _case(gateway)["state"] == "with_staff"  # not closed again at the next sweep
    _timers(gateway, tmp_path, tx_date + timedelta(days=200 + 15))
    assert _case(gateway)["state"] == "closed"


def test_a_new_request_answering_the_closing_notice_opens_a_new_case(gateway, sink):
    case = _open(gateway, sink)
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="#resolved"),
                 to=_address(case, "c"))
    gateway.settle()
    closing = sink.to(CUSTOMER)[-1]
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 again",
                            body="It broke again, TX-1001.", in_reply_to=closing.header("Message-ID")),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        states = sorted(c["state"] for c in reports.list_cases(db))
    assert states == ["awaiting_merchant", "closed"]


def test_a_case_staff_took_before_any_category_never_writes_to_the_merchant(gateway, sink, tmp_path):
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="TX-1001", body="Problem with TX-1001"),
                 to=f"disputes@{DOMAIN}")
    gateway.settle()
    case = _case(gateway)
    _timers(gateway, tmp_path, datetime.fromisoformat(case["opened_at"]) + timedelta(days=21))
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="Sorry, it is about the parcel."),
                 to=_address(case, "c"))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="We will look at it."),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    assert sink.to(MERCHANT) == []
    assert any("about the parcel" in r.text() for r in sink.to(STAFF[0]))
    assert "We will look at it." in _texts(sink, CUSTOMER)[-1]


def test_an_escalated_case_nobody_takes_up_reminds_staff_until_one_writes(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    escalation_day = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 7)
    _timers(gateway, tmp_path, escalation_day)
    assert _case(gateway)["escalated"]
    before = len(sink.to(STAFF[0]))
    out = _timers(gateway, tmp_path, CAL.add_business_days(escalation_day, 2), capsys)
    assert "staff reminder 1 sent (case with staff" in out
    assert len(sink.to(STAFF[0])) == before + 1
    reminder = sink.to(STAFF[0])[-1].text()
    assert "Reminder 1: case" in reminder and "because the merchant has not answered" in reminder
    customer_before, merchant_before = len(sink.to(CUSTOMER)), len(sink.to(MERCHANT))
    # a staff member writes: no second reminder
    gateway.clock.set(CAL.add_business_days(escalation_day, 3))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#note\nCalling the shop."),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    out = _timers(gateway, tmp_path, CAL.add_business_days(escalation_day, 6), capsys)
    assert "staff reminder" not in out
    assert not any("Reminder 2" in r.text() for r in sink.to(STAFF[0]))
    assert (len(sink.to(CUSTOMER)), len(sink.to(MERCHANT))) == (customer_before, merchant_before)


def test_payment_case_merchant_asked_by_staff_is_reminded_and_its_answer_reaches_staff(gateway, sink, tmp_path,
                                                                                     capsys):
    case = _open(gateway, sink, alias="payment", body="I was charged twice for TX-1001.")
    assert sink.to(MERCHANT) == []  # payment cases go to staff only
    asked = _next_friday(datetime.fromisoformat(case["opened_at"]))
    gateway.clock.set(asked)
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re",
                            body="#to merchant\nDid you refund the second charge of TX-1001?"),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    assert "refund the second charge" in sink.to(MERCHANT)[-1].text()
    out = _timers(gateway, tmp_path, asked + timedelta(days=2), capsys)  # Sunday: not yet
    assert "merchant reminded" not in out
    out = _timers(gateway, tmp_path, CAL.add_business_days(asked, 1), capsys)  # Monday
    assert "merchant reminded" in out
    reminder = sink.to(MERCHANT)[-1]
    assert "our staff are waiting for your answer" in reminder.text().split("\n", 1)[0]
    assert _address(case, "m") in reminder.header("From")  # answering it goes to the case
    staff_before = len(sink.to(STAFF[0]))
    gateway.clock.set(CAL.add_business_days(asked, 1) + timedelta(hours=2))
    gateway.send(build_mail(sender=MERCHANT, to=_address(case, "m"), subject="Re", body="Refunded this morning."),
                 to=_address(case, "m"), sender=MERCHANT)
    gateway.settle()
    assert any("Refunded this morning." in r.text() for r in sink.to(STAFF[0])[staff_before:])  # staff own the case
    assert "Refunded this morning." in _texts(sink, CUSTOMER)[-1]
    merchant_before = len(sink.to(MERCHANT))
    out = _timers(gateway, tmp_path, CAL.add_business_days(asked, 4), capsys)
    assert "merchant reminded" not in out and len(sink.to(MERCHANT)) == merchant_before


def test_an_open_payment_case_warns_staff_before_the_legal_answer_deadline(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink, alias="payment", body="I was charged twice for TX-1001.")
    opened = datetime.fromisoformat(case["opened_at"])
    due = CAL.add_business_days(opened, 15)
    out = _timers(gateway, tmp_path, CAL.add_business_days(opened, 12), capsys)
    assert f"written answer due by {due.date()}" in out
    warning = sink.to(STAFF[0])[-1].text()
    assert "written answer due by " + due.strftime("%-d %B %Y") in warning
    assert "holding reply" in warning and "L133-45" in warning
    assert not any("L133-45" in r.text() for r in sink.to(CUSTOMER))  # for staff only
    gateway.clock.set(CAL.add_business_days(opened, 13))
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body="#close Refunded twice-charged amount."),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()
    assert _case(gateway)["state"] == "closed"
    out = _timers(gateway, tmp_path, CAL.add_business_days(opened, 33), capsys)
    assert "due by" not in out


def _staff_says(gateway, case, at, body):
    gateway.clock.set(at)
    gateway.send(build_mail(sender=STAFF[0], to=_address(case, "s"), subject="Re", body=body),
                 to=_address(case, "s"), sender=STAFF[0])
    gateway.settle()


def test_a_staff_message_to_both_parties_does_not_chase_the_merchant(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    opened = datetime.fromisoformat(case["opened_at"])
    gateway.clock.set(opened + timedelta(minutes=5))
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="#escalate\nPlease help."),
                 to=_address(case, "c"))
    gateway.settle()
    _staff_says(gateway, case, opened + timedelta(hours=1), "Carol, could you send us a photo of the parcel?")
    out = _timers(gateway, tmp_path, CAL.add_business_days(opened + timedelta(hours=1), 1), capsys)
    assert "merchant reminded" not in out


def test_no_stale_requests_or_past_deadlines_after_a_reopen(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink, alias="payment", body="I was charged twice for TX-1001.")
    opened = datetime.fromisoformat(case["opened_at"])
    _staff_says(gateway, case, opened + timedelta(hours=1), "#to merchant\nDid you refund the second charge?")
    gateway.clock.set(opened + timedelta(hours=2))
    gateway.send(build_mail(sender=CUSTOMER, to=_address(case, "c"), subject="Re", body="#resolved"),
                 to=_address(case, "c"))
    gateway.settle()
    reopened = CAL.add_business_days(opened, 40)
    _staff_says(gateway, case, reopened, "#reopen")
    assert _case(gateway)["state"] == "with_staff"
    out = _timers(gateway, tmp_path, reopened + timedelta(minutes=1), capsys)
    assert "merchant reminded" not in out and "due by" not in out


def test_a_request_made_before_the_escalation_is_not_chased_after_it(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    opened = datetime.fromisoformat(case["opened_at"])
    _staff_says(gateway, case, opened + timedelta(hours=1), "#to merchant\nPlease answer the customer.")
    escalation_day = CAL.add_business_days(opened, 7)
    out = _timers(gateway, tmp_path, escalation_day, capsys)
    out += _timers(gateway, tmp_path, escalation_day + timedelta(minutes=2), capsys)
    assert "escalated" in out and "merchant reminded" not in out


def test_the_follow_up_of_a_dead_merchant_case_does_not_say_the_merchant_was_told(gateway, sink, tmp_path):
    with gateway.runtime.database.unit_of_work() as db:
        db.get(Merchant, "shop1").address_invalid = True
    _open(gateway, sink)
    case = _case(gateway)
    assert case["state"] == "with_staff"
    _timers(gateway, tmp_path, CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 2) + timedelta(minutes=1))
    reminder = [r.text() for r in sink.to(STAFF[0]) if r.text().startswith("Reminder 1")][-1]
    assert "because the merchant's email address does not work" in reminder
    assert "the merchant has received nothing" in reminder and "Both parties" not in reminder
    assert sink.to(MERCHANT) == []


def test_cases_opened_before_an_upgrade_get_new_timers_when_the_scheduler_starts(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    escalation_day = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 7)
    _timers(gateway, tmp_path, escalation_day)
    with gateway.runtime.database.unit_of_work() as db:
        db.scalar(select(Case)).next_due_at = escalation_day + timedelta(days=90)  # what an older version stored
    out = _timers(gateway, tmp_path, CAL.add_business_days(escalation_day, 2), capsys)
    assert "1 open case(s) rescheduled" in out and "staff reminder 1 sent" in out


def test_the_follow_up_says_when_the_merchant_had_mail_but_not_the_escalation(gateway, sink, tmp_path):
    case = _open(gateway, sink)
    assert sink.to(MERCHANT)  # it had the new case
    with gateway.runtime.database.unit_of_work() as db:  # what a later hard bounce does
        db.get(Merchant, "shop1").address_invalid = True
    escalation_day = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 7)
    _timers(gateway, tmp_path, escalation_day)
    _timers(gateway, tmp_path, CAL.add_business_days(escalation_day, 2))
    reminder = [r.text() for r in sink.to(STAFF[0]) if r.text().startswith("Reminder 1")][-1]
    assert "the merchant was not: its address did not accept our mail" in reminder


def test_releasing_a_held_customer_message_on_a_case_without_category_never_reaches_the_merchant(
        gateway, sink, tmp_path):
    gateway.send(build_mail(sender=CUSTOMER, to=f"disputes@{DOMAIN}", subject="TX-1001", body="Problem with TX-1001"),
                 to=f"disputes@{DOMAIN}")
    gateway.settle()
    case = _case(gateway)
    _timers(gateway, tmp_path, datetime.fromisoformat(case["opened_at"]) + timedelta(days=21, minutes=1))
    assert _case(gateway)["state"] == "with_staff" and _case(gateway)["category"] is None
    other = "carol.work@elsewhere.test"
    gateway.send(build_mail(sender=other, to=_address(case, "c"), subject="Re", body="The order was a gift."),
                 to=_address(case, "c"), sender=other)
    gateway.settle()
    held = _case(gateway)["held_messages"]
    _staff_says(gateway, case, gateway.runtime.now(), f"#release {held[0]['id']}")
    assert sink.to(MERCHANT) == []
    assert any("The order was a gift." in r.text() for r in sink.to(STAFF[0]))


def test_scheduler_once_reschedules_cases_from_before_an_upgrade(gateway, sink, tmp_path, capsys):
    _open(gateway, sink)
    with gateway.runtime.database.unit_of_work() as db:
        row = db.scalar(select(Case))
        expected, row.next_due_at = row.next_due_at, row.next_due_at + timedelta(days=90)
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    assert main(["--config", str(config), "scheduler", "--once"], clock=gateway.clock) == 0
    with gateway.runtime.database.unit_of_work() as db:
        assert db.scalar(select(Case)).next_due_at == expected


def test_a_scheduler_that_starts_again_with_the_same_timers_recomputes_no_case(gateway, sink, tmp_path):
    """Each start recomputed every open case (0.6 ms each: minutes for a large install before
    the first sweep); now only an upgrade or a change of [timers] does."""
    _open(gateway, sink)
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    assert main(["--config", str(config), "scheduler", "--once"], clock=gateway.clock) == 0
    with gateway.runtime.database.unit_of_work() as db:
        row = db.scalar(select(Case))
        computed, row.next_due_at = row.next_due_at, row.next_due_at + timedelta(days=90)
    assert main(["--config", str(config), "scheduler", "--once"], clock=gateway.clock) == 0
    with gateway.runtime.database.unit_of_work() as db:
        assert db.scalar(select(Case)).next_due_at == computed + timedelta(days=90)  # not recomputed
    config.write_text(config.read_text() + "\n[timers]\nmerchant_reminder_business_days = [3, 5]\n")
    assert main(["--config", str(config), "scheduler", "--once"], clock=gateway.clock) == 0
    with gateway.runtime.database.unit_of_work() as db:
        moved = db.scalar(select(Case)).next_due_at
    assert computed < moved < computed + timedelta(days=90)  # the first reminder a business day later


def test_a_refused_staff_message_does_not_stop_the_follow_up(gateway, sink, tmp_path, capsys):
    case = _open(gateway, sink)
    escalation_day = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 7)
    _timers(gateway, tmp_path, escalation_day)
    _staff_says(gateway, case, escalation_day + timedelta(hours=1), "Hi both,\n#to customer\nWe are on it.")
    assert "below other text" in sink.to(STAFF[0])[-1].text()  # refused: nothing was sent
    out = _timers(gateway, tmp_path, CAL.add_business_days(escalation_day, 2), capsys)
    assert "staff reminder 1 sent (case with staff" in out


def test_a_time_without_an_offset_is_local_time_and_cases_show_says_when_in_local_time(gateway, sink, tmp_path,
                                                                                     capsys):
    case = _open(gateway, sink)
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    local_day = CAL.local(gateway.clock.now()).date() - timedelta(days=1)
    expected = datetime(local_day.year, local_day.month, local_day.day, 8, 0, tzinfo=CAL.tz)
    assert main(["--config", str(config), "timers", "run", "--now", f"{local_day}T08:00"], clock=gateway.clock) == 0
    assert f"as of {expected.isoformat()}" in capsys.readouterr().out  # read in Europe/Paris
    assert main(["--config", str(config), "cases", "show", case["reference"]], clock=gateway.clock) == 0
    first = CAL.add_business_days(datetime.fromisoformat(case["opened_at"]), 2).astimezone(CAL.tz)
    assert f"{first:%Y-%m-%d %H:%M %Z}  merchant reminder 1" in capsys.readouterr().out
