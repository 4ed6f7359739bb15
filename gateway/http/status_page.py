"""The read-only status page of one party of a case, opened by a signed, expiring link
(gateway/status_links.py) that every notice to the customer and the merchant carries.

Server-rendered HTML, no script, one narrow column that reads well on a phone; in the
party's language; the conversation as the party sees it (views.conversation), without any
real address of another party, and nothing staff-only; it says how to answer (by mail to
the party's case address)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway import addresses, status_links, store
from gateway.casework.schedule import calendar_for
from gateway.http import views
from gateway.outbox.context import clean_subject
from gateway.settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

TEXT = {
    "en": {
        "title": "Case", "state": "Where it stands", "next": "Who acts next", "dates": "Dates",
        "opened": "Opened", "transaction": "Transaction", "transaction_date": "Purchase date",
        "waiting_since": "Waiting since", "escalation": "Our staff step in if there is no answer by",
        "closed": "Closed", "conversation": "Conversation", "none": "No messages yet.",
        "answer": "How to answer", "answer_text": "Reply by email to your case address:",
        "answer_note": "Your own email address is never shown to the other party.",
        "you": "You", "notice": "Our notice to you", "expires": "This page's link works until",
        "read_only": "This page is read-only.",
        "states": {"needs_info": "We need one detail from the customer (payment or delivery?)",
                   "awaiting_merchant": "Waiting for the merchant's answer",
                   "awaiting_customer": "Waiting for the customer's answer",
                   "with_staff": "Our staff are handling the case", "closed": "Closed"},
        "parties": {"customer": "the customer", "merchant": "the merchant", "staff": "our staff"},
        "actor_you": "you", "nobody": "nobody: the case is closed",
        "category": {"payment": "Payment", "delivery": "Delivery", "": "Not yet known"},
        "invalid": "This link is not valid.", "expired_link": "This link has expired.",
        "expired_hint": "The latest email about your case carries a fresh link.",
    },
    "fr": {
        "title": "Dossier", "state": "Où en est le dossier", "next": "Qui doit agir", "dates": "Dates",
        "opened": "Ouvert le", "transaction": "Transaction", "transaction_date": "Date de l'achat",
        "waiting_since": "En attente depuis", "escalation": "Notre équipe intervient sans réponse avant le",
        "closed": "Clos le", "conversation": "Échanges", "none": "Aucun message pour l'instant.",
        "answer": "Comment répondre", "answer_text": "Répondez par e-mail à l'adresse de votre dossier :",
        "answer_note": "Votre propre adresse e-mail n'est jamais montrée à l'autre partie.",
        "you": "Vous", "notice": "Notre avis envoyé", "expires": "Le lien de cette page est valable jusqu'au",
        "read_only": "Cette page est en lecture seule.",
        "states": {"needs_info": "Il nous manque une précision du client (paiement ou livraison ?)",
                   "awaiting_merchant": "En attente de la réponse du marchand",
                   "awaiting_customer": "En attente de la réponse du client",
                   "with_staff": "Notre équipe traite le dossier", "closed": "Clos"},
        "parties": {"customer": "le client", "merchant": "le marchand", "staff": "notre équipe"},
        "actor_you": "vous", "nobody": "personne : le dossier est clos",
        "category": {"payment": "Paiement", "delivery": "Livraison", "": "Pas encore connue"},
        "invalid": "Ce lien n'est pas valide.", "expired_link": "Ce lien a expiré.",
        "expired_hint": "Le dernier e-mail reçu au sujet de votre dossier contient un lien à jour.",
    },
}


def _date(value, locale: str) -> str:
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y %H:%M UTC") if locale == "fr" else value.strftime("%Y-%m-%d %H:%M UTC")


def render_error(locale: str, *, expired: bool, brand: str) -> str:
    text = TEXT.get(locale, TEXT["en"])
    return _ENV.get_template("status_error.html").render(t=text, locale=locale, expired=expired, brand=brand)


def render(db, access: status_links.StatusAccess, settings: Settings, *, lang: str | None = None) -> str | None:
    """The page of `access` (None: no such case)."""
    case = store.case_by_reference(db, access.reference)
    if case is None:
        return None
    party = access.party
    merchant = store.merchant(db, case.merchant_id)
    tx = store.transaction(db, case.transaction_reference)
    locale = lang if lang in TEXT else (case.customer_locale if party == "c" else
                                          (merchant.locale if merchant else settings.gateway.default_locale))
    text = TEXT.get(locale, TEXT["en"])
    gateway = settings.gateway
    own_address = addresses.case_address(case.reference, party, domain=gateway.domain, keys=gateway.secret_keys)
    must_act = views.MUST_ACT.get(case.state)
    actor = (text["nobody"] if must_act is None else text["actor_you"] if must_act == party
             else text["parties"][views.PARTY[must_act]])
    escalation = None
    if case.state == "awaiting_merchant" and not case.escalated:
        escalation = calendar_for(settings).add_business_days(
            case.waiting_since, settings.timers.escalation_business_days)
    messages = []
    for item in views.conversation(db, case, party, settings, keep=own_address, locale=locale):
        if item["direction"] == "out":
            who = text["notice"]
        elif item["author"] == views.PARTY[party]:
            who = text["you"]
        else:
            who = text["parties"][item["author"]].capitalize()
        messages.append({**item, "subject": clean_subject(item["subject"]), "who": who, "when": _date(item["at"], locale), "own": item["author"] == views.PARTY[party]})
    return _ENV.get_template("status.html").render(
        t=text, locale=locale, brand=gateway.display_name,
        case={"reference": case.reference.upper(), "subject": case.subject, "state": text["states"][case.state],
              "category": text["category"][case.category or ""], "closed": case.state == "closed"},
        actor=actor,
        dates=[(text["opened"], _date(case.opened_at, locale)),
               (text["transaction_date"], _date(tx.transaction_date if tx else case.transaction_date, locale)),
               *([(text["waiting_since"], _date(case.waiting_since, locale))] if case.state != "closed" else []),
               *([(text["escalation"], _date(escalation, locale))] if escalation else []),
               *([(text["closed"], _date(case.closed_at, locale))] if case.closed_at else [])],
        transaction=case.transaction_reference,
        merchant_name=merchant.name if merchant else case.merchant_id,
        messages=messages, own_address=own_address, expires=_date(access.expires, locale),
    )
