"""The Sisimai helper process ([bounces] analyser, gateway/sisimai.py): the real one where
libsisimai-perl is installed, and stand-ins for the faults it must survive (one that never
answers, one that dies). Every fault leaves the report to our own detectors."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from gateway import pipeline, sisimai
from gateway.config import BounceSettings, ConfigError
from gateway.mail.bounces import FailureKind, Reason
from tests.harness import DOMAIN, KEYS

MAIL = Path(__file__).resolve().parents[1] / "mail"
UNKNOWN_USER = MAIL / "postfix_dsn_unknown_user.eml"
CR_ONLY = MAIL / "corpus" / "heldout" / "sisimai-mac-jp-kddi-01.eml"
INSTALLED = sisimai.installed()
needs_sisimai = pytest.mark.skipif(INSTALLED is None, reason="libsisimai-perl is not installed")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stand_in(tmp_path: Path, body: str) -> str:
    """A `perl` that says it has Sisimai, then behaves as `body` says."""
    script = tmp_path / "perl"
    script.write_text("#!/bin/sh\n"
                      'if [ "$1" = "-MSisimai" ]; then echo 4.25.15; exit 0; fi\n'
                      "echo '{\"ready\": 1, \"version\": \"4.25.15\"}'\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.fixture
def analyser():
    found = sisimai.Sisimai(timeout_seconds=20)
    yield found
    found.close()


@needs_sisimai
def test_the_real_sisimai_reads_a_report_and_keeps_its_process(analyser):
    (entry,) = analyser.read(UNKNOWN_USER.read_bytes())
    assert (entry.recipient, entry.reason, entry.status, entry.soft) == ("nobody@merchant.test", "userunknown", "5.1.1", 0)
    first = analyser._process.pid
    assert analyser.read(UNKNOWN_USER.read_bytes())[0].reason == "userunknown"
    assert analyser._process.pid == first and analyser.version == INSTALLED


@needs_sisimai
def test_the_real_sisimai_reads_a_cr_only_report_and_nothing_in_human_mail(analyser):
    assert analyser.read(CR_ONLY.read_bytes())  # Sisimai 4.25 itself reads no CR-only mail
    human = b"From: carol@customer.test\nTo: shop@merchant.test\nSubject: hello\n\nWhere is my parcel?\n"
    assert analyser.read(human) == []


@needs_sisimai
def test_a_huge_report_is_read_from_its_start(analyser):
    raw = UNKNOWN_USER.read_bytes() + b"\n" + b"x" * 76 + b"\n" * (8 * 1024 * 1024 // 77)
    assert analyser.read(raw)[0].reason == "userunknown"


@needs_sisimai
def test_prepare_joins_sisimai_s_reading_with_ours(analyser, tmp_path):
    from gateway import config

    settings = config.from_dict({"gateway": {"domain": DOMAIN, "secret_keys": list(KEYS), "staff_addresses": ["s@staff.test"]},
                                 "outbound": {"maildir": str(tmp_path / "m")}}, source="t.toml")
    raw = (MAIL / "corpus" / "bounces" / "flufl-exchange-groupwise_02.eml").read_bytes()
    alone = pipeline.prepare(raw, "", settings).verdict
    joined = pipeline.prepare(raw, "", settings, analyser=analyser).verdict
    assert alone.failures[0].kind is FailureKind.DEAD  # "The recipient name is not recognized"
    assert joined.failures[0].reason is Reason.FILTERED and joined.detected_by.startswith("sisimai")


def test_an_analyser_that_never_answers_is_given_up_and_tried_again_later(tmp_path, caplog):
    clock = Clock()
    hanging = sisimai.Sisimai(perl=_stand_in(tmp_path, "exec sleep 60\n"), timeout_seconds=0.3,
                              restart_after_seconds=60, monotonic=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.sisimai"):
            assert hanging.read(UNKNOWN_USER.read_bytes()) is None
        assert "no answer within 0.3 s" in caplog.text
        assert hanging._process is None  # killed
        assert hanging.read(UNKNOWN_USER.read_bytes()) is None and hanging._process is None  # not restarted yet
        clock.now += 61
        assert hanging.read(UNKNOWN_USER.read_bytes()) is None and hanging._process is None  # restarted, given up again
    finally:
        hanging.close()


def test_an_analyser_that_dies_leaves_the_report_to_our_detectors(tmp_path, caplog):
    dying = sisimai.Sisimai(perl=_stand_in(tmp_path, "read size\nexit 3\n"), timeout_seconds=5, monotonic=Clock())
    with caplog.at_level(logging.WARNING, logger="gateway.sisimai"):
        assert dying.read(UNKNOWN_USER.read_bytes()) is None
    assert "Sisimai process ended" in caplog.text


def test_prepare_falls_back_to_our_detectors_when_the_analyser_fails(tmp_path):
    from gateway import config

    settings = config.from_dict({"gateway": {"domain": DOMAIN, "secret_keys": list(KEYS), "staff_addresses": ["s@staff.test"]},
                                 "outbound": {"maildir": str(tmp_path / "m")}}, source="t.toml")
    hanging = sisimai.Sisimai(perl=_stand_in(tmp_path, "exec sleep 60\n"), timeout_seconds=0.3, monotonic=Clock())
    try:
        verdict = pipeline.prepare(UNKNOWN_USER.read_bytes(), "", settings, analyser=hanging).verdict
    finally:
        hanging.close()
    assert verdict.failures[0].kind is FailureKind.DEAD and not verdict.detected_by.startswith("sisimai")


def test_a_required_sisimai_that_is_not_installed_is_a_configuration_error(tmp_path):
    missing = str(tmp_path / "no-perl-here")
    required = sisimai.analyser_for(BounceSettings(analyser="sisimai"), perl=missing)
    with pytest.raises(ConfigError, match="libsisimai-perl"):
        sisimai.describe(required, "gateway.toml")
    auto = sisimai.analyser_for(BounceSettings(analyser="auto"), perl=missing)
    assert "not installed" in sisimai.describe(auto) and auto.read(UNKNOWN_USER.read_bytes()) is None
    assert sisimai.analyser_for(BounceSettings()) is None


def test_the_config_names_the_analyser(tmp_path):
    from gateway import config

    base = {"gateway": {"domain": DOMAIN, "secret_keys": list(KEYS), "staff_addresses": ["s@staff.test"]},
            "outbound": {"maildir": str(tmp_path / "m")}}
    read = config.from_dict({**base, "bounces": {"analyser": "auto", "analyser_timeout_seconds": 3}}, source="t.toml")
    assert (read.bounces.analyser, read.bounces.analyser_timeout_seconds) == ("auto", 3.0)
    with pytest.raises(ConfigError, match="analyser"):
        config.from_dict({**base, "bounces": {"analyser": "spamassassin"}}, source="t.toml")
    assert os.environ.get("PATH")  # the stand-ins above are found by path, never through PATH


def test_health_fails_where_a_required_sisimai_is_missing_and_names_the_reader_otherwise(tmp_path):
    from gateway.health import analyser_check

    missing = str(tmp_path / "no-perl-here")
    failing = analyser_check(sisimai.analyser_for(BounceSettings(analyser="sisimai"), perl=missing))
    assert (failing.name, failing.ok) == ("reports", False) and "libsisimai-perl" in failing.detail
    auto = analyser_check(sisimai.analyser_for(BounceSettings(analyser="auto"), perl=missing))
    assert auto.ok and "our own detectors" in auto.detail


@needs_sisimai
def test_health_names_sisimai_where_it_reads_reports(analyser):
    from gateway.health import analyser_check

    check = analyser_check(analyser)
    assert check.ok and f"Sisimai {INSTALLED} joined with our own detectors" in check.detail
