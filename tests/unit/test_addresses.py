"""Signed case and VERP addresses: what parse() accepts and what it rejects, and why."""

from __future__ import annotations

import re

import pytest

from gateway.addresses import (
    PARTIES,
    SIGNATURE_CHARS,
    BounceAddress,
    CaseAddress,
    IntakeAddress,
    Rejected,
    bounce_address,
    case_address,
    intake_address,
    parse,
)

DOMAIN = "disputes.test"
NEW_KEY = "new-secret-key-number-one-0001"
OLD_KEY = "old-secret-key-number-two-0002"
UNKNOWN_KEY = "someone-elses-secret-key-0003"
KEYS = (NEW_KEY, OLD_KEY)
INTAKE = ("disputes", "delivery", "payment")
REFERENCE = "abcd2345"


def _parse(address: str, *, keys=KEYS):
    return parse(address, domain=DOMAIN, keys=keys, intake=INTAKE)


def _split(address: str) -> tuple[str, str]:
    """(everything before the signature, signature) of a case+…@ or bounce+…@ local part."""
    local = address.split("@")[0]
    head, _, signature = local.rpartition("-")
    return head, signature


@pytest.mark.parametrize("party", PARTIES)
def test_case_address_round_trips_for_every_party(party):
    address = case_address(REFERENCE, party, domain=DOMAIN, keys=KEYS)
    assert address.endswith(f"@{DOMAIN}")
    assert _parse(address) == CaseAddress(REFERENCE, party)


@pytest.mark.parametrize("party", PARTIES)
def test_signature_is_sixteen_base32_characters(party):
    _, signature = _split(case_address(REFERENCE, party, domain=DOMAIN, keys=KEYS))
    assert len(signature) == SIGNATURE_CHARS == 16  # 16 x 5 bits = 80 bits
    assert re.fullmatch(r"[a-z2-7]{16}", signature)


@pytest.mark.parametrize("transform", [
    pytest.param(str.upper, id="all-upper"),
    pytest.param(lambda a: a.split("@")[0] + "@" + DOMAIN.upper(), id="upper-domain"),
    pytest.param(lambda a: f"<{a}>", id="angle-brackets"),
    pytest.param(lambda a: f"  {a}\r\n", id="whitespace"),
])
def test_case_address_survives_harmless_rewriting(transform):
    address = case_address(REFERENCE, "m", domain=DOMAIN, keys=KEYS)
    assert _parse(transform(address)) == CaseAddress(REFERENCE, "m")


def test_upper_case_reference_is_signed_as_lower_case():
    assert case_address(REFERENCE.upper(), "c", domain=DOMAIN, keys=KEYS) == case_address(
        REFERENCE, "c", domain=DOMAIN, keys=KEYS)


def _flip_last(signature: str) -> str:
    return signature[:-1] + ("a" if signature[-1] != "a" else "b")


@pytest.mark.parametrize("forge, reason", [
    pytest.param(lambda head, sig: f"{head}-{_flip_last(sig)}", "bad signature", id="wrong-signature"),
    pytest.param(lambda head, sig: f"{head.replace('-c', '-m')}-{sig}", "bad signature", id="swapped-party-c-to-m"),
    pytest.param(lambda head, sig: f"{head.replace('-c', '-s')}-{sig}", "bad signature", id="swapped-party-c-to-s"),
    pytest.param(lambda head, sig: f"{head.replace(REFERENCE, 'abcd2346')}-{sig}", "bad signature",
                 id="other-reference"),
    pytest.param(lambda head, sig: f"{head}-{sig[:-1]}", "unknown address", id="truncated-by-one"),
    pytest.param(lambda head, sig: f"{head}-{sig[:8]}", "unknown address", id="truncated-to-half"),
    pytest.param(lambda head, sig: f"{head}-{sig}a", "bad signature", id="extended-by-one"),
    pytest.param(lambda head, sig: f"{head}-{sig}{sig}", "bad signature", id="extended-to-double"),
    pytest.param(lambda head, sig: f"{head}-", "unknown address", id="no-signature"),
    pytest.param(lambda head, sig: head.replace("case+", "case-") + f"-{sig}", "unknown address", id="no-plus"),
    pytest.param(lambda head, sig: f"{head}-c-{sig}", "unknown address", id="two-parties"),
    pytest.param(lambda head, sig: f"{head.replace('-c', '-x')}-{sig}", "unknown address", id="unknown-party"),
])
def test_forged_case_address_is_rejected(forge, reason):
    head, signature = _split(case_address(REFERENCE, "c", domain=DOMAIN, keys=KEYS))
    assert _parse(f"{forge(head, signature)}@{DOMAIN}") == Rejected(reason)


@pytest.mark.parametrize("address, reason", [
    (f"case+{REFERENCE}-c-aaaaaaaaaaaaaaaa@other.test", "not our domain"),
    (f"case+{REFERENCE}-c-aaaaaaaaaaaaaaaa@sub.{DOMAIN}", "not our domain"),
    (f"disputes@{DOMAIN}.evil.test", "not our domain"),
    ("disputes@other.test", "not our domain"),
    ("", "not an address"),
    ("no-at-sign", "not an address"),
    (f"@{DOMAIN}", "not an address"),
    (f"postmaster@{DOMAIN}", "unknown address"),
    (f"disputes+x@{DOMAIN}", "unknown address"),
])
def test_address_that_is_not_ours_is_rejected(address, reason):
    assert _parse(address) == Rejected(reason)


def test_signed_address_of_another_domain_is_rejected():
    address = case_address(REFERENCE, "c", domain="other.test", keys=KEYS)
    assert _parse(address) == Rejected("not our domain")


@pytest.mark.parametrize("address, local_part", [
    (f"disputes@{DOMAIN}", "disputes"),
    (f"delivery@{DOMAIN}", "delivery"),
    (f"payment@{DOMAIN}", "payment"),
    (f"Payment@{DOMAIN.upper()}", "payment"),
    (f"<DISPUTES@{DOMAIN}>", "disputes"),
])
def test_intake_local_parts(address, local_part):
    assert _parse(address) == IntakeAddress(local_part)


def test_intake_address_is_local_part_at_domain():
    assert intake_address(DOMAIN) == f"disputes@{DOMAIN}"
    assert intake_address(DOMAIN, "payment") == f"payment@{DOMAIN}"


@pytest.mark.parametrize("signing_keys, verifying_keys, expected", [
    pytest.param((NEW_KEY,), (NEW_KEY, OLD_KEY), CaseAddress(REFERENCE, "s"), id="newest-key"),
    pytest.param((OLD_KEY,), (NEW_KEY, OLD_KEY), CaseAddress(REFERENCE, "s"), id="older-key-still-verifies"),
    pytest.param((OLD_KEY, NEW_KEY), (NEW_KEY,), Rejected("bad signature"), id="retired-key"),
    pytest.param((UNKNOWN_KEY,), (NEW_KEY, OLD_KEY), Rejected("bad signature"), id="unknown-key"),
])
def test_key_rotation(signing_keys, verifying_keys, expected):
    address = case_address(REFERENCE, "s", domain=DOMAIN, keys=signing_keys)
    assert _parse(address, keys=verifying_keys) == expected


def test_first_key_signs():
    assert case_address(REFERENCE, "c", domain=DOMAIN, keys=(NEW_KEY, OLD_KEY)) == case_address(
        REFERENCE, "c", domain=DOMAIN, keys=(NEW_KEY,))
    assert case_address(REFERENCE, "c", domain=DOMAIN, keys=(NEW_KEY,)) != case_address(
        REFERENCE, "c", domain=DOMAIN, keys=(OLD_KEY,))


@pytest.mark.parametrize("token", ["tok234567abc", "abcdef", "A" * 32])
def test_bounce_address_round_trips(token):
    address = bounce_address(token, domain=DOMAIN, keys=KEYS)
    assert _parse(address) == BounceAddress(token.lower())
    assert len(_split(address)[1]) == SIGNATURE_CHARS


@pytest.mark.parametrize("keys, forge, expected", [
    pytest.param(KEYS, lambda h, s: f"{h}-{_flip_last(s)}", Rejected("bad signature"), id="wrong-signature"),
    pytest.param(KEYS, lambda h, s: f"{h}x-{s}", Rejected("bad signature"), id="other-token"),
    pytest.param((UNKNOWN_KEY,), lambda h, s: f"{h}-{s}", Rejected("bad signature"), id="unknown-key"),
])
def test_forged_bounce_address_is_rejected(keys, forge, expected):
    head, signature = _split(bounce_address("tok234567abc", domain=DOMAIN, keys=KEYS))
    assert _parse(f"{forge(head, signature)}@{DOMAIN}", keys=keys) == expected


def test_case_signature_does_not_verify_a_bounce_address():
    _, signature = _split(case_address(REFERENCE, "c", domain=DOMAIN, keys=KEYS))
    assert _parse(f"bounce+{REFERENCE}-{signature}@{DOMAIN}") == Rejected("bad signature")
