"""Who wrote a message (gateway.mail.senders): From, envelope sender and authentication
weighed against the party's registered address."""

from __future__ import annotations

import pytest

from gateway.mail.senders import Sender, Trust, check
from gateway.mail.trust import AuthResults

CAROL = ["carol@customer.test"]
SHOP = ["support@shop.test"]
PASS = AuthResults("pass", "pass", "pass", source="mta mx")
DMARC_FAIL = AuthResults("fail", "fail", "none", source="mta mx")
NONE = AuthResults("none", "none", "none", source="mta mx")


def _sender(address, envelope=None, auth=None, name=""):
    return Sender(envelope=address if envelope is None else envelope, address=address, name=name, auth=auth)


@pytest.mark.parametrize("sender, registered, policy, expected", [
    # the party itself, with nothing to say more
    (_sender("carol@customer.test"), CAROL, "strict", Trust.ACCEPT),
    (_sender("carol@customer.test", auth=NONE), CAROL, "strict", Trust.ACCEPT_FLAGGED),
    (_sender("carol@customer.test", auth=PASS), CAROL, "strict", Trust.ACCEPT),
    # her From with a stranger's envelope: only authentication could vouch for it
    (_sender("carol@customer.test", envelope="mallory@evil.test"), CAROL, "strict", Trust.HOLD),
    (_sender("carol@customer.test", envelope="mallory@evil.test", auth=NONE), CAROL, "strict", Trust.HOLD),
    (_sender("carol@customer.test", envelope="bounces@esp.test", auth=AuthResults(
        "none", "pass", "pass", dkim_domains=("customer.test",))), CAROL, "strict", Trust.ACCEPT),
    # authentication that fails is a forgery of the right address
    (_sender("carol@customer.test", auth=DMARC_FAIL), CAROL, "strict", Trust.HOLD),
    (_sender("carol@customer.test", auth=AuthResults(None, "fail", None, spf_domain="customer.test")), CAROL,
     "strict", Trust.HOLD),
    # not her address at all
    (_sender("mallory@evil.test"), CAROL, "strict", Trust.HOLD),
    (_sender("mallory@evil.test", auth=DMARC_FAIL), CAROL, "strict", Trust.REJECT),
    (_sender("mallory@evil.test", auth=PASS), CAROL, "strict", Trust.HOLD),
    # the domain policy: a colleague's address only with the domain authenticated
    (_sender("alice@shop.test", auth=PASS), SHOP, "domain", Trust.ACCEPT),
    (_sender("alice@shop.test"), SHOP, "domain", Trust.HOLD),
    (_sender("alice@shop.test", auth=AuthResults("none", "none", "pass", dkim_domains=("mail.shop.test",))), SHOP,
     "domain", Trust.ACCEPT),
    (_sender("alice@shop.test", auth=AuthResults("none", "none", "pass", dkim_domains=("esp.test",))), SHOP,
     "domain", Trust.HOLD),
    # ... and never on a shared provider's domain, authenticated or not
    (_sender("random.stranger@gmail.com", auth=PASS), ["shopowner@gmail.com"], "domain", Trust.HOLD),
    (_sender("shopowner@gmail.com", auth=PASS), ["shopowner@gmail.com"], "domain", Trust.ACCEPT),
])
def test_decision_table(sender, registered, policy, expected):
    assert check(sender, registered, policy).trust is expected


def test_only_an_aligned_pass_authenticates():
    assert check(_sender("carol@customer.test", auth=PASS), CAROL, "strict").authenticated
    spf_elsewhere = AuthResults("none", "pass", "none", spf_domain="bulkmailer.test")
    assert not check(_sender("carol@customer.test", auth=spf_elsewhere), CAROL, "strict").authenticated


def test_what_staff_see_of_a_held_sender():
    summary = _sender("carol@customer.test", envelope="mallory@evil.test", auth=NONE, name="Carol").summary()
    assert summary["envelope_sender"] == "mallory@evil.test" and summary["from_name"] == "Carol"
    assert summary["authentication"]["dmarc"] == "none" and summary["authentication"]["by"] == "mta mx"
