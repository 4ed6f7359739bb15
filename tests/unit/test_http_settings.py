"""[http]: tokens and scopes from the file or the environment, webhook endpoints; status
links (gateway/status_links.py) and the pure parts of webhooks (gateway/webhooks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway import status_links, webhooks
from gateway.settings import WEBHOOK_EVENTS
from tests.unit.test_config import MINIMAL, REPO, _error, _load

TOKEN = "a-token-of-at-least-24-characters"
HTTP = f'\n[http]\nport = 8099\n[http.api_tokens]\naccount-page = "{TOKEN}"\n'
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)


def test_no_http_table_means_no_server(tmp_path):
    assert not _load(tmp_path, MINIMAL).http.enabled


def test_tokens_scopes_and_the_environment(tmp_path):
    http = _load(tmp_path, MINIMAL + HTTP + '[http.scopes]\naccount-page = ["cases:read"]\n').http
    assert http.enabled and http.port == 8099 and http.public_url == "http://127.0.0.1:8099"
    assert [(t.name, t.token, t.scopes) for t in http.api_tokens] == [("account-page", TOKEN, ("cases:read",))]
    env = _load(tmp_path, MINIMAL + HTTP, {"DISPUTE_GATEWAY_API_TOKENS": f"back-office={TOKEN}x, other={TOKEN}y"}).http
    assert [t.name for t in env.api_tokens] == ["back-office", "other"]
    assert env.api_tokens[0].scopes == ("cases:write", "cases:read", "transactions:write", "merchants:write")


@pytest.mark.parametrize("extra, environ, named", [
    ('[http.api_tokens]\nshort = "abc"\n', {}, "at least 24"),
    (f'[http.api_tokens]\nx = "{TOKEN}"\n[http.scopes]\nx = ["cases:delete"]\n', {}, "unknown scope"),
    (f'[http.api_tokens]\nx = "{TOKEN}"\n[http.scopes]\ny = ["cases:read"]\n', {}, "no API token"),
    ("", {"DISPUTE_GATEWAY_API_TOKENS": "no-equals-sign"}, "name=token"),
    ('[[http.webhooks]]\nurl = "ftp://x"\nsecret = "' + "s" * 30 + '"\n', {}, "http://"),
    ('[[http.webhooks]]\nurl = "https://x.test/h"\nsecret = "short"\n', {}, "24 characters"),
    ('[[http.webhooks]]\nurl = "https://x.test/h"\nsecret = "' + "s" * 30 + '"\nevents = ["case.deleted"]\n', {},
     "unknown event"),
    ("public_url = \"disputes.example.org\"\n", {}, "public_url"),
])
def test_bad_http_settings_name_the_key(tmp_path, extra, environ, named):
    assert named in _error(tmp_path, MINIMAL + "\n[http]\n" + extra, environ)


def test_webhook_secrets_from_the_environment(tmp_path):
    text = MINIMAL + '\n[http]\n[[http.webhooks]]\nname = "provider"\nurl = "https://a.test/h"\n'
    http = _load(tmp_path, text, {"DISPUTE_GATEWAY_WEBHOOK_SECRETS": "provider=" + "k" * 30}).http
    assert http.webhooks[0].secret == "k" * 30 and http.webhooks[0].events == WEBHOOK_EVENTS


def test_a_webhook_secret_is_rotated_by_naming_the_endpoint_twice(tmp_path):
    text = MINIMAL + '\n[http]\n[[http.webhooks]]\nname = "provider"\nurl = "https://a.test/h"\n'
    rotating = {"DISPUTE_GATEWAY_WEBHOOK_SECRETS": f"provider={'n' * 30},provider={'o' * 30}"}
    hook = _load(tmp_path, text, rotating).http.webhooks[0]
    assert hook.secret == "n" * 30 and hook.old_secrets == ("o" * 30,)
    in_file = text + f'secret = "{"n" * 30}"\nold_secrets = ["{"o" * 30}"]\n'
    assert _load(tmp_path, in_file).http.webhooks[0].old_secrets == ("o" * 30,)
    assert "old_secrets" in _error(tmp_path, text + f'secret = "{"n" * 30}"\nold_secrets = ["short"]\n')


def test_idempotency_keys_are_kept_a_day_unless_configured(tmp_path):
    text = MINIMAL + '\n[http]\n'
    assert _load(tmp_path, text).http.idempotency_hours == 24
    assert _load(tmp_path, text + "idempotency_hours = 72\n").http.idempotency_hours == 72
    assert "idempotency_hours" in _error(tmp_path, text + "idempotency_hours = 0\n")


def test_the_example_http_block_uncommented_loads(tmp_path):
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("# [http]\n")
    block = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text[start:].splitlines())
    http = _load(tmp_path, text[:start] + block).http
    assert http.enabled and http.public_url == "https://disputes.example.org"
    assert http.api_tokens[0].name == "account-page" and http.webhooks[0].name == "provider"


def test_status_links_verify_expire_and_name_one_party():
    key, other = "k" * 20, "o" * 20
    token = status_links.token("abcd2345", "c", expires=NOW + timedelta(days=1), key=key)
    access = status_links.verify(token, keys=(other, key), now=NOW)
    assert (access.reference, access.party) == ("abcd2345", "c")
    assert status_links.verify(token, keys=(other,), now=NOW) == "signature"
    assert status_links.verify(token.replace(".c.", ".m."), keys=(key,), now=NOW) == "signature"
    assert status_links.verify(token, keys=(key,), now=NOW + timedelta(days=2)) == "expired"
    assert status_links.verify("../../etc/passwd", keys=(key,), now=NOW) == "malformed"
    with pytest.raises(ValueError):
        status_links.token("abcd2345", "s", expires=NOW, key=key)
    link = status_links.link("https://d.test/", "ABCD2345", "m", now=NOW, days=30, key=key)
    assert link.startswith("https://d.test/status/abcd2345.m.")
    assert link == status_links.link("https://d.test", "abcd2345", "m", now=NOW + timedelta(hours=5), days=30, key=key)


@pytest.mark.parametrize("kind, detail, expected", [
    ("case_opened", {}, ["case.opened"]),
    ("merchant_replied", {"applied": True, "state_before": "awaiting_merchant", "state_after": "awaiting_customer"},
     ["case.answered"]),
    ("escalated", {"applied": True, "state_after": "with_staff", "state_before": "awaiting_merchant"},
     ["case.escalated"]),
    ("escalated", {"applied": False}, []),
    ("merchant_bounced", {"applied": True, "state_after": "with_staff", "state_before": "awaiting_merchant"},
     ["case.escalated", "case.merchant_unreachable"]),
    ("resolved", {"applied": True, "state_before": "awaiting_customer", "state_after": "closed"}, ["case.closed"]),
    ("expired", {"applied": False, "state_before": "closed", "state_after": "closed"}, []),
    ("notice_sent", {"notice": "ack_delivery"}, []),
])
def test_which_case_events_are_webhook_events(kind, detail, expected):
    assert webhooks.kinds_of(kind, detail) == expected


def test_signatures_are_standard_webhooks_and_refuse_replays():
    body, secret = b'{"id":"evt_1"}', "s" * 30
    signature = webhooks.sign(secret, "evt_1", 1_700_000_000, body)
    assert signature.startswith("v1,")
    headers = {"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": signature}
    assert webhooks.verify(secret, headers, body, now=1_700_000_100)
    assert not webhooks.verify(secret, headers, body, now=1_700_001_000)  # too old: a replay
    assert not webhooks.verify(secret, {**headers, "webhook-id": "evt_2"}, body, now=1_700_000_000)
