"""Parcel carriers and their tracking-number formats, with check digits where the format
has one. Pure.

A number whose format carries a check digit (UPS `1Z…`, the UPU S10 `RR123456785FR` used
by La Poste, Chronopost and other posts) or a prefix no other number has (Colissimo
`6A…`, DHL `JJD…`) is recognised on its own. A bare run of digits (DPD's 14, GLS's 11 or
12, Mondial Relay's 8, DHL Express's 10, FedEx's 12 or 15) is only a tracking number when
the carrier is named next to it, or a "tracking number" phrase is right before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Carrier:
    key: str
    name: str
    mention: re.Pattern  # how the carrier is named in a text (folded to lower case)
    digit_lengths: tuple[int, ...] = ()  # bare-digit formats, recognised only with the carrier named
    hosts: tuple[str, ...] = ()  # tracking pages: a link to one names the carrier and the number


CARRIERS: tuple[Carrier, ...] = (
    Carrier("colissimo", "La Poste / Colissimo",
            re.compile(r"\bcolissimo\b|\bla ?poste\b|\blettre (?:suivie|recommand\w*)"),
            (), ("laposte.fr", "colissimo.fr")),
    Carrier("chronopost", "Chronopost", re.compile(r"\bchronopost\b"), (), ("chronopost.fr",)),
    Carrier("dpd", "DPD", re.compile(r"\bdpd\b|\bexapaq\b"), (14,), ("dpd.fr", "dpd.com", "dpd.de", "dpd.co.uk")),
    Carrier("gls", "GLS", re.compile(r"\bgls\b"), (11, 12), ("gls-group.com", "gls-france.com", "gls-group.eu")),
    Carrier("ups", "UPS", re.compile(r"\bups\b"), (), ("ups.com",)),
    Carrier("dhl", "DHL", re.compile(r"\bdhl\b"), (10, 12, 20), ("dhl.com", "dhl.de", "dhl.fr", "dhlparcel.fr")),
    Carrier("fedex", "FedEx", re.compile(r"\bfed ?ex\b"), (12, 15, 20, 22), ("fedex.com",)),
    Carrier("mondial_relay", "Mondial Relay", re.compile(r"\bmondial ?relay\b"), (8, 10, 12),
            ("mondialrelay.fr", "mondialrelay.com")),
)
BY_KEY = {carrier.key: carrier for carrier in CARRIERS}
POST = "post"  # an S10 number of a post named by its country code, when no carrier is named

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_valid(number: str) -> bool:
    """Whether `number` is a UPU S10 item number (2 letters, 8 digits, a check digit, an
    ISO country code) whose check digit is right (UPU standard S10, modulo 11)."""
    if not re.fullmatch(r"[A-Z]{2}\d{9}[A-Z]{2}", number):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[2:10], _S10_WEIGHTS))
    check = 11 - total % 11
    check = {10: 0, 11: 5}.get(check, check)
    return check == int(number[10])


def ups_valid(number: str) -> bool:
    """Whether `number` is a UPS `1Z` tracking number whose last character checks out
    (letters count as (ord - 63) mod 10; odd positions once, even positions twice)."""
    if not re.fullmatch(r"1Z[0-9A-Z]{16}", number):
        return False
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in number[2:17]]
    total = sum(v if i % 2 == 0 else 2 * v for i, v in enumerate(values))
    return (10 - total % 10) % 10 == int(number[17]) if number[17].isdigit() else False


# (pattern, carrier key or None for "decide from the check", validator) for numbers that
# stand on their own. Spaces inside the number are allowed as people type them.
_SP = r" ?"
STANDALONE: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(rf"\b1Z(?:{_SP}[0-9A-Z]){{16}}\b", re.IGNORECASE), "ups"),
    (re.compile(rf"\b[A-Z]{{2}}{_SP}\d{{3}}{_SP}\d{{3}}{_SP}\d{{3}}{_SP}[A-Z]{{2}}\b", re.IGNORECASE), POST),
    (re.compile(rf"\b\d[A-Z]{_SP}\d{{3}}{_SP}\d{{3}}{_SP}\d{{3}}{_SP}\d{{2}}\b"), "colissimo"),
    (re.compile(r"\bJJD\d{10,20}\b|\bJVGL\d{8,20}\b", re.IGNORECASE), "dhl"),
)


def standalone_valid(number: str, key: str) -> bool:
    """Whether a STANDALONE match (spaces removed, upper case) is a real number."""
    if key == "ups":
        return ups_valid(number)
    if key == POST:
        return s10_valid(number)
    return True


def carrier_of_s10(number: str, named: str | None) -> tuple[str, str]:
    """(key, name) of the carrier of an S10 number: the carrier named next to it when that
    carrier uses S10 numbers, else the post of its country code."""
    if named in ("colissimo", "chronopost", "dhl", "ups", "fedex", "dpd", "gls"):
        return named, BY_KEY[named].name
    country = number[-2:]
    if country == "FR":
        return "colissimo", BY_KEY["colissimo"].name
    return POST, f"Postal service ({country})"


def carrier_for_host(host: str) -> Carrier | None:
    host = host.lower().rstrip(".")
    for carrier in CARRIERS:
        if any(host == h or host.endswith("." + h) for h in carrier.hosts):
            return carrier
    return None
