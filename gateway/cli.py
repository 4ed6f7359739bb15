"""dispute-gateway: entry points. Wiring only; the work happens in gateway/ and workers/."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from gateway import config as config_module

log = logging.getLogger("gateway")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _settings(args) -> config_module.Settings:
    return config_module.load(args.config)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1)


def _upgrade_if_sqlite(settings) -> None:
    from gateway import db

    if settings.database.url.startswith("sqlite"):
        db.upgrade(settings.database.url)


def cmd_run(args) -> int:
    """Embedded all-in-one: SMTP ingress, in-process workers and the scheduler."""
    from gateway.ingress import smtp
    from workers import scheduler
    from workers.runtime import Runtime

    settings = _settings(args)
    _upgrade_if_sqlite(settings)
    runtime = Runtime(settings)
    worker = runtime.start_worker()
    controller = smtp.start(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    metrics_server = _serve_metrics(runtime)
    stop = threading.Event()
    sweeper = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), name="scheduler", daemon=True)
    sweeper.start()
    pollers = _start_pollers(runtime, stop)
    where = settings.outbound.smtp and f"smarthost {settings.outbound.smtp.host}:{settings.outbound.smtp.port}"
    print(f"dispute-gateway running: SMTP on {settings.smtp_ingress.host}:{settings.smtp_ingress.port}, "
          f"database {settings.database.url}, outbound to {where or settings.outbound.maildir}. Ctrl-C stops.",
          flush=True)
    try:
        _wait_for_signal()
    finally:
        controller.stop()
        stop.set()
        for poller in pollers:
            poller.join(timeout=5)
        worker.stop()
        if metrics_server:
            metrics_server.shutdown()
        runtime.close()
    return 0


def _start_pollers(runtime, stop: threading.Event) -> list[threading.Thread]:
    """One IMAP poller thread per configured mailbox."""
    from gateway.ingress import imap

    store = imap.make_store(runtime.settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    threads = []
    for mailbox in runtime.settings.imap:
        poller = imap.ImapPoller(mailbox, store=store, clock=runtime.clock, stop=stop)
        thread = threading.Thread(target=poller.run, name=f"imap-{mailbox.username}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def cmd_poll_imap(args) -> int:
    """Read the [ingress.imap] mailboxes: once (--once) or for ever (IDLE or polling)."""
    from gateway.ingress import imap
    from workers.runtime import Runtime

    settings = _settings(args)
    if not settings.imap:
        raise config_module.ConfigError(f"{settings.source}: [ingress.imap]: missing: no mailbox to read")
    _upgrade_if_sqlite(settings)
    runtime = Runtime(settings, inline=settings.broker.embedded)
    try:
        if args.once:
            store = imap.make_store(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
            stop = threading.Event()
            total = sum(imap.ImapPoller(m, store=store, clock=runtime.clock, stop=stop).poll_once()
                        for m in settings.imap)
            print(f"{total} message(s) stored from {len(settings.imap)} mailbox(es)")
            return 0
        _require_shared_broker(settings, "poll-imap")
        stop = threading.Event()
        threads = _start_pollers(runtime, stop)
        print(f"reading {len(threads)} IMAP mailbox(es)", flush=True)
        try:
            _wait_for_signal()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
        return 0
    finally:
        runtime.close()


def _serve_metrics(runtime):
    from gateway import metrics

    try:
        return metrics.serve(runtime)
    except OSError as error:
        settings = runtime.settings.metrics
        raise config_module.ConfigError(
            f"{runtime.settings.source}: [metrics] port: cannot listen on {settings.host}:{settings.port}: {error}")


def cmd_health(args) -> int:
    from gateway import metrics
    from workers.runtime import Runtime

    settings = _settings(args)
    runtime = Runtime(settings, inline=True)
    try:
        checks = metrics.health(runtime)
    finally:
        runtime.close()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def _require_shared_broker(settings, command: str) -> None:
    if settings.broker.embedded:
        raise config_module.ConfigError(
            f"{settings.source}: [broker] url: '{command}' needs a shared broker (redis://…); "
            "with memory:// use 'dispute-gateway run'")


def cmd_serve_smtp(args) -> int:
    from gateway.ingress import smtp
    from workers.runtime import Runtime

    settings = _settings(args)
    _require_shared_broker(settings, "serve-smtp")
    runtime = Runtime(settings)
    controller = smtp.start(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    _serve_metrics(runtime)
    print(f"SMTP ingress on {settings.smtp_ingress.host}:{settings.smtp_ingress.port}", flush=True)
    try:
        _wait_for_signal()
    finally:
        controller.stop()
        runtime.close()
    return 0


def cmd_worker(args) -> int:
    from workers.runtime import Runtime

    settings = _settings(args)
    _require_shared_broker(settings, "worker")
    runtime = Runtime(settings)
    worker = runtime.start_worker(args.threads)
    _serve_metrics(runtime)
    print(f"worker running with {args.threads or settings.workers.threads} threads on {settings.broker.url}", flush=True)
    try:
        _wait_for_signal()
    finally:
        worker.stop()
        runtime.close()
    return 0


def cmd_scheduler(args) -> int:
    from workers import scheduler
    from workers.runtime import Runtime

    settings = _settings(args)
    runtime = Runtime(settings, inline=settings.broker.embedded)
    if args.once:
        report = scheduler.sweep(runtime)
        print(f"re-enqueued {report.inbound} inbound, {report.outbox} outbox; {report.timers} case timers due")
        runtime.close()
        return 0
    _require_shared_broker(settings, "scheduler")
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), daemon=True)
    thread.start()
    try:
        _wait_for_signal()
    finally:
        stop.set()
        runtime.close()
    return 0


def cmd_db_upgrade(args) -> int:
    from gateway import db

    settings = _settings(args)
    db.upgrade(settings.database.url)
    print(f"database {settings.database.url} is at the latest schema")
    return 0


def cmd_import(args) -> int:
    from gateway import importer
    from gateway.db import Database

    settings = _settings(args)
    _upgrade_if_sqlite(settings)
    database = Database(settings.database.url)
    now = datetime.now(timezone.utc)
    run = importer.import_merchants if args.kind == "merchants" else importer.import_transactions
    try:
        with database.unit_of_work() as db:
            report = run(db, Path(args.file), now=now)
    except importer.ImportError_ as error:
        print(f"error: {error}; nothing was imported", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"{args.kind}: {report.created} created, {report.updated} updated")
    return 0


def cmd_cases(args) -> int:
    from gateway import reports
    from gateway.db import Database

    settings = _settings(args)
    database = Database(settings.database.url)
    try:
        with database.unit_of_work() as db:
            if args.action == "list":
                cases = reports.list_cases(db, state=args.state)
                print(json.dumps(cases, indent=2) if args.json else reports.format_case_list(cases))
                return 0
            case = reports.show_case(db, args.reference)
    finally:
        database.dispose()
    if case is None:
        print(f"error: no case {args.reference}", file=sys.stderr)
        return 1
    print(json.dumps(case, indent=2, default=str) if args.json else reports.format_case(case))
    return 0


def cmd_merchants(args) -> int:
    from gateway import reports
    from gateway.db import Database

    settings = _settings(args)
    database = Database(settings.database.url)
    try:
        with database.unit_of_work() as db:
            merchant = reports.show_merchant(db, args.merchant_id)
    finally:
        database.dispose()
    if merchant is None:
        print(f"error: no merchant {args.merchant_id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(merchant, indent=2))
    else:
        for key, value in merchant.items():
            print(f"{key + ':':24}{', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_timers(args) -> int:
    from gateway import timer_jobs
    from gateway.clock import FixedClock, SystemClock
    from workers.runtime import Runtime

    settings = _settings(args)
    _upgrade_if_sqlite(settings)
    clock = SystemClock()
    if args.now:
        at = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        clock = FixedClock(at if at.tzinfo else at.replace(tzinfo=timezone.utc))
    runtime = Runtime(settings, clock=clock, inline=True)
    try:
        report = timer_jobs.run_all_due(runtime)
    finally:
        runtime.close()
    for line in report:
        print(line)
    print(f"{len(report)} timer action(s) as of {clock.now().isoformat()}")
    return 0


def cmd_trace(args) -> int:
    from gateway import trace

    settings = _settings(args)
    raw = Path(args.file).read_bytes()
    lines = trace.trace(settings, raw, rcpt=args.rcpt, mail_from=args.mail_from, now=datetime.now(timezone.utc))
    print("\n".join(lines))
    return 0


def _print(data, as_json: bool, text) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text(data))


def _table(rows: list[dict], columns: tuple[str, ...]) -> str:
    if not rows:
        return "nothing"
    return "\n".join(["  ".join(columns)] + ["  ".join(str(r.get(c) or "-")[:60] for c in columns) for r in rows])


def cmd_quarantine(args) -> int:
    from gateway import reports, repair
    from workers.runtime import Runtime

    settings = _settings(args)
    runtime = Runtime(settings, inline=settings.broker.embedded)
    try:
        with runtime.database.unit_of_work() as db:
            if args.action == "list":
                _print(reports.list_quarantine(db), args.json,
                       lambda rows: _table(rows, ("id", "status", "received_at", "mail_from", "disposition", "error")))
                return 0
            if args.action == "show":
                found = reports.show_inbound(db, args.id)
                if found is None:
                    print(f"error: no inbound message {args.id}", file=sys.stderr)
                    return 1
                _print(found, args.json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))
                return 0
            requeued = repair.requeue_inbound(db, args.id, now=runtime.now(),
                                              lease_seconds=settings.workers.lease_seconds)
        if not requeued:
            print(f"error: inbound {args.id} does not exist or is already queued", file=sys.stderr)
            return 1
        runtime.enqueue_inbound(args.id)
        print(f"inbound {args.id} queued for processing again")
        return 0
    finally:
        runtime.close()


def cmd_outbox(args) -> int:
    from gateway import reports, repair
    from workers.runtime import Runtime

    settings = _settings(args)
    runtime = Runtime(settings, inline=settings.broker.embedded)
    try:
        if args.action == "list":
            with runtime.database.unit_of_work() as db:
                rows = reports.list_outbox(db, status=args.status)
            _print(rows, args.json, lambda r: _table(r, ("id", "status", "kind", "party", "recipient", "attempts",
                                                         "last_error")))
            return 0
        with runtime.database.unit_of_work() as db:
            requeued = repair.requeue_outbox(db, args.id, now=runtime.now(), lease_seconds=settings.workers.lease_seconds)
        if not requeued:
            print(f"error: outbox {args.id} does not exist or has not failed", file=sys.stderr)
            return 1
        runtime.enqueue_delivery(args.id)
        print(f"outbox {args.id} queued for delivery again")
        return 0
    finally:
        runtime.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispute-gateway", description=__doc__)
    parser.add_argument("--config", required=True, help="the TOML configuration file")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="json: one JSON object per line, for log collectors")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="embedded all-in-one: SMTP ingress, workers, scheduler").set_defaults(func=cmd_run)
    sub.add_parser("serve-smtp", help="SMTP ingress only (production)").set_defaults(func=cmd_serve_smtp)
    poll = sub.add_parser("poll-imap", help="IMAP ingress: read the [ingress.imap] mailboxes")
    poll.add_argument("--once", action="store_true", help="one pass over every mailbox, then exit")
    poll.set_defaults(func=cmd_poll_imap)
    worker = sub.add_parser("worker", help="Dramatiq workers on the configured broker")
    worker.add_argument("--threads", type=int)
    worker.set_defaults(func=cmd_worker)
    sched = sub.add_parser("scheduler", help="re-enqueue lost work and run due timers")
    sched.add_argument("--once", action="store_true", help="one pass, then exit")
    sched.set_defaults(func=cmd_scheduler)
    dbp = sub.add_parser("db", help="database schema")
    dbp.add_argument("action", choices=["upgrade"])
    dbp.set_defaults(func=cmd_db_upgrade)
    imp = sub.add_parser("import", help="import merchants or transactions from CSV")
    imp.add_argument("kind", choices=["merchants", "transactions"])
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    cases = sub.add_parser("cases", help="list cases or show one case's history")
    cases_sub = cases.add_subparsers(dest="action", required=True)
    listing = cases_sub.add_parser("list")
    listing.add_argument("--state")
    listing.add_argument("--json", action="store_true")
    show = cases_sub.add_parser("show")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true")
    cases.set_defaults(func=cmd_cases)
    merchants = sub.add_parser("merchants", help="show a merchant and its address status")
    merchants_sub = merchants.add_subparsers(dest="action", required=True)
    mshow = merchants_sub.add_parser("show")
    mshow.add_argument("merchant_id")
    mshow.add_argument("--json", action="store_true")
    merchants.set_defaults(func=cmd_merchants)
    timers = sub.add_parser("timers", help="run due timers (reminders, escalation, auto-close)")
    timers_sub = timers.add_subparsers(dest="action", required=True)
    trun = timers_sub.add_parser("run")
    trun.add_argument("--now", help="ISO 8601 time to run as (default: the real clock)")
    timers.set_defaults(func=cmd_timers)
    sub.add_parser("health", help="check database, broker, smarthost and outbox; exit 1 if any fails").set_defaults(
        func=cmd_health)
    quarantine = sub.add_parser("quarantine", help="messages that failed processing or could not be placed")
    q_sub = quarantine.add_subparsers(dest="action", required=True)
    q_list = q_sub.add_parser("list")
    q_list.add_argument("--json", action="store_true")
    for name in ("show", "retry"):
        q_one = q_sub.add_parser(name)
        q_one.add_argument("id", type=int)
        q_one.add_argument("--json", action="store_true")
    quarantine.set_defaults(func=cmd_quarantine)
    outbox = sub.add_parser("outbox", help="outgoing mail: list, retry a failed delivery")
    o_sub = outbox.add_subparsers(dest="action", required=True)
    o_list = o_sub.add_parser("list")
    o_list.add_argument("--status", choices=["pending", "sending", "sent", "failed", "superseded"])
    o_list.add_argument("--json", action="store_true")
    o_retry = o_sub.add_parser("retry")
    o_retry.add_argument("id", type=int)
    outbox.set_defaults(func=cmd_outbox)
    tr = sub.add_parser("trace", help="show what the gateway would do with one message (sends and keeps nothing)")
    tr.add_argument("file", help="a raw message (.eml)")
    tr.add_argument("--rcpt", action="append", help="envelope recipient (repeatable); default: our addresses in the headers")
    tr.add_argument("--from", dest="mail_from", help="envelope sender; default: Return-Path, else From")
    tr.set_defaults(func=cmd_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), handlers=[handler])
    logging.getLogger("imapclient").setLevel(logging.WARNING)  # at DEBUG it logs whole messages
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command trace
    try:
        return args.func(args)
    except config_module.ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a one-line error, the traceback only in debug logs
        from gateway.db import DatabaseUnavailable

        if isinstance(error, DatabaseUnavailable):
            print(f"error: database unavailable: {error}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
