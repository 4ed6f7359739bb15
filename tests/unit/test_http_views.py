"""gateway/http/views.py: what the API and the status pages show of a message hides every
address the relay would hide, in every written form, not only plain ones."""

from __future__ import annotations

from gateway import addresses
from gateway.http.views import hide_addresses
from gateway.mail.scrub import AddressScrubber

DOMAIN = "disputes.test"
KEYS = ["k" * 32]


def test_disguised_addresses_are_hidden_as_the_relay_hides_them():
    own = addresses.case_address("abcd", "c", domain=DOMAIN, keys=KEYS)
    other = addresses.case_address("abcd", "m", domain=DOMAIN, keys=KEYS)
    scrubber = AddressScrubber.build(["support@shop.example"], domain=DOMAIN, case_reference="abcd",
                                     own_address=own, locale="fr")
    text = (f"Écrivez à support\uff20shop.example, support&#64;shop.example, s\u00adupport@shop.example "
            f"ou {other}; une autre: jane@elsewhere.example; la vôtre: {own}")
    shown = hide_addresses(text, scrubber, keep=own, locale="fr")
    assert "shop.example" not in shown and "jane@" not in shown and other not in shown
    assert "[adresse masquée]" in shown and own in shown
