"""Helpers shared by the command modules."""

from __future__ import annotations

import json
import logging
import signal
import threading

from gateway import config as config_module


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def load_settings(args) -> config_module.Settings:
    settings = config_module.load(args.config)
    if settings.database.note:
        logging.getLogger("gateway").warning("%s", settings.database.note)
    return settings


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1)


def upgrade_if_sqlite(settings) -> None:
    from gateway import db

    if settings.database.url.startswith("sqlite"):
        db.upgrade(settings.database.url)


def require_shared_broker(settings, command: str) -> None:
    if settings.broker.embedded:
        raise config_module.ConfigError(
            f"{settings.source}: [broker] url: '{command}' needs a shared broker (redis://…); "
            "with memory:// use 'dispute-gateway run'")


def print_data(data, as_json: bool, text) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text(data))


def table(rows: list[dict], columns: tuple[str, ...]) -> str:
    if not rows:
        return "nothing"
    return "\n".join(["  ".join(columns)] + ["  ".join(str(r.get(c) or "-")[:60] for c in columns) for r in rows])
