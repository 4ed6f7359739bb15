"""Sender trust: the decision table and which Authentication-Results are believed."""

from __future__ import annotations

import pytest

from gateway.mail.trust import AuthResults, Trust, decide, trusted_results

OURS = "mx.gw.test"


@pytest.mark.parametrize("matches, auth, expected", [
    (True, None, Trust.ACCEPT),
    (True, AuthResults("pass", "pass", "pass"), Trust.ACCEPT),
    (True, AuthResults("fail", "fail", "fail"), Trust.HOLD),
    (True, AuthResults("none", "pass", "none", spf_domain="shop.test"), Trust.ACCEPT),
    (True, AuthResults("none", "fail", "pass", dkim_domains=("shop.test",)), Trust.ACCEPT),
    (True, AuthResults("none", "pass", "none", spf_domain="bulkmailer.test"), Trust.ACCEPT_FLAGGED),
    (True, AuthResults(None, "softfail", "none"), Trust.ACCEPT_FLAGGED),
    (False, None, Trust.HOLD),
    (False, AuthResults("pass", "pass", "pass"), Trust.HOLD),
    (False, AuthResults("fail", "fail", "none"), Trust.REJECT),
])
def test_decision_table(matches, auth, expected):
    assert decide(from_matches=matches, from_address="bob@shop.test", auth=auth).trust is expected


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
