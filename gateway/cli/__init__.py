"""dispute-gateway: entry points. Wiring only; the work happens in gateway/ and workers/."""

from __future__ import annotations

import argparse
import logging
import sys

from gateway import config as config_module
from gateway.cases.machine import CaseState
from gateway.clock import Clock, SystemClock
from gateway.cli.admin import (
    cmd_health,
    cmd_db_upgrade,
    cmd_import,
    cmd_cases,
    cmd_merchants,
    cmd_timers,
    cmd_trace,
    cmd_quarantine,
    cmd_outbox,
)
from gateway.cli.common import JsonFormatter
from gateway.cli.serve import (
    cmd_run,
    cmd_poll_imap,
    cmd_serve_smtp,
    cmd_worker,
    cmd_scheduler,
)

log = logging.getLogger("gateway")


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
    listing.add_argument("--state", choices=[state.value for state in CaseState])
    listing.add_argument("--json", action="store_true")
    show = cases_sub.add_parser("show")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true")
    export = cases_sub.add_parser("export", help="write the case's evidence bundle (a BagIt ZIP)")
    export.add_argument("reference")
    export.add_argument("--out", help="the ZIP to write (default: a new file in [export] directory)")
    export.add_argument("--redact", action="store_true", help="hide the parties' addresses and leave out raw messages")
    verify = cases_sub.add_parser("verify-export", help="check a bundle: manifests, hash chain, this gateway's history")
    verify.add_argument("file")
    cases.set_defaults(func=cmd_cases)
    merchants = sub.add_parser("merchants", help="show a merchant and its address status")
    merchants_sub = merchants.add_subparsers(dest="action", required=True)
    mshow = merchants_sub.add_parser("show")
    mshow.add_argument("merchant_id")
    mshow.add_argument("--json", action="store_true")
    mclear = merchants_sub.add_parser("clear", help="clear a merchant's invalid-address flag and delivery trouble")
    mclear.add_argument("merchant_id")
    mclear.add_argument("--note", help="why (kept in each open case's history)")
    merchants.set_defaults(func=cmd_merchants)
    timers = sub.add_parser("timers", help="run due timers (reminders, escalation, auto-close)")
    timers_sub = timers.add_subparsers(dest="action", required=True)
    trun = timers_sub.add_parser("run")
    trun.add_argument("--now", help="ISO 8601 time to run as (default: the real clock); without an offset, local time in [timers] timezone")
    timers.set_defaults(func=cmd_timers)
    sub.add_parser("health", help="check database, broker, smarthost and outbox; exit 1 if any fails").set_defaults(
        func=cmd_health)
    quarantine = sub.add_parser("quarantine", help="messages that failed processing or could not be placed")
    q_sub = quarantine.add_subparsers(dest="action", required=True)
    q_list = q_sub.add_parser("list", help="newest first, one page at a time, with the total")
    q_list.add_argument("--page", type=int, default=1, help="page number (default 1)")
    q_list.add_argument("--per-page", type=int, default=50, help="messages per page (default 50)")
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


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run one command. `clock` is the process's one clock (the system clock unless a
    caller, such as a test driving the CLI beside a running gateway, gives its own)."""
    args = build_parser().parse_args(argv)
    args.clock = clock or SystemClock()
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
