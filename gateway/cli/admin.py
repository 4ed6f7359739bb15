"""One-shot commands for administrators: database, imports, cases, timers, trace, repair, health."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.cli.common import (
    load_settings,
    upgrade_if_sqlite,
    print_data,
    table,
)
from gateway.display import Display


def display_for(settings) -> Display:
    """Times for people in [timers] timezone, the zone of every time the gateway shows."""
    return Display(settings.timers.timezone)


def cmd_health(args) -> int:
    from gateway import health
    from workers.runtime import Runtime

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    runtime = Runtime(settings, clock=args.clock, inline=True)
    try:
        checks = health.health(runtime)
    finally:
        runtime.close()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_db_upgrade(args) -> int:
    from gateway import db

    settings = load_settings(args)
    db.upgrade(settings.database.url)
    print(f"database {settings.database.url} is at the latest schema")
    return 0


def cmd_import(args) -> int:
    from gateway import importer
    from gateway.db import Database

    settings = load_settings(args)
    upgrade_if_sqlite(settings)
    database = Database(settings.database.url)
    now = args.clock.now()
    run = importer.import_merchants if args.kind == "merchants" else importer.import_transactions
    try:
        with database.unit_of_work() as db:
            report = run(db, Path(args.file), now=now)
    except importer.ImportError_ as error:
        for problem in error.problems:  # every bad row (up to importer.MAX_PROBLEMS), one per line
            print(f"error: {problem}", file=sys.stderr)
        if error.total > len(error.problems):
            print(f"error: ... and {error.total - len(error.problems)} more bad row(s) not shown", file=sys.stderr)
        print(f"{args.kind}: nothing was imported", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"{args.kind}: {report.created} created, {report.updated} updated")
    return 0


def cmd_cases(args) -> int:
    from gateway import reports
    from gateway.db import Database

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    if args.action in ("export", "verify-export"):
        from gateway.cli import export as export_commands

        return export_commands.run(args, settings)
    database = Database(settings.database.url)
    try:
        with database.unit_of_work() as db:
            if args.action == "list":
                cases = reports.list_cases(db, state=args.state)
                print(json.dumps(cases, indent=2) if args.json
                      else reports.format_case_list(cases, display_for(settings)))
                return 0
            case = reports.show_case(db, args.reference, settings=settings, evidence=True)
    finally:
        database.dispose()
    if case is None:
        print(f"error: no case {args.reference}", file=sys.stderr)
        return 1
    print(json.dumps(case, indent=2, default=str) if args.json else reports.format_case(case, display_for(settings)))
    return 0


def cmd_merchants(args) -> int:
    from gateway import reports
    from gateway.db import Database

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    database = Database(settings.database.url)
    try:
        with database.unit_of_work() as db:
            if args.action == "clear":
                return _clear_merchant(db, args)
            merchant = reports.show_merchant(db, args.merchant_id)
    finally:
        database.dispose()
    if merchant is None:
        print(f"error: no merchant {args.merchant_id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(merchant, indent=2))
    else:
        display = display_for(settings)
        for key, value in merchant.items():
            print(f"{key.replace('_', ' ') + ':':24}{display.value(value, key)}")
    return 0


def _clear_merchant(db, args) -> int:
    """`merchants clear ID`: the address works again (staff checked it)."""
    from gateway.casework.delivery_reports import clear_merchant

    references = clear_merchant(db, args.merchant_id, now=args.clock.now(), note=args.note or "")
    if references is None:
        print(f"error: no merchant {args.merchant_id}", file=sys.stderr)
        return 1
    print(f"merchant {args.merchant_id}: address flag and delivery trouble cleared; "
          f"{len(references)} open case(s){': ' + ', '.join(references) if references else ''}. "
          "Write #retry to a case's staff address to send again what failed.")
    return 0


def cmd_timers(args) -> int:
    from gateway.casework import due_timers, schedule
    from gateway.clock import FixedClock
    from workers.runtime import Runtime

    settings = load_settings(args)
    upgrade_if_sqlite(settings)
    clock = args.clock
    if args.now:  # a time without an offset is local time in [timers] timezone
        at = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        clock = FixedClock(at if at.tzinfo else at.replace(tzinfo=ZoneInfo(settings.timers.timezone)))
    runtime = Runtime(settings, clock=clock, inline=True)
    try:
        rescheduled = schedule.reschedule_open_cases(runtime.database, settings)
        if rescheduled:
            print(f"{rescheduled} open case(s) rescheduled with the current [timers]")
        report = due_timers.run_all_due(runtime.database, settings=settings, renderer=runtime.renderer,
                                      now=clock.now(), enqueue_delivery=runtime.enqueue_delivery)
    finally:
        runtime.close()
    for line in report:
        print(line)
    print(f"{len(report)} timer action(s) as of {clock.now().isoformat()}")
    return 0


def cmd_trace(args) -> int:
    from gateway import trace

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    raw = Path(args.file).read_bytes()
    lines = trace.trace(settings, raw, rcpt=args.rcpt, mail_from=args.mail_from, now=args.clock.now())
    print("\n".join(lines))
    return 0


def cmd_quarantine(args) -> int:
    from gateway import reports, repair
    from workers.runtime import Runtime

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    runtime = Runtime(settings, clock=args.clock, inline=settings.broker.embedded)
    try:
        with runtime.database.unit_of_work() as db:
            if args.action == "list":
                listing = reports.list_quarantine(db, page=args.page, per_page=max(1, args.per_page))
                print_data(listing, args.json, lambda page: _quarantine_page(page, display_for(settings)))
                return 0
            if args.action == "show":
                found = reports.show_inbound(db, args.id)
                if found is None:
                    print(f"error: no inbound message {args.id}", file=sys.stderr)
                    return 1
                display = display_for(settings)
                print_data(found, args.json, lambda d: "\n".join(
                    f"{k.replace('_', ' ')}: {display.value(v, k) if k != 'raw' else chr(10) + v}" for k, v in d.items()))
                return 0
            requeued = repair.requeue_inbound(db, args.id, now=runtime.now(),
                                              lease_seconds=settings.workers.lease_seconds)
        if not requeued:
            print(f"error: inbound {args.id} is not in quarantine (only failed or unplaced messages can be retried)",
                  file=sys.stderr)
            return 1
        runtime.enqueue_inbound(args.id)
        print(f"inbound {args.id} queued for processing again")
        return 0
    finally:
        runtime.close()


def _quarantine_page(listing: dict, display) -> str:
    """A page of `quarantine list` and where it stands among all of them."""
    rows, total, page = listing["messages"], listing["total"], listing["page"]
    if not total:
        return "nothing in quarantine"
    first = (page - 1) * listing["per_page"] + 1
    where = (f"{total} message(s) in quarantine; showing {first}-{first + len(rows) - 1} "
             f"(page {page} of {listing['pages']}, newest first")
    where += f"; next: --page {page + 1})" if page < listing["pages"] else ")"
    return table(rows, ("id", "status", "received_at", "mail_from", "disposition", "error"), display=display) + "\n" + where


def cmd_outbox(args) -> int:
    from gateway import reports, repair
    from workers.runtime import Runtime

    settings = load_settings(args)
    upgrade_if_sqlite(settings)  # a fresh install answers, not "no such table"
    runtime = Runtime(settings, clock=args.clock, inline=settings.broker.embedded)
    try:
        if args.action == "list":
            with runtime.database.unit_of_work() as db:
                rows = reports.list_outbox(db, status=args.status)
            print_data(rows, args.json, lambda r: table(r, ("id", "status", "kind", "party", "recipient", "attempts",
                                                         "next_attempt_at", "last_error"),
                                                         display=display_for(settings)))
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
