"""DKIM signing (gateway/mail/dkim.py), verified with dkimpy against the key's own DNS
record served by a stub resolver (nothing on the internet)."""

from __future__ import annotations

import logging
import subprocess

import dkim as dkimpy
import pytest

from gateway import config
from gateway.mail import dkim
from tests.harness import DOMAIN, KEYS, STAFF, build_mail


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, bytes]:
    """Two 2048-bit keys, made once for the module (key generation is the slow part)."""
    return {"dg1": dkim.generate_private_key(), "dg2": dkim.generate_private_key()}


def resolver(keys: dict[str, bytes], domain: str = DOMAIN):
    """A stub for dkimpy's TXT lookup: the records `dispute-gateway dns-records` prints."""
    records = {f"{dkim.record_name(s, domain)}.".encode(): "".join(dkim.txt_strings(dkim.public_key_value(k))).encode()
               for s, k in keys.items()}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)
    return lookup


def signer_for(keys: dict[str, bytes], *selectors: str) -> dkim.DkimSigner:
    return dkim.DkimSigner(DOMAIN, tuple(dkim.SigningKey(s, keys[s], 2048) for s in selectors))


def message(**extra) -> bytes:
    return build_mail(sender=f"case+abcd-c-{'a' * 16}@{DOMAIN}", to="carol@customer.test", subject="Your case ABCD",
                      body="Hello Carol,\n\nthe merchant answered.\n", **extra)


def verified(raw: bytes, keys, index: int = 0) -> bool:
    try:
        return dkimpy.DKIM(raw).verify(idx=index, dnsfunc=resolver(keys))
    except dkimpy.ValidationError:
        return False


def test_a_signed_message_verifies_against_the_published_record(keys):
    signed = signer_for(keys, "dg1").sign(message())
    assert signed.startswith(b"DKIM-Signature: ")
    assert verified(signed, keys)
    fields = dkimpy.util.parse_tag_value(signed.split(b"\r\n\r\n")[0].split(b"DKIM-Signature:", 1)[1]
                                         .split(b"\r\nFrom:")[0].replace(b"\r\n", b""))
    assert fields[b"d"] == DOMAIN.encode() and fields[b"s"] == b"dg1" and fields[b"c"] == b"relaxed/simple"
    assert fields[b"a"] == b"rsa-sha256"


def test_every_key_signs_while_a_key_is_rotated(keys):
    signed = signer_for(keys, "dg2", "dg1").sign(message())
    assert signed.count(b"DKIM-Signature:") == 2
    assert verified(signed, keys, 0) and verified(signed, keys, 1)
    # a receiver that only knows the new record still verifies the message
    assert verified(signed, {"dg2": keys["dg2"]}, 0)


def test_changes_after_signing_break_the_signature(keys):
    signed = signer_for(keys, "dg1").sign(message())
    assert not verified(signed.replace(b"the merchant answered", b"send your card number"), keys)
    head, body = signed.split(b"\r\n\r\n", 1)
    for added in (b"From: someone@evil.test", b"Subject: Pay now", b"Reply-To: thief@evil.test"):
        assert not verified(head + b"\r\n" + added + b"\r\n\r\n" + body, keys), added
    # a trace header added on the way (a Received line) does not
    assert verified(b"Received: from gw by mx; Thu, 26 Nov 2026 10:00:00 +0000\r\n" + signed, keys)


def test_relaxed_canonicalization_survives_refolding_by_an_mta(keys):
    signed = signer_for(keys, "dg1").sign(message())
    assert verified(signed.replace(b"Subject: Your case ABCD", b"Subject:  Your case\r\n ABCD"), keys)


def test_a_message_with_bare_lf_line_ends_is_signed_with_the_same_line_ends(keys):
    raw = message().replace(b"\r\n", b"\n")
    signed = signer_for(keys, "dg1").sign(raw)
    assert b"\r" not in signed
    assert verified(signed, keys)


def test_a_message_that_cannot_be_signed_is_sent_unsigned_and_logged(keys, caplog):
    raw = b"Subject: no From here\r\n\r\nbody\r\n"
    with caplog.at_level(logging.ERROR, logger="gateway.mail.dkim"):
        assert signer_for(keys, "dg1").sign(raw) == raw
    assert "not DKIM-signed" in caplog.text


def test_txt_strings_are_at_most_255_characters_and_join_back(keys):
    value = dkim.public_key_value(keys["dg1"])
    parts = dkim.txt_strings(value)
    assert len(parts) >= 2 and all(len(p) <= 255 for p in parts) and "".join(parts) == value
    assert value.startswith("v=DKIM1; k=rsa; p=")


def test_a_key_file_is_never_overwritten(tmp_path, keys):
    path = tmp_path / "dkim" / "dg1.pem"
    dkim.write_private_key(path, keys["dg1"])
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(dkim.KeyProblem, match="exists already"):
        dkim.write_private_key(path, keys["dg2"])
    assert path.read_bytes() == keys["dg1"]


# --- [outbound.dkim] in the configuration ------------------------------------------------------

def settings_with(tmp_path, dkim_table: dict) -> config.Settings:
    return config.from_dict({
        "gateway": {"domain": DOMAIN, "secret_keys": list(KEYS), "staff_addresses": list(STAFF)},
        "outbound": {"maildir": "out", "dkim": dkim_table},
    }, source="c.toml", base_dir=tmp_path)


def test_config_reads_the_signing_key_and_the_rotation_keys(tmp_path, keys):
    dkim.write_private_key(tmp_path / "dkim" / "dg1.pem", keys["dg1"])
    dkim.write_private_key(tmp_path / "dkim" / "dg2.pem", keys["dg2"])
    settings = settings_with(tmp_path, {"selector": "DG2", "key_file": "dkim/dg2.pem",
                                        "extra_keys": [{"selector": "dg1", "key_file": "dkim/dg1.pem"}]})
    assert [k.selector for k in settings.outbound.dkim.keys] == ["dg2", "dg1"]
    assert settings.outbound.dkim.keys[0].key_file == tmp_path / "dkim" / "dg2.pem"
    assert settings.outbound.dkim.signing and settings.outbound.dkim.domain == DOMAIN
    signer = dkim.DkimSigner.from_settings(settings.outbound.dkim)
    assert verified(signer.sign(message()), keys, 1)


def test_without_the_table_nothing_is_signed_and_enabled_false_turns_it_off(tmp_path):
    absent = config.from_dict({"gateway": {"domain": DOMAIN, "secret_keys": list(KEYS),
                                           "staff_addresses": list(STAFF)}, "outbound": {"maildir": "out"}},
                              base_dir=tmp_path)
    assert not absent.outbound.dkim.configured and dkim.DkimSigner.from_settings(absent.outbound.dkim) is None
    off = settings_with(tmp_path, {"enabled": False, "selector": "dg1", "key_file": "gone.pem"})
    assert off.outbound.dkim.configured and not off.outbound.dkim.signing


@pytest.mark.parametrize("table, problem", [
    ({"selector": "dg1"}, r"\[outbound.dkim\] key_file: missing"),
    ({"key_file": "dkim/dg1.pem"}, r"\[outbound.dkim\] selector: missing"),
    ({"selector": "dg 1", "key_file": "dkim/dg1.pem"}, "selector: not a DNS label"),
    ({"selector": "dg1", "key_file": "missing.pem"}, r"key_file: cannot read .*missing.pem"),
    ({"selector": "dg1", "key_file": "readable.pem"}, "can be read by every user"),
    ({"selector": "dg1", "key_file": "not-a-key.pem"}, "not a PEM RSA private key"),
    ({"selector": "dg1", "key_file": "dkim/dg1.pem", "extra_keys": [{"selector": "dg1", "key_file": "dkim/dg1.pem"}]},
     "each key needs its own selector"),
    ({"selector": "dg1", "key_file": "dkim/dg1.pem", "algorithm": "ed25519"}, "algorithm: unknown key"),
])
def test_config_errors_name_the_key(tmp_path, keys, table, problem):
    dkim.write_private_key(tmp_path / "dkim" / "dg1.pem", keys["dg1"])
    (tmp_path / "readable.pem").write_bytes(keys["dg1"])
    (tmp_path / "readable.pem").chmod(0o644)
    (tmp_path / "not-a-key.pem").write_text("hello")
    (tmp_path / "not-a-key.pem").chmod(0o600)
    with pytest.raises(config.ConfigError, match=problem):
        settings_with(tmp_path, table)


def test_a_key_under_1024_bits_is_refused(tmp_path):
    path = tmp_path / "small.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "768"], check=True, capture_output=True)
    path.chmod(0o600)
    with pytest.raises(config.ConfigError, match="768-bit key; DKIM needs at least 1024"):
        settings_with(tmp_path, {"selector": "dg1", "key_file": "small.pem"})
