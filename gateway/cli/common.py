"""Helpers shared by the command modules: logging, settings, signals, output."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
from datetime import datetime, timezone

from gateway import config as config_module
from gateway.display import table  # noqa: F401 - re-exported: the command modules import it from here

CONFIG_ENV = "DISPUTE_GATEWAY_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a Unix tool stopped by SIGPIPE


class CommandError(Exception):
    """A command that cannot do what was asked; its message is one line for stderr (exit 1)."""


def log_time(created: float, zone: timezone | None = None) -> str:
    """An ISO 8601 time with milliseconds and its UTC offset (local time when `zone` is None)."""
    return datetime.fromtimestamp(created, zone or timezone.utc).astimezone(zone).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": log_time(record.created, timezone.utc), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`<local time with ms and offset> LEVEL logger: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return log_time(record.created)


def configure_logging(level: str, log_format: str, log_file: str | None) -> None:
    """Log to stderr, or to `log_file` (reopened when logrotate has moved it)."""
    handler: logging.Handler = (logging.handlers.WatchedFileHandler(log_file, encoding="utf-8") if log_file
                                else logging.StreamHandler())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
    logging.getLogger("imapclient").setLevel(logging.WARNING)  # at DEBUG it logs whole messages
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command trace


def end_quietly_on_broken_pipe() -> int:
    """The reader of our output went away (`... | head`): stop without a traceback, as
    Unix tools do. Python's own flush at exit would fail again, so stdout goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def load_settings(args) -> config_module.Settings:
    settings = config_module.load(args.config)
    if settings.database.note:
        logging.getLogger("gateway").warning("%s", settings.database.note)
    return settings


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM. A server installs it before it starts anything,
    so a stop that comes while it starts still ends it cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_for_signal(stop: threading.Event | None = None) -> None:
    stop = stop or stop_on_signals()
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
