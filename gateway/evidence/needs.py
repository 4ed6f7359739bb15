"""What a chargeback answer needs for each dispute type, and what is still missing. Pure.

The lists follow what the card schemes ask an acquirer to show: for goods not received, who carried them and proof they reached the customer's
address; for goods not as described or damaged, what was sold, photos and the return
offered; for a missing refund or a duplicate charge, the refund's reference and date; for
a charge the cardholder does not recognise, the order and where it was delivered.
"""

from __future__ import annotations

from typing import Iterable

from gateway.evidence import recognise as r

NEEDS: dict[str, tuple[str, ...]] = {
    "not_delivered": ("carrier", "tracking_number", "proof_of_delivery"),
    "damaged": ("photo", "return_offer"),
    "not_as_described": ("product_description", "photo", "return_offer"),
    "withdrawal_refund": ("refund_reference", "refund_date"),
    "refund_not_received": ("refund_reference", "refund_date"),
    "double_charge": ("refund_reference", "refund_date"),
    "unrecognised_charge": ("order_record", "tracking_number"),
    "other": (),
}

# The card-scheme reason codes a bank usually files each type under (for the analyst
# reading an export; the bank chooses the code, not the gateway).
REASON_CODES: dict[str, str] = {
    "not_delivered": "Visa 13.1 (merchandise/services not received); Mastercard 4855 (goods or services not provided)",
    "damaged": "Visa 13.3 (not as described or defective merchandise); Mastercard 4853 (cardholder dispute: defective)",
    "not_as_described": "Visa 13.3 (not as described or defective merchandise); Mastercard 4853 (cardholder dispute: "
                        "not as described)",
    "withdrawal_refund": "Visa 13.7 (cancelled merchandise/services); Mastercard 4853 (cardholder dispute: credit not "
                         "processed)",
    "refund_not_received": "Visa 13.6 (credit not processed); Mastercard 4853 (cardholder dispute: credit not processed)",
    "double_charge": "Visa 12.6.1 (duplicate processing); Mastercard 4834 (point-of-interaction error: duplicate)",
    "unrecognised_charge": "Visa 10.4 (other fraud, card-absent environment); Mastercard 4837 (no cardholder "
                           "authorisation)",
    "other": "",
}


def satisfied(need: str, facts: Iterable[r.Fact]) -> bool:
    """Whether `facts` answer `need` (a carrier is also given by a tracking number whose
    carrier is known; a return authorisation is a return offer; only a refund that was
    made, not one promised, gives its date)."""
    for fact in facts:
        if fact.kind == need and (need != r.REFUND_DATE or fact.qualifier == r.ACTUAL):
            return True
        if need == r.CARRIER and fact.kind == r.TRACKING_NUMBER and fact.carrier:
            return True
        if need == r.RETURN_OFFER and fact.kind == r.RETURN_AUTHORISATION:
            return True
    return False


def missing(dispute_type: str, facts: Iterable[r.Fact]) -> list[str]:
    """The needs of `dispute_type` that `facts` do not answer yet, in the order of NEEDS."""
    facts = list(facts)
    return [need for need in NEEDS.get(dispute_type, ()) if not satisfied(need, facts)]
