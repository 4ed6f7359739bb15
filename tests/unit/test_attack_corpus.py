"""Every vector of the anonymity and content-safety corpus through the real relay transform
(compose_relay + relay_transform, as Mailer.relay runs them), read back as a reader would;
and the README's attack -> answer table in step with the corpus."""

from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email.policy import compat32
from pathlib import Path

import pytest

from gateway.mail.attachments import AttachmentPolicy
from gateway.mail.compose import Envelope, compose_relay
from gateway.mail.hygiene import relay_transform
from gateway.mail.rewrite import replace_body
from gateway.mail.scrub import AddressScrubber
from tests.attack_corpus import (
    COLLEAGUE,
    CUSTOMER,
    CUSTOMER_CASE,
    HELD_OUT,
    MERCHANT,
    REFERENCE,
    STAFF,
    STAFF_NEW_TEXT,
    TUNED,
    Vector,
    all_vectors,
    leaks,
    reader_view,
    renderable_view,
)
from tests.harness import DOMAIN, KEYS

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADING = "## Anonymity and content safety: attack -> answer"
ENVELOPE = Envelope(from_name="Shop One (merchant) via Disputes", from_address=CUSTOMER_CASE, to_address=CUSTOMER,
                    subject="Re: [Case K3Q7AB2C] Parcel", message_id="<k3q7ab2c.1@disputes.test>",
                    date=datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))


def relay_to_customer(vector: Vector, locale: str = "en") -> bytes:
    """The vector relayed to the customer, exactly as Mailer.relay builds the transform."""
    scrubber = AddressScrubber.build([CUSTOMER, MERCHANT, *STAFF, COLLEAGUE], domain=DOMAIN, case_reference=REFERENCE,
                                     own_address=CUSTOMER_CASE, locale=locale)
    transform, _ = relay_transform(policy=AttachmentPolicy(), block_remote_images=True, locale=locale,
                                   also=replace_body(STAFF_NEW_TEXT) if vector.author == "s" else None,
                                   scrubber=scrubber)
    return compose_relay(vector.raw, ENVELOPE, key=KEYS[0], transform=transform)


@pytest.mark.parametrize("vector", all_vectors(), ids=lambda v: v.id)
def test_nothing_the_customer_must_not_read_crosses(vector):
    out = relay_to_customer(vector)
    view = reader_view(out)
    assert leaks(view) == [], vector.attack
    for wanted in vector.expect:
        assert wanted.lower() in view, f"{vector.id}: {wanted!r} should still be there"
    for unwanted in vector.absent:
        assert unwanted.lower() not in view, f"{vector.id}: {unwanted!r} crossed"
    rendered = renderable_view(out)
    for active in vector.inert:
        assert active not in rendered, f"{vector.id}: {active!r} can still run"
    assert ("removed by the dispute service" in view) is vector.removed
    # still valid mail on the wire
    assert b"\n" not in out.replace(b"\r\n", b"") and max(len(line) for line in out.split(b"\r\n")) <= 998
    assert email.message_from_bytes(out, policy=compat32)["Message-ID"] == ENVELOPE.message_id


def test_the_labels_and_notices_are_in_the_recipients_language():
    vector = next(v for v in TUNED if v.id == "D5")
    view = reader_view(relay_to_customer(vector, locale="fr"))
    assert "supprimé par le service de litiges" in view and "[adresse masquée].exe" in view
    assert "[adresse masquée]" in reader_view(relay_to_customer(next(v for v in TUNED if v.id == "B1"), "fr"))


def test_the_corpus_covers_the_reported_families():
    """The issue reported 43 address-leak vectors and 15 sanitiser bypasses."""
    sanitiser = [v for v in TUNED if v.family == "sanitiser bypass"]
    assert len(TUNED) - len(sanitiser) >= 43 and len(sanitiser) >= 15
    assert len({v.id for v in all_vectors()}) == len(all_vectors())


def readme_table() -> dict[str, tuple[str, str]]:
    """id -> (attack, answer) from the README section."""
    text = README.read_text()
    assert TABLE_HEADING in text
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[A-Z]+\d+", cells[0]):
            rows[cells[0]] = (cells[2], cells[3])
    return rows


def test_the_readme_table_has_one_row_per_vector():
    rows = readme_table()
    assert set(rows) == {v.id for v in all_vectors()}
    for vector in all_vectors():
        assert rows[vector.id][1], f"{vector.id} has no answer in the README"


def test_held_out_vectors_are_kept_apart():
    assert {v.id for v in HELD_OUT}.isdisjoint({v.id for v in TUNED})
