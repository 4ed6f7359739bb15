"""The gateway's own authentication checks (gateway.authentication), against a stub resolver."""

from __future__ import annotations

from gateway.authentication import Client, authenticate
from tests.dns import StubResolver, customer_domain, dkim_sign
from tests.harness import build_mail

RAW = build_mail(sender="carol@customer.test", to="delivery@disputes.test", subject="TX-1001", body="Lost parcel.")
OUTSIDE = Client("192.0.2.10", "mx.customer.test")


def _check(raw, resolver, *, client=OUTSIDE, envelope="carol@customer.test", **kw):
    return authenticate(raw, envelope=envelope, from_domain="customer.test", client=client, resolver=resolver, **kw)


def test_an_aligned_dkim_signature_passes_and_dmarc_with_it():
    result = _check(dkim_sign(RAW), customer_domain(), check_spf=False)
    assert (result.dkim, result.dkim_domains, result.dmarc, result.source) == ("pass", ("customer.test",), "pass",
                                                                              "gateway")


def test_a_changed_body_fails_dkim_and_then_dmarc():
    signed = dkim_sign(RAW).replace(b"Lost parcel.", b"Refund me.")
    result = _check(signed, customer_domain(), check_spf=False)
    assert (result.dkim, result.dmarc) == ("fail", "fail")


def test_no_signature_and_no_dmarc_record_is_none_not_fail():
    result = _check(RAW, customer_domain(dmarc=None), check_spf=False)
    assert (result.dkim, result.dmarc) == ("none", "none")


def test_spf_of_the_envelope_sender_for_the_connecting_client():
    resolver = customer_domain(spf="v=spf1 ip4:192.0.2.10 -all", dmarc=None)
    assert _check(RAW, resolver).spf == "pass"
    assert _check(RAW, resolver, client=Client("198.51.100.7", "evil.test")).spf == "fail"
    assert _check(RAW, resolver, client=Client("198.51.100.7", "evil.test")).dmarc == "none"
    with_dmarc = customer_domain(spf="v=spf1 ip4:192.0.2.10 -all")
    assert _check(RAW, with_dmarc).dmarc == "pass"  # SPF aligned with the From domain


def test_the_mta_in_front_is_no_client_for_spf():
    resolver = customer_domain(spf="v=spf1 ip4:192.0.2.10 -all", dmarc=None)
    assert _check(RAW, resolver, client=Client("127.0.0.1", "localhost")).spf == "none"


def test_a_dns_outage_is_a_temporary_error_never_a_pass():
    result = _check(dkim_sign(RAW), StubResolver(down=True))
    assert result.dkim == "temperror" and result.spf in ("temperror", "none") and result.dmarc == "temperror"
