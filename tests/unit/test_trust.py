"""Which Authentication-Results are believed."""

from __future__ import annotations

from gateway.mail.trust import trusted_results

OURS = "mx.gw.test"


def test_only_the_configured_authserv_id_is_trusted_and_the_topmost_wins():
    forged_below = f"{OURS}; dmarc=pass header.from=shop.test"
    headers = ["attacker.test; dmarc=pass header.from=shop.test",
               f"{OURS}; spf=fail smtp.mailfrom=shop.test; dkim=none; dmarc=fail header.from=shop.test",
               forged_below]
    result = trusted_results(headers, OURS)
    assert result.dmarc == "fail" and result.spf == "fail"
    assert trusted_results(headers, None) is None
    assert trusted_results(["attacker.test; dmarc=pass"], OURS) is None


def test_malformed_headers_are_ignored():
    assert trusted_results(["((((", f"{OURS}; dmarc=pass header.from=a.test"], OURS).dmarc == "pass"
