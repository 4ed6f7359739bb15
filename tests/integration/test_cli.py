"""The command line an administrator uses: import, cases, configuration errors, and the
embedded `run` command started as a real process."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import main
from datetime import datetime, timezone

from tests.harness import MERCHANTS_CSV, build_mail, free_port, transactions_csv

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, port: int | None = None) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[gateway]
domain = "disputes.test"
secret_keys = ["a-test-secret-that-is-long-enough"]
staff_addresses = ["staff@ops.test"]

[database]
url = "sqlite:///{tmp_path / 'cli.db'}"

[ingress.smtp]
port = {port or free_port()}

[outbound]
maildir = "{tmp_path / 'maildir'}"

[metrics]
port = {free_port()}
""")
    return path


def test_import_upserts_and_reports_a_bad_row_with_its_line(tmp_path, capsys, clock):
    config = _config(tmp_path)
    transactions = transactions_csv(clock.now())
    day = clock.now().date()
    (tmp_path / "m.csv").write_text(MERCHANTS_CSV)
    (tmp_path / "t.csv").write_text(transactions)
    assert main(["--config", str(config), "import", "merchants", str(tmp_path / "m.csv")], clock=clock) == 0
    assert main(["--config", str(config), "import", "transactions", str(tmp_path / "t.csv")], clock=clock) == 0
    assert main(["--config", str(config), "import", "transactions", str(tmp_path / "t.csv")], clock=clock) == 0
    assert "0 created, 3 updated" in capsys.readouterr().out
    bad = transactions + (f"TX-3001,shop1,eve@x.test,Eve,10,EUR,{day}\n"
                          f"TX-3002,shop1,not-an-address,Zed,5,EUR,{day}\n"
                          f"TX-3003,shop1,zoe@x.test,Zoe,five,EUR,{day}\n")
    (tmp_path / "bad.csv").write_text(bad)
    assert main(["--config", str(config), "import", "transactions", str(tmp_path / "bad.csv")], clock=clock) == 1
    err = capsys.readouterr().err.splitlines()  # every bad row, each on its own line
    assert "line 6: customer_email" in err[0] and "line 7: amount" in err[1] and "nothing was imported" in err[2]
    assert main(["--config", str(config), "cases", "list", "--json"], clock=clock) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("content, expected", [
    ("[gateway]\ndomain = 'd.test'\n", "secret_keys: missing"),
    ("[gateway]\ndomain = 'd.test'\nsecret_keys = ['short']\nstaff_addresses = ['s@d.test']\n[outbound]\nmaildir='m'\n",
     "secret_keys: each key needs at least 16"),
    ("[gateway]\ndomain = 'd.test'\nsecret_keys = ['long-enough-secret-key']\nstaff_addresses = ['s@d.test']\n"
     "[outbound]\nmaildir='m'\n[ingress.smtp]\nport = 'x'\n", "[ingress.smtp] port: expected int"),
    ("[gateway\n", "not valid TOML"),
])
def test_configuration_errors_are_one_line_naming_key_and_file(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert main(["--config", str(path), "cases", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and str(path) in err and "\n" not in err and "Traceback" not in err


def test_cases_show_json_has_the_public_fields(sqlite_backend, make_gateway, sink, tmp_path, capsys):
    gateway = make_gateway(sqlite_backend)
    gateway.send(build_mail(sender="carol@customer.test", to="delivery@disputes.test", subject="TX-1001",
                            body="TX-1001 never arrived"), to="delivery@disputes.test")
    sink.wait_count(5)
    config = tmp_path / "gw.toml"
    config.write_text(f"""
[gateway]
domain = "disputes.test"
secret_keys = ["test-secret-key-number-one-0001"]
staff_addresses = ["staff@ops.test"]
[database]
url = "{gateway.settings.database.url}"
[outbound]
maildir = "{tmp_path / 'md'}"
""")
    assert main(["--config", str(config), "cases", "list", "--json"], clock=gateway.clock) == 0
    reference = json.loads(capsys.readouterr().out)[0]["reference"]
    assert main(["--config", str(config), "cases", "show", reference, "--json"], clock=gateway.clock) == 0
    case = json.loads(capsys.readouterr().out)
    for key in ("reference", "state", "category", "escalated", "merchant_unreachable", "closed_reason",
                "customer_email", "merchant_id", "events"):
        assert key in case
    assert case["events"][0]["kind"] == "case_opened"
    assert all({"kind", "at", "party"} <= set(event) for event in case["events"])
    assert [t["kind"] for t in case["upcoming_timers"]][:3] == ["merchant_reminder", "merchant_reminder", "escalation"]
    assert main(["--config", str(config), "cases", "show", reference], clock=gateway.clock) == 0
    out = capsys.readouterr().out
    assert "History:" in out and "Upcoming timers" in out and "merchant reminder 1" in out


def test_embedded_run_serves_smtp_and_writes_the_maildir(tmp_path):
    port = free_port()
    config = _config(tmp_path, port)
    (tmp_path / "m.csv").write_text(MERCHANTS_CSV)
    # a real process on the real clock: its transactions are dated from the real clock too
    (tmp_path / "t.csv").write_text(transactions_csv(datetime.now(timezone.utc)))
    cli = [sys.executable, "-m", "gateway.cli", "--config", str(config)]
    subprocess.run(cli + ["import", "merchants", str(tmp_path / "m.csv")], check=True, capture_output=True)
    subprocess.run(cli + ["import", "transactions", str(tmp_path / "t.csv")], check=True, capture_output=True)
    process = subprocess.Popen(cli + ["run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                    client.sendmail("carol@customer.test", ["delivery@disputes.test"],
                                    build_mail(sender="carol@customer.test", to="delivery@disputes.test",
                                               subject="TX-1001 missing", body="TX-1001 never came"))
                break
            except OSError:
                time.sleep(0.2)
        new = tmp_path / "maildir" / "new"
        while time.monotonic() < deadline and len(list(new.glob("*"))) < 4:
            time.sleep(0.1)
        assert len(list(new.glob("*"))) == 4  # merchant notice + relay, customer ack, staff notice
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "dispute-gateway running" in output


def test_serving_with_the_example_secret_key_warns(caplog):
    from gateway import config
    from gateway.cli.serve import _warn_example_secret

    settings = config.load(Path(__file__).resolve().parents[2] / "config.example.toml", environ={})
    _warn_example_secret(settings)
    assert any("example key" in r.getMessage() for r in caplog.records)
