"""One running gateway per test module, with its HTTP server, a smarthost sink and a
webhook receiver, all real and on free ports (a server per module keeps these tests fast)."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.harness import Backend, Gateway, Sink, TestClock, free_port, settings_for
from tests.http.receiver import Receiver

API_TOKEN = "test-token-provider-account-page-0001"
READER_TOKEN = "test-token-read-only-dashboard-00002"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
OLD_WEBHOOK_SECRET = "test-webhook-secret-being-rotated-out"


class Api:
    """A running gateway with its HTTP server."""

    def __init__(self, gateway: Gateway, server, sink: Sink, receiver: Receiver, tmp) -> None:
        self.gateway, self.server, self.sink, self.receiver, self.tmp = gateway, server, sink, receiver, tmp
        self.url = f"http://127.0.0.1:{server.port}"

    def client(self, token: str | None = API_TOKEN):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def running_api(tmp, backend: Backend, http: dict) -> Iterator[Api]:
    """A loaded gateway on `backend` with its HTTP server (`http`: the [http] table, the port,
    public URL and webhook receiver filled in), a sink and a receiver; stopped at the end."""
    from gateway.http.server import HttpServer

    sink, receiver = Sink(), Receiver().start()
    port = free_port()
    http = {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}", **http}
    http["webhooks"] = [{"url": receiver.url, **hook} for hook in http.get("webhooks", ())]
    gateway = Gateway(settings_for(tmp, backend, sink.port, http=http), clock=TestClock())
    try:
        gateway.load(tmp)
        server = HttpServer(gateway.runtime).start()
        try:
            yield Api(gateway, server, sink, receiver, tmp)
        finally:
            server.stop()
    finally:
        gateway.stop()
        receiver.stop()
        sink.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    yield from running_api(tmp, Backend("sqlite", f"sqlite:///{tmp / 'gateway.db'}", "memory://"), {
        "api_tokens": {"account-page": API_TOKEN, "dashboard": READER_TOKEN},
        "scopes": {"dashboard": ["cases:read"]},
        "webhooks": [{"name": "provider", "secret": WEBHOOK_SECRET, "old_secrets": [OLD_WEBHOOK_SECRET]}],
    })
