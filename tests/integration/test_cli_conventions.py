"""The command line behaves as people expect of a Unix tool: --version, helpful --help,
the configuration from the environment or after the command, known log levels, JSON log
times with zone and milliseconds, quiet when its reader goes away, a taken port said at once."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import build_parser, command_tree, main
from gateway.cli.common import JsonFormatter, TextFormatter
from gateway.display import Display, table
from tests.harness import free_port
from tests.integration.test_cli import _config as cli_config

CLI = [sys.executable, "-m", "gateway.cli"]


def _config(tmp_path: Path, port: int | None = None) -> Path:
    """test_cli's configuration, without the metrics server (several run at once here)."""
    path = cli_config(tmp_path, port)
    text = path.read_text()
    path.write_text(text[:text.index("[metrics]")] + "[metrics]\nenabled = false\n")
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"dispute-gateway {__version__}"


def test_every_command_says_what_it_does_and_documents_every_option():
    commands = list(command_tree(build_parser()))
    assert len(commands) > 25
    for path, parser in commands:
        assert parser.description, path
        for action in parser._actions:
            if action.dest not in ("help",) and not isinstance(action, argparse._SubParsersAction):
                assert action.help, (path, action.dest)


def test_import_help_names_the_columns_and_the_all_or_nothing_rule(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    assert "merchant_id, name, support_email, locale" in text
    assert "reference, merchant_id, customer_email, customer_name, amount, currency, transaction_date" in text
    assert "all or nothing" in text and "customer_locale" in text
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    assert "each one message at a time" in " ".join(capsys.readouterr().out.split())


def test_the_configuration_comes_from_the_environment_or_after_the_command(tmp_path, capsys, monkeypatch):
    config = _config(tmp_path)
    assert main(["cases", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "no cases"
    monkeypatch.setenv("DISPUTE_GATEWAY_CONFIG", str(config))
    assert main(["cases", "list"]) == 0
    monkeypatch.delenv("DISPUTE_GATEWAY_CONFIG")
    with pytest.raises(SystemExit) as stop:
        main(["cases", "list"])
    assert stop.value.code == 2
    assert "give --config FILE (before or after the command) or set DISPUTE_GATEWAY_CONFIG" in capsys.readouterr().err


def test_only_known_log_levels_are_taken(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(_config(tmp_path)), "--log-level", "verbose", "cases", "list"])
    assert stop.value.code == 2 and "invalid choice: 'VERBOSE'" in capsys.readouterr().err
    assert main(["--config", str(_config(tmp_path)), "cases", "list", "--log-level", "debug"]) == 0


def test_log_lines_carry_an_iso_time_with_milliseconds_and_zone():
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"]), entry["time"]
    assert entry["message"] == "hello there"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO gateway: hello there",
                    TextFormatter().format(record))


def test_tables_are_aligned_and_show_no_python_values():
    rows = [{"id": 7, "status": "failed", "received_at": "2026-11-26T09:05:00+00:00", "error": None, "flag": False},
            {"id": 12345, "status": "quarantined", "received_at": None, "error": "x" * 80, "flag": True}]
    lines = table(rows, ("id", "status", "received_at", "flag", "error"), display=Display("Europe/Paris")).splitlines()
    assert lines[0].split() == ["ID", "STATUS", "RECEIVED", "AT", "FLAG", "ERROR"]
    starts = [line.index("failed") if "failed" in line else line.index("quarantined") for line in lines[1:]]
    assert len(set(starts)) == 1 and lines[0].index("STATUS") == starts[0]
    assert "2026-11-26 10:05 CET" in lines[1] and " no " in lines[1] and "None" not in "\n".join(lines)
    assert lines[2].endswith("…") and " yes " in lines[2]


def test_a_calendar_date_is_shown_as_its_day_never_as_one_in_the_morning():
    paris, new_york = Display("Europe/Paris"), Display("America/New_York")
    assert paris.time("2027-05-19T00:00:00+00:00") == "2027-05-19" == new_york.time("2027-05-19T00:00:00+00:00")
    assert paris.time("2027-05-19T00:00:01+00:00") == "2027-05-19 02:00 CEST"


def test_output_into_a_reader_that_went_away_ends_quietly(tmp_path):
    config = _config(tmp_path)
    process = subprocess.Popen(CLI + ["--config", str(config), "dns-records", "--mx", "mx.test"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # like `| head` that has read what it wanted
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_a_taken_port_is_said_in_one_line_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(CLI + ["--config", str(_config(tmp_path, port)), "run"], capture_output=True,
                              timeout=60, cwd=tmp_path)
        elapsed = time.monotonic() - started
    err = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and elapsed < 8, (elapsed, err)
    assert err[-1] == f"error: [ingress.smtp]: 127.0.0.1:{port} is in use by another program (another gateway " \
                      "process?): stop it or choose another port"
    assert "Traceback" not in done.stderr.decode()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop_when", ["started", "port open"])
def test_servers_log_a_start_and_a_stop_line_even_when_stopped_while_starting(tmp_path, stop_when):
    port = free_port()
    process = subprocess.Popen(CLI + ["--config", str(_config(tmp_path, port)), "--log-format", "json", "run"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (any(b"dispute-gateway running" in line for line in lines)
                                                   or (stop_when == "port open" and _listening(port))):
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=10)
    messages = [json.loads(line)["message"] for line in lines if line.startswith(b"{")]
    assert process.returncode == 0, lines
    assert any(m.startswith("dispute-gateway running") for m in messages), messages
    assert messages[-1] == "dispute-gateway run stopped"
