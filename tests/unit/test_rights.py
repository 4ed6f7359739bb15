"""Dispute types: inference from the customer's words, #type names, legal deadlines, and the
rights partials under templates/_rights rendered for every type, party and locale."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import product

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.config import DEFAULT_TEMPLATES_DIR, LOCALES
from gateway.mail.templating import _date, _money
from gateway.rights import (CARD_WINDOW_TYPES, DISPUTE_TYPES, TYPE_LABELS, infer_type, legal_deadline,
                            parse_type_name)

TX_DATE = datetime(2026, 3, 2, 14, 5, tzinfo=timezone.utc)
PARTIES = ("customer", "merchant")
MAX_LINES = 25  # a partial stays readable (non-blank rendered text lines)


@pytest.mark.parametrize("text, expected", [
    # not delivered
    ("My parcel never arrived", "not_delivered"),
    ("Order #5512 not received - it has been three weeks", "not_delivered"),
    ("Hi, I ordered a lamp on 2 March and I still haven't received it. Where is my order?", "not_delivered"),
    ("The tracking says delivered but there was nothing in my letterbox", "not_delivered"),
    ("I didn't receive anything", "not_delivered"),
    ("Colis perdu", "not_delivered"),
    ("Bonjour, je n'ai jamais reçu ma commande passée le 3 mars.", "not_delivered"),
    ("Commande toujours pas livrée après un mois, le vendeur ne répond plus", "not_delivered"),
    ("Le suivi indique « livré » mais je n’ai rien reçu", "not_delivered"),
    ("COLIS NON LIVRÉ", "not_delivered"),
    ("Délai de livraison dépassé, je souhaite résoudre le contrat", "not_delivered"),
    # damaged or defective
    ("The vase arrived smashed, the box was crushed", "damaged"),
    ("Item damaged in transit", "damaged"),
    ("The kettle doesn't work, it is faulty out of the box", "damaged"),
    ("Le téléviseur est arrivé avec l'écran cassé", "damaged"),
    ("Colis abîmé, produit endommagé", "damaged"),
    ("Le produit ne fonctionne pas", "damaged"),
    # not as described / wrong item
    ("Wrong item received: I ordered a blue jacket, got a red one", "not_as_described"),
    ("The product is not as described on your website", "not_as_described"),
    ("Haven't received the correct size", "not_as_described"),
    ("The bag is a fake, obviously counterfeit", "not_as_described"),
    ("Article non conforme à la description", "not_as_described"),
    ("Ce que j'ai reçu ne correspond pas du tout à la photo", "not_as_described"),
    ("J'ai reçu une taille 38 au lieu d'une taille 42", "not_as_described"),
    ("Je n'ai pas reçu la bonne commande", "not_as_described"),
    ("Mon colis est arrivé mais il manque un article", "not_as_described"),
    # withdrawal refund
    ("I used my right of withdrawal on 4 May and returned the shoes, still no refund", "withdrawal_refund"),
    ("I changed my mind and sent it back within 14 days but haven't got my money back", "withdrawal_refund"),
    ("I cancelled my order before it shipped and I'm still waiting for my refund", "withdrawal_refund"),
    ("Rétractation envoyée le 2 juin, colis retourné, toujours pas remboursé", "withdrawal_refund"),
    ("J'ai exercé mon droit de rétractation dans les 14 jours", "withdrawal_refund"),
    # double charge
    ("I was charged twice for the same order", "double_charge"),
    ("Duplicate payment on my card statement", "double_charge"),
    ("Two identical payments of 25 EUR", "double_charge"),
    ("J'ai été débité deux fois de 49,90 €", "double_charge"),
    ("Montant prélevé deux fois sur mon compte", "double_charge"),
    # unrecognised charge
    ("I don't recognise this payment on my statement", "unrecognised_charge"),
    ("I dont recognise this charge", "unrecognised_charge"),
    ("Unauthorised transaction, I never ordered anything from this shop", "unrecognised_charge"),
    ("Je ne reconnais pas ce prélèvement de 89 €", "unrecognised_charge"),
    ("Paiement frauduleux, ma carte a été piratée", "unrecognised_charge"),
    ("Je ne connais pas ce site", "unrecognised_charge"),
    # refund not received
    ("Refund not received", "refund_not_received"),
    ("Where is my refund?", "refund_not_received"),
    ("They promised a refund three weeks ago but my refund has not arrived", "refund_not_received"),
    ("I sent the broken item back a month ago and haven't been refunded", "refund_not_received"),
    ("Remboursement non reçu", "refund_not_received"),
    ("Le vendeur m'a promis un remboursement il y a un mois, je n'ai toujours pas été remboursé",
     "refund_not_received"),
    # too little said, or two problems at once: staff decide
    ("Question about my order", "other"),
    ("refund", "other"),
    ("I want to know about the warranty", "other"),
    ("Hello, I would like to return the product", "other"),
    ("I have not received any reply from the seller", "other"),
    ("Still waiting for an answer from the shop", "other"),
    ("The parcel arrived broken and I was also charged twice", "other"),
    ("Parcel never arrived and I have not been refunded", "other"),
    ("I never received the item and I don't recognise the merchant name", "other"),
    ("Bonjour, j'ai un problème avec ma commande, merci de m'aider", "other"),
    ("Je n'ai pas reçu de réponse du vendeur depuis 10 jours", "other"),
    ("Suite à ma réclamation du 12 mai, aucune réponse", "other"),
    ("Le colis est arrivé abîmé et en plus ce n'est pas le bon modèle", "other"),
    ("Commande annulée par le vendeur", "other"),
    ("Problème de paiement", "other"),
    ("", "other"),
])
def test_infer_type(text, expected):
    assert infer_type(text) == expected


def test_infer_type_reads_subject_and_body_together():
    assert infer_type("Order 1234\nHello, the mug arrived cracked.") == "damaged"
    assert infer_type("Réclamation\n\nBonjour,\nje ne reconnais pas ce paiement.") == "unrecognised_charge"


@pytest.mark.parametrize("word, expected", [
    *[(kind, kind) for kind in DISPUTE_TYPES],
    *[(label, kind) for labels in TYPE_LABELS.values() for kind, label in labels.items()],
    ("NOT_DELIVERED", "not_delivered"),
    ("not-delivered", "not_delivered"),
    ("  not delivered ", "not_delivered"),
    ("non livré", "not_delivered"),
    ("NON-LIVRE", "not_delivered"),
    ("lost", "not_delivered"),
    ("cassé", "damaged"),
    ("defective", "damaged"),
    ("wrong item", "not_as_described"),
    ("non conforme", "not_as_described"),
    ("rétractation", "withdrawal_refund"),
    ("withdrawal", "withdrawal_refund"),
    ("duplicate", "double_charge"),
    ("doublon", "double_charge"),
    ("fraud", "unrecognised_charge"),
    ("unrecognized", "unrecognised_charge"),
    ("remboursement", "refund_not_received"),
    ("refund", "refund_not_received"),
    ("autre", "other"),
    ("", None),
    ("   ", None),
    ("delivery", None),  # a category, not a type
    ("frobnicate", None),
])
def test_parse_type_name(word, expected):
    assert parse_type_name(word) == expected


def test_labels_and_card_window_types_cover_known_types():
    for locale in LOCALES:
        assert set(TYPE_LABELS[locale]) == set(DISPUTE_TYPES)
    assert CARD_WINDOW_TYPES == {"not_delivered", "not_as_described", "refund_not_received", "withdrawal_refund"}


@pytest.mark.parametrize("dispute_type, expected", [
    ("not_delivered", (TX_DATE + timedelta(days=30), "D1")),
    ("damaged", (None, "G7")),
    ("not_as_described", (None, "G7")),
    ("withdrawal_refund", (None, "W8")),
    ("double_charge", (None, "P3")),
    ("unrecognised_charge", (None, "P3")),
    ("refund_not_received", (None, "D5/W8/G11")),
    ("other", (None, "M9")),
])
def test_legal_deadline(dispute_type, expected):
    assert legal_deadline(dispute_type, TX_DATE) == expected


def test_legal_deadline_counts_calendar_days_and_keeps_the_timezone():
    deadline, _ = legal_deadline("not_delivered", datetime(2026, 12, 20, 23, 30, tzinfo=timezone.utc))
    assert deadline == datetime(2027, 1, 19, 23, 30, tzinfo=timezone.utc)


def test_legal_deadline_rejects_an_unknown_type():
    with pytest.raises(ValueError):
        legal_deadline("lost_in_space", TX_DATE)


# ---- rights partials

LEGAL = datetime(2026, 4, 1, tzinfo=timezone.utc)
REPLY = datetime(2026, 5, 12, tzinfo=timezone.utc)
ESCALATION = datetime(2026, 6, 23, tzinfo=timezone.utc)
FORBIDDEN = ("ODR", "odr.europa", "ec.europa.eu/consumers/odr", "online dispute resolution",
             "règlement en ligne des litiges", "rlls")
GENERAL = {"en": ("general information",), "fr": ("information générale", "informations générales")}
MEDIATOR = {"en": "mediator", "fr": "médiateur"}


@pytest.fixture(scope="module")
def env() -> Environment:
    # The Renderer's settings (gateway/mail/templating.py), so the text reads as it will be sent.
    environment = Environment(loader=FileSystemLoader(str(DEFAULT_TEMPLATES_DIR)), undefined=StrictUndefined,
                              autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)
    environment.filters["date"] = _date
    environment.filters["money"] = _money
    return environment


def _context(locale: str, dispute_type: str, legal: datetime | None, escalation: datetime | None,
             reply: datetime | None) -> dict:
    return {
        "locale": locale,
        "brand": "Disputes",
        "case": {"reference": "k3q8xa2b", "subject": "Parcel <b>never</b> arrived", "category": "delivery",
                 "dispute_type": dispute_type, "state": "awaiting_merchant", "escalated": False, "opened_at": TX_DATE},
        "transaction": {"reference": "TX-1001", "date": TX_DATE, "amount": Decimal("1234.50"), "currency": "EUR",
                        "customer_name": "Carol"},
        "merchant": {"name": "Shop & Co", "id": "shop1"},
        "rights": {"legal_deadline": legal, "legal_rule": "D1", "escalation_date": escalation,
                   "gateway_reply_deadline": reply},
    }


def test_every_partial_exists():
    for locale, party, dispute_type, ext in product(LOCALES, PARTIES, DISPUTE_TYPES, ("txt", "html")):
        assert (DEFAULT_TEMPLATES_DIR / "_rights" / locale / party / f"{dispute_type}.{ext}").is_file()


@pytest.mark.parametrize("reply", [REPLY, None], ids=["reply", "no-reply"])
@pytest.mark.parametrize("escalation", [ESCALATION, None], ids=["escalation", "no-escalation"])
@pytest.mark.parametrize("legal", [LEGAL, None], ids=["legal", "no-legal"])
@pytest.mark.parametrize("dispute_type", DISPUTE_TYPES)
@pytest.mark.parametrize("party", PARTIES)
@pytest.mark.parametrize("locale", LOCALES)
def test_partial_renders(env, locale, party, dispute_type, legal, escalation, reply):
    context = _context(locale, dispute_type, legal, escalation, reply)
    name = f"_rights/{locale}/{party}/{dispute_type}"
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    for rendered in (text, html):
        assert not any(word in rendered for word in FORBIDDEN if word.isupper())
        assert not any(word in rendered.lower() for word in FORBIDDEN if not word.isupper())
        assert any(words in rendered.lower() for words in GENERAL[locale])
        assert "{{" not in rendered and "{%" not in rendered and "**" not in rendered
        if party == "customer":
            assert "SignalConso" in rendered and MEDIATOR[locale] in rendered.lower()
            assert "CEC France" in rendered
        else:
            for date in (legal, reply, escalation):
                assert date is None or _date(date, locale) in rendered
    assert "<" not in text and "&amp;" not in text
    assert "Shop & Co" not in html and ("Shop &amp; Co" in html) == ("Shop & Co" in text)
    assert "<html" not in html and "<body" not in html and html.lstrip().startswith(("<p>", "<ul>"))
    assert len([line for line in text.splitlines() if line.strip()]) <= MAX_LINES
    assert "\n\n\n" not in text


@pytest.mark.parametrize("locale", LOCALES)
def test_merchant_partial_asks_for_the_date_when_the_deadline_is_unknown(env, locale):
    text = env.get_template(f"_rights/{locale}/merchant/withdrawal_refund.txt").render(
        _context(locale, "withdrawal_refund", None, None, None))
    assert ("please tell us the date" if locale == "en" else "merci de nous indiquer la date") in text
