"""`run` serves the HTTP API when [http] is configured; `serve-http` serves it alone (on a
shared broker) and refuses, in one line, a configuration without [http]."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.harness import free_port
from tests.integration.test_cli_conventions import _config

CLI = [sys.executable, "-m", "gateway.cli"]
TOKEN = "test-token-for-the-process-tests-01"


def _with_http(tmp_path, port: int, *, broker: str | None = None):
    path = _config(tmp_path, free_port())
    text = path.read_text()
    if broker:
        text += f'\n[broker]\nurl = "{broker}"\n'
    path.write_text(text + f'\n[http]\nport = {port}\n[http.api_tokens]\nprocess-test = "{TOKEN}"\n')
    return path


def _serve(args, tmp_path, port):
    process = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                description = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                unauthenticated = httpx.post(f"http://127.0.0.1:{port}/v1/cases", json={}, timeout=5)
                authenticated = httpx.get(f"http://127.0.0.1:{port}/v1/merchants/shop1/cases",
                                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
                return description, unauthenticated, authenticated
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                time.sleep(0.1)
        raise AssertionError("the HTTP server did not answer")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
        assert process.returncode == 0, output
        assert "HTTP API listening on 127.0.0.1" in output, output


def test_run_serves_the_api_when_http_is_configured(tmp_path):
    port = free_port()
    description, unauthenticated, authenticated = _serve(["--config", str(_with_http(tmp_path, port)), "run"],
                                                         tmp_path, port)
    assert description.status_code == 200 and "/v1/cases" in description.json()["paths"]
    assert unauthenticated.status_code == 401
    assert authenticated.status_code == 200 and authenticated.json()["total"] == 0


@pytest.mark.redis
def test_serve_http_needs_an_http_table(tmp_path):
    path = _config(tmp_path, free_port())
    path.write_text(path.read_text() + '\n[broker]\nurl = "redis://127.0.0.1:6379/15"\n')
    done = subprocess.run(CLI + ["--config", str(path), "serve-http"], capture_output=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr.decode()
    assert done.stderr.decode().strip().splitlines()[-1].endswith(
        "[http]: missing, or enabled = false (serve-http serves it)")


@pytest.mark.redis
def test_serve_http_serves_the_api_alone(tmp_path):
    port = free_port()
    path = _with_http(tmp_path, port, broker="redis://127.0.0.1:6379/15")
    subprocess.run(CLI + ["--config", str(path), "db", "upgrade"], check=True, capture_output=True, cwd=tmp_path)
    description, unauthenticated, authenticated = _serve(["--config", str(path), "serve-http"], tmp_path, port)
    assert description.status_code == 200 and unauthenticated.status_code == 401 and authenticated.status_code == 200
