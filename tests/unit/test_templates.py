"""Every notice renders in every locale, text and HTML, with StrictUndefined."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gateway.config import DEFAULT_TEMPLATES_DIR, LOCALES
from gateway.mail.templating import Renderer
from gateway.models import Case, Merchant, Transaction
from gateway.notices import Notice
from gateway.outbox.context import build_case_context, timer_context
from gateway.settings import GatewaySettings, Settings

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
CASE = Case(reference="k3q8xa2b", transaction_reference="TX-1001", merchant_id="shop1", customer_email="c@x.test",
            category="delivery", dispute_type="not_delivered", state="awaiting_merchant", escalated=False,
            subject="Parcel <b>never</b> arrived", opened_at=NOW)
TX = Transaction(reference="TX-1001", merchant_id="shop1", customer_email="c@x.test", customer_name="Carol",
                 amount=Decimal("1234.50"), currency="EUR", transaction_date=NOW)
MERCHANT = Merchant(merchant_id="shop1", name="Shop & Co", support_email="s@shop.test", locale="fr")
ADDRESSES = {p: f"case+k3q8xa2b-{p}-aaaaaaaaaaaaaaaa@d.test" for p in "cms"}

RIGHTS = {"legal_deadline": NOW, "legal_rule": "D1", "escalation_date": NOW, "gateway_reply_deadline": NOW,
          "evidence": {"missing": ["proof_of_delivery"],
                       "found": [{"kind": "tracking_number", "value": "6A12345678901", "carrier": "La Poste / Colissimo"}]}}

# Values for the variables a notice needs beyond the case context.
EXTRAS = {
    Notice.UNKNOWN_REFERENCE: {"reason": "missing", "intake_address": "disputes@d.test", "transactions": [
        {"reference": "TX-1001", "merchant": "Shop & Co", "date": NOW, "amount": Decimal("12"), "currency": "EUR"}]},
    Notice.STAFF_HELD_MESSAGE: {"held": {"digest": False, "count": 1, "messages": [
        {"id": 7, "party": "merchant", "reason": "From mismatch", "subject": "x", "from": "a@b.test", "from_name": "A",
         "envelope_sender": "m@evil.test", "authentication": "none reported"}]}},
    Notice.STAFF_QUARANTINE: {"inbound_id": 3, "problem": "could not be placed", "mail_from": "", "received_at": NOW},
    Notice.STAFF_QUARANTINE_DIGEST: {"count": 60, "window_minutes": 60, "listed": [
        {"inbound_id": 4, "problem": "processing failed: ValueError", "mail_from": "", "received_at": NOW}]},
    Notice.MERCHANT_REMINDER: {"reminder": {"sequence": 2, "final": True, "escalation_date": NOW}, "rights": RIGHTS},
    Notice.STAFF_REMINDER: {"reminder": {"sequence": 1}},
    Notice.STAFF_REQUEST_REMINDER: {"reminder": {"sequence": 1, "asked_at": NOW}},
    Notice.STAFF_PAYMENT_DEADLINE: {"deadline": {"sequence": 1, "due": NOW, "latest": NOW, "business_days": 15,
                                                 "max_business_days": 35}},
    Notice.STAFF_FOLLOWUP: {"reminder": {"sequence": 2, "since": NOW, "reason": "merchant_silent", "merchant": "told"}},
    Notice.CUSTOMER_REMINDER: {"reminder": {"sequence": 1}},
    Notice.STAFF_ESCALATION: {"escalation": {"reason": "merchant_silent"}, "transcript": [
        {"at": NOW, "who": "customer", "what": "case opened", "text": "My parcel <never> came"}]},
    Notice.ESCALATION_CUSTOMER: {"escalation": {"reason": "customer_request"}, "rights": RIGHTS},
    Notice.ESCALATION_MERCHANT: {"escalation": {"reason": "merchant_bounced"}, "rights": RIGHTS},
    Notice.CASE_CLOSED: {"closing": {"reason": "staff_agreement", "note": "Refund agreed"}},
    Notice.CLOSED_CASE_REPLY: {"intake_address": "disputes@d.test"},
    Notice.MERCHANT_NEW_CASE: {"rights": RIGHTS},
    Notice.STAFF_UNKNOWN_COMMAND: {"problem": "unknown command #x", "valid": ("#note", "#close <note>")},
    Notice.CARD_WINDOW_WARNING: {"window": {"closes_around": NOW}},
    Notice.PRECLOSE_NOTICE: {"preclose": {"close_at": NOW}},
    Notice.STAFF_DELIVERY_PROBLEM: {"problem": {"role": "merchant", "kind": "trouble", "reason": "mailboxfull",
                                                "status": "5.2.2", "diagnostic": "552 5.2.2 Mailbox full",
                                                "recipient": "support@shop.test", "next_retry": "2026-12-03T11:00",
                                                "unreachable": False, "since": "2026-12-03T10:00",
                                                "notify_hours": 24}},
    Notice.STAFF_CASE_FROZEN: {"frozen": {"count": 31, "window_minutes": 10}},
    Notice.CONFIRM_COMPLAINT: {"confirm": {"reference": "TX-1001", "merchant": "Shop & Co", "date": NOW,
                                           "received_at": NOW}},
    Notice.CONFIRM_MESSAGE: {"confirm": {"id": 4, "subject": "Where is <it>?", "received_at": NOW}},
    Notice.STAFF_NOTICES_SUPPRESSED: {"suppressed": {"address": "c@x.test", "notice": "unknown_reference", "case": "",
                                                     "last_hour": 5, "last_day": 5, "per_hour": 5, "per_day": 20}},
    Notice.STAFF_EXPORT: {"export": {"ok": True, "attached": False, "file": "case-K3Q8XA2B.zip", "path": "/x/y.zip",
                                     "size": 12_000_000, "limit": 10_000_000, "sha256": "ab" * 32,
                                     "chain_head": "cd" * 32, "events": 42, "pages": 7, "files": 30}},
}
OUTSIDE_CASE = {Notice.UNKNOWN_REFERENCE, Notice.STAFF_QUARANTINE, Notice.STAFF_QUARANTINE_DIGEST,
                Notice.STAFF_NOTICES_SUPPRESSED, Notice.CONFIRM_COMPLAINT}


def _context(notice: Notice, party: str = "c") -> dict:
    base = {"brand": "Disputes"} if notice in OUTSIDE_CASE else {**build_case_context(
        CASE, TX, MERCHANT, party=party, brand="Disputes", case_addresses=ADDRESSES),
        "timers": timer_context(Settings(gateway=GatewaySettings(domain="d.test", secret_keys=("k" * 16,),
                                                                 staff_addresses=("s@d.test",))))}
    return {**base, **EXTRAS.get(notice, {})}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("notice", list(Notice))
def test_every_notice_renders_in_every_locale(notice, locale):
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render(notice.folder, locale, _context(notice))
    assert rendered.subject and "\n" not in rendered.subject
    assert len(rendered.text) > 40 and "<p>" not in rendered.text
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text and "{{" not in rendered.html


def test_html_escapes_values_but_text_keeps_them():
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render("staff_new_case", "en", _context(Notice.STAFF_NEW_CASE, "s"))
    assert "Parcel &lt;b&gt;never&lt;/b&gt; arrived" in rendered.html and "Shop &amp; Co" in rendered.html
    assert "Parcel <b>never</b> arrived" in rendered.text


def test_amounts_and_dates_follow_the_locale():
    context = _context(Notice.ACK_DELIVERY)
    assert "EUR 1,234.50" in Renderer(DEFAULT_TEMPLATES_DIR).render("ack_delivery", "en", context).text
    french = Renderer(DEFAULT_TEMPLATES_DIR).render("ack_delivery", "fr", context).text
    assert "1\u202f234,50 EUR" in french and "26 novembre 2026" in french


def test_a_missing_variable_fails_loudly():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        Renderer(DEFAULT_TEMPLATES_DIR).render("staff_held_message", "en", _context(Notice.ACK_DELIVERY))


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", ["customer_resolved", "staff_agreement", "expired"])
@pytest.mark.parametrize("party", ["c", "m", "s"])
def test_every_closing_reads_right_for_every_party(locale, reason, party):
    context = {**_context(Notice.CASE_CLOSED, party), "closing": {"reason": reason, "note": ""}}
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render("case_closed", locale, context)
    assert "{{" not in rendered.text and "{{" not in rendered.html and "180" in rendered.text or reason != "expired"


@pytest.mark.parametrize("locale, because, reason", [("en", "because", "the merchant has not answered"),
                                                      ("fr", "parce que", "le marchand n'a pas répondu")])
def test_staff_notices_say_why_the_case_is_with_staff(locale, because, reason):
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render("staff_followup", locale, _context(Notice.STAFF_FOLLOWUP, "s"))
    assert f"{because} {reason}" in rendered.text and reason.replace("'", "&#39;") in rendered.html
    escalation = Renderer(DEFAULT_TEMPLATES_DIR).render("staff_escalation", locale, _context(Notice.STAFF_ESCALATION, "s"))
    assert reason in escalation.text


@pytest.mark.parametrize("locale, words", [("en", ("6 months", "12 months", "2024/1799")),
                                           ("fr", ("6 mois", "12 mois", "2024/1799"))])
@pytest.mark.parametrize("dispute_type", ["damaged", "not_as_described"])
def test_the_repair_extension_quotes_the_code_and_the_repair_directive(locale, words, dispute_type):
    context = _context(Notice.ESCALATION_CUSTOMER)
    context["case"] = {**context["case"], "dispute_type": dispute_type}
    text = Renderer(DEFAULT_TEMPLATES_DIR).render("escalation_customer", locale, context).text
    assert all(word in text for word in words)


EVIDENCE_WORDS = {"en": ("we still need from you", "proof of delivery to the customer's address", "Already received",
                         "6A12345678901 (La Poste / Colissimo)"),
                  "fr": ("il nous manque encore", "la preuve de livraison à l'adresse du client", "Déjà reçu",
                         "6A12345678901 (La Poste / Colissimo)")}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("notice, final", [(Notice.MERCHANT_REMINDER, True), (Notice.MERCHANT_REMINDER, False),
                                           (Notice.ESCALATION_MERCHANT, True)])
def test_merchant_reminders_and_escalation_ask_for_the_missing_evidence(notice, final, locale):
    context = _context(notice, "m")
    if notice is Notice.MERCHANT_REMINDER:
        context["reminder"] = {**context["reminder"], "final": final}
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render(notice.folder, locale, context)
    for words in EVIDENCE_WORDS[locale]:
        assert words in rendered.text and words.replace("'", "&#39;") in rendered.html


@pytest.mark.parametrize("locale", LOCALES)
def test_nothing_is_asked_when_nothing_is_missing(locale):
    context = _context(Notice.MERCHANT_REMINDER, "m")
    context["rights"] = {**RIGHTS, "evidence": {"missing": [], "found": []}}
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render("merchant_reminder", locale, context)
    assert EVIDENCE_WORDS[locale][0] not in rendered.text
@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind, reason, unreachable, words", [
    ("dead", "userunknown", False, {"en": "does not exist", "fr": "n'existe pas"}),
    ("trouble", "mailboxfull", False, {"en": "sent again at 2026-12-03T11:00", "fr": "renvoyé à 2026-12-03T11:00"}),
    ("trouble", "blocked", True, {"en": "now counts as unreachable", "fr": "désormais considéré comme injoignable"}),
    ("message", "virusdetected", False, {"en": "taken for a virus", "fr": "pris pour un virus"}),
    ("feedback", "feedback", False, {"en": "marked our message", "fr": "a marqué notre message"}),
])
def test_delivery_problem_says_what_the_report_means(locale, kind, reason, unreachable, words):
    problem = {**EXTRAS[Notice.STAFF_DELIVERY_PROBLEM]["problem"], "kind": kind, "reason": reason,
               "unreachable": unreachable}
    context = {**_context(Notice.STAFF_DELIVERY_PROBLEM, "s"), "problem": problem}
    rendered = Renderer(DEFAULT_TEMPLATES_DIR).render("staff_delivery_problem", locale, context)
    assert words[locale] in rendered.text
    assert words[locale].replace("'", "&#39;") in rendered.html or words[locale] in rendered.html
