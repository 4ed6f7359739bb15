"""Evidence recognition: table-driven, one row per way people write a fact."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.evidence import carriers, needs
from gateway.evidence.dates import find_dates
from gateway.evidence.recognise import Fact, attachment_facts, fold, recognise

TODAY = date(2026, 11, 26)  # a Thursday; the day the message was received


def _facts(text, kind, documents=False):
    return [(f.value, f.carrier, f.qualifier) for f in recognise(text, today=TODAY, documents=documents)
            if f.kind == kind]


@pytest.mark.parametrize("text, expected", [
    # La Poste / Colissimo: domestic 13-character numbers, S10 numbers of France, links
    ("Votre colis Colissimo 6A12345678901 est en route.", ("6A12345678901", "La Poste / Colissimo")),
    ("Numéro de suivi : 6A 123 456 789 01", ("6A12345678901", "La Poste / Colissimo")),
    ("Registered letter RR473124829FR sent today", ("RR473124829FR", "La Poste / Colissimo")),
    ("https://www.laposte.fr/outils/suivre-vos-envois?code=8L12345678901", ("8L12345678901", "La Poste / Colissimo")),
    # Chronopost: S10 numbers named Chronopost, and its tracking page
    ("Expédié en Chronopost, n° XW123456785FR", ("XW123456785FR", "Chronopost")),
    ("https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XY123456785FR",
     ("XY123456785FR", "Chronopost")),
    # DPD: 14 digits with DPD named
    ("Your DPD parcel 05001234567890 is on its way", ("05001234567890", "DPD")),
    ("Colis DPD n°25007500123456.", ("25007500123456", "DPD")),
    # GLS: 11 or 12 digits with GLS named
    ("GLS tracking 12345678901", ("12345678901", "GLS")),
    ("Envoyé par GLS (colis 123456789012)", ("123456789012", "GLS")),
    # UPS: 1Z with a valid check digit, with or without spaces
    ("UPS 1Z999AA10123456784 delivered yesterday", ("1Z999AA10123456784", "UPS")),
    ("tracking: 1Z 999 AA1 01 2345 6784", ("1Z999AA10123456784", "UPS")),
    # DHL: JJD numbers on their own, 10-digit waybills with DHL named, tracking links
    ("Sendungsnummer JJD000390007882793841", ("JJD000390007882793841", "DHL")),
    ("DHL Express waybill 1234567890", ("1234567890", "DHL")),
    ("https://www.dhl.com/fr-en/home/tracking.html?tracking-id=4012345678", ("4012345678", "DHL")),
    # FedEx: 12 or 15 digits with FedEx named
    ("Shipped via FedEx, tracking 123456789012", ("123456789012", "FedEx")),
    ("FedEx Ground 123456789012345", ("123456789012345", "FedEx")),
    # Mondial Relay: 8 digits with Mondial Relay named
    ("Mondial Relay n° 12345678, livraison prévue demain", ("12345678", "Mondial Relay")),
    ("https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition=87654321&codePostal=75011",
     ("87654321", "Mondial Relay")),
    # other posts: an S10 number names its country's post
    ("Royal Mail RR473124829GB", ("RR473124829GB", "Postal service (GB)")),
    # a tracking phrase right before a number, carrier not named
    ("Here is the tracking number: 987654321012", ("987654321012", None)),
])
def test_tracking_numbers_and_their_carrier(text, expected):
    assert expected in [(value, carrier) for value, carrier, _ in _facts(text, "tracking_number")]


@pytest.mark.parametrize("text", [
    "Call me on 0612345678 about the DHL parcel",  # a phone number next to a carrier's name
    "Tél. 01 23 45 67 89, DPD",
    "Order 12345678901234 paid 49.90 EUR",  # a bare number without a carrier
    "UPS 1Z999AA10123456785",  # wrong UPS check digit
    "Letter RR473124828FR",  # wrong S10 check digit
    "Amount 1234567890.50 DHL",  # a decimal amount
    "see https://shop.test/orders/12345678901234 (GLS)",  # a number inside a link to another site
    "IBAN FR7612345678901234567890123 for the refund",
])
def test_numbers_that_are_not_tracking_numbers(text):
    assert _facts(text, "tracking_number") == []


def test_check_digits():
    assert carriers.s10_valid("RR473124829GB") and not carriers.s10_valid("RR473124820GB")
    assert carriers.s10_valid("EE123456785FR")
    assert carriers.ups_valid("1Z999AA10123456784") and not carriers.ups_valid("1Z999AA10123456780")


@pytest.mark.parametrize("text, carrier", [
    ("Nous avons confié le colis à La Poste", "La Poste / Colissimo"),
    ("shipped with chronopost", "Chronopost"),
    ("Mondial Relay point relais", "Mondial Relay"),
    ("via Fed Ex", "FedEx"),
])
def test_carrier_mentions(text, carrier):
    assert (carrier, carrier, None) in _facts(text, "carrier")


@pytest.mark.parametrize("text, expected", [
    ("We refunded you on 2 December 2026, refund reference RF-88231.", "RF-88231"),
    ("Refund ID: re_3N8xKq2eZvKYlo2C0x1y (Stripe)", "re_3N8xKq2eZvKYlo2C0x1y"),
    ("Your reimbursement number is 5512-889.", "5512-889"),
    ("Avoir n° AV-2026-0042 émis ce jour.", "AV-2026-0042"),
    ("Référence du remboursement : RMB778812", "RMB778812"),
    ("credit note CN2026/117 attached", "CN2026/117"),
])
def test_refund_references(text, expected):
    assert expected in [value for value, _, _ in _facts(text, "refund_reference")]


@pytest.mark.parametrize("text", [
    "I never got a refund reference from them",
    "Refund number? Nothing yet.",
    "No refund reference 12345 was ever given",
])
def test_no_refund_reference(text):
    assert _facts(text, "refund_reference") == []


@pytest.mark.parametrize("text, expected", [
    ("We refunded you on 2 December 2026.", ("2026-12-02", "actual")),
    ("Remboursement effectué le 01/12/2026 sur votre carte.", ("2026-12-01", "actual")),
    ("Vous avez été remboursé le 3 décembre.", ("2026-12-03", "actual")),
    ("The refund will be issued by December 4th.", ("2026-12-04", "promised")),
    ("Le remboursement sera fait d'ici le 5 déc.", ("2026-12-05", "promised")),
])
def test_refund_dates(text, expected):
    assert expected in [(value, qualifier) for value, _, qualifier in _facts(text, "refund_date")]


@pytest.mark.parametrize("text, expected", [
    ("Your parcel was delivered on 24 November 2026 at 10:12.", ("2026-11-24", "actual")),
    ("Le colis a été livré le 24/11/2026, signé par M. Martin.", ("2026-11-24", "actual")),
    ("Livré hier en point relais.", ("2026-11-25", "actual")),
    ("It will be delivered on 3 December.", ("2026-12-03", "promised")),
    ("Expected delivery: Monday, 30 November 2026", ("2026-11-30", "promised")),
    ("Livraison prévue le mardi 1er décembre", ("2026-12-01", "promised")),
    ("Your order should arrive tomorrow.", ("2026-11-27", "promised")),
    ("Estimated delivery 2026-12-02", ("2026-12-02", "promised")),
    ("The parcel should reach you by 12/31", ("2026-12-31", "promised")),
])
def test_delivery_dates(text, expected):
    assert expected in [(value, qualifier) for value, _, qualifier in _facts(text, "delivery_date")]


@pytest.mark.parametrize("text", [
    "The parcel was not delivered on 3 December.",
    "Le colis n'a jamais été livré le 3 décembre comme promis.",
    "I ordered on 2 November 2026.",  # a date, but not a delivery
    "On Mon, 23 Nov 2026, Shop wrote:",  # an attribution line
])
def test_no_delivery_date(text):
    assert _facts(text, "delivery_date") == []


@pytest.mark.parametrize("text, expected", [
    ("Please use RMA 448812 when you send it back.", "448812"),
    ("Return authorization number: RA-2026-77", "RA-2026-77"),
    ("Votre numéro de retour : R778812", "R778812"),
    ("Autorisation de retour n° AR55120", "AR55120"),
])
def test_return_authorisations(text, expected):
    assert expected in [value for value, _, _ in _facts(text, "return_authorisation")]


@pytest.mark.parametrize("text, kind, documents, found", [
    ("You can return it free of charge, the return label is attached.", "return_offer", False, True),
    ("Nous vous proposons un échange ou un remboursement.", "return_offer", False, True),
    ("We will not offer a return.", "return_offer", False, False),
    ("Please find the proof of delivery attached.", "proof_of_delivery", True, True),
    ("Please find the proof of delivery attached.", "proof_of_delivery", False, False),  # no attachment
    ("Vous n'avez aucune preuve de livraison.", "proof_of_delivery", True, False),
    ("Voici la fiche produit telle qu'affichée lors de l'achat.", "product_description", True, True),
    ("See the product page: https://shop.test/p/blue-shoes", "product_description", False, True),  # a link
    ("Ci-joint la facture de votre commande.", "order_record", True, True),
])
def test_offers_and_documents(text, kind, documents, found):
    assert bool(_facts(text, kind, documents=documents)) is found


@pytest.mark.parametrize("filename, content_type, size, kinds", [
    ("IMG_2031.jpg", "image/jpeg", 1_800_000, {"photo"}),
    ("logo.png", "image/png", 4_000, set()),  # a signature logo
    ("preuve_de_livraison.pdf", "application/pdf", 80_000, {"proof_of_delivery"}),
    ("POD-6A12345678901.pdf", "application/pdf", 80_000, {"proof_of_delivery"}),
    ("Facture_F2026-118.pdf", "application/pdf", 40_000, {"order_record"}),
    ("fiche-produit.pdf", "application/pdf", 40_000, {"product_description"}),
    ("return-label.pdf", "application/pdf", 40_000, {"return_offer"}),
    ("notes.txt", "text/plain", 100, set()),
])
def test_attachment_facts(filename, content_type, size, kinds):
    assert {f.kind for f in attachment_facts(filename, content_type, size)} == kinds


@pytest.mark.parametrize("text, expected", [
    ("2026-12-03", date(2026, 12, 3)),
    ("03/12/2026", date(2026, 12, 3)),
    ("3.12.26", date(2026, 12, 3)),
    ("12/31/2026", date(2026, 12, 31)),  # only month first makes a date
    ("3 December 2026", date(2026, 12, 3)),
    ("December 3rd", date(2026, 12, 3)),
    ("1er décembre", date(2026, 12, 1)),
    ("le 3 déc.", date(2026, 12, 3)),
    ("4 janvier", date(2027, 1, 4)),  # no year: the nearest to the day received
    ("demain", date(2026, 11, 27)),
    ("yesterday", date(2026, 11, 25)),
])
def test_dates(text, expected):
    assert [d.value for d in find_dates(fold(text), TODAY)] == [expected]


def test_fold_keeps_positions():
    text = "Livré le 3 déc. — Chronopost’s ŒUVRE"
    assert len(fold(text)) == len(text)


def F(kind, value="x", carrier=None, qualifier=None):  # noqa: N802 - a table helper
    return Fact(kind, value, carrier=carrier, qualifier=qualifier)


@pytest.mark.parametrize("dispute_type, facts, missing", [
    ("not_delivered", [], ["carrier", "tracking_number", "proof_of_delivery"]),
    ("not_delivered", [F("tracking_number", "6A1", carrier="La Poste / Colissimo")], ["proof_of_delivery"]),
    ("not_delivered", [F("tracking_number", "12345678")], ["carrier", "proof_of_delivery"]),
    ("not_delivered", [F("carrier"), F("tracking_number"), F("proof_of_delivery")], []),
    ("not_as_described", [F("photo")], ["product_description", "return_offer"]),
    ("not_as_described", [F("return_authorisation"), F("photo"), F("product_description")], []),
    ("refund_not_received", [F("refund_date", "2026-12-01", qualifier="promised")],
     ["refund_reference", "refund_date"]),
    ("refund_not_received", [F("refund_reference"), F("refund_date", "2026-12-01", qualifier="actual")], []),
    ("other", [], []),
])
def test_what_is_still_missing(dispute_type, facts, missing):
    assert needs.missing(dispute_type, facts) == missing


def test_every_dispute_type_has_needs_and_reason_codes():
    from gateway.rights import DISPUTE_TYPES

    assert set(needs.NEEDS) == set(DISPUTE_TYPES) == set(needs.REASON_CODES)


def test_no_false_facts_in_real_mail():
    """The 232 real and reconstructed messages of tests/mail (bounces, auto-replies, people's
    mail; SOURCES.md), none of them used to write the patterns: no tracking number, refund,
    date or return authorisation is read in them (only invoices named as such, and a carrier
    a parcel-scam message names)."""
    from pathlib import Path

    from gateway.evidence.collect import message_facts
    from gateway.mail.parse import parse

    strict = {"tracking_number", "refund_reference", "refund_date", "delivery_date", "return_authorisation"}
    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "mail").rglob("*.eml")):
        raw = path.read_bytes()
        found += [(path.name, fact.value) for fact, _ in message_facts(raw, parse(raw).new_text, today=TODAY)
                  if fact.kind in strict]
    assert found == []
