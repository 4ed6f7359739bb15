"""The HTTP server of a gateway process: uvicorn in a thread (`run`, `serve-http`). TLS is
left to a reverse proxy in front (README: HTTP API)."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from gateway.http.app import create_app

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, runtime, *, host: str | None = None, port: int | None = None) -> None:
        http = runtime.settings.http
        self.host, self.port = host or http.host, port if port is not None else http.port
        config = uvicorn.Config(create_app(runtime), host=self.host, port=self.port, log_config=None,
                                access_log=False, lifespan="off", proxy_headers=True, server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self, timeout: float = 10.0) -> "HttpServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        log.info("HTTP API listening on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
