"""The worker's cost per relayed reply, stage by stage, in one process and one thread.

    .venv/bin/python bench/hot_path.py [--backend sqlite|postgres] [--replies 400] [--cases 50]
        [--profile 25] [--size 4096]

What `bench/throughput.py` measures across processes and sockets, without them: every reply is
handed to the acceptor (stored, committed) and its jobs run at once in the calling thread, as the
worker's actors run them (the broker left out): the worker's own steps (begin the attempt, read, act, commit, then the delivery: claim, send over
SMTP to a capture sink in this process, record). Printed: CPU milliseconds per reply of this
thread (the sink's thread is not counted), SQL statements per reply by kind, and with
`--profile N` the N biggest stages by inclusive CPU (cProfile), so that a change to the hot
path can be judged in seconds and repeatably, whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import addresses, db as dbmod, importer, reports  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from gateway.ingress.acceptor import Acceptor  # noqa: E402
from tests.harness import DOMAIN, KEYS, Backend, Sink, settings_for  # noqa: E402
from workers.runtime import Runtime  # noqa: E402
from bench import scratch  # noqa: E402

FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 40


def mail(sender: str, to: str, subject: str, size: int) -> bytes:
    token = uuid.uuid4().hex
    body = f"{token}\n{FILLER * (size // len(FILLER) + 1)}"[:max(200, size - 400)]
    lines = "\r\n".join(textwrap.wrap(body, 76)) + "\r\n"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{token}@customer.bench>\r\n"
            f"Date: {datetime.now(timezone.utc):%a, %d %b %Y %H:%M:%S +0000}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{lines}").encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--replies", type=int, default=400)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--scenario", default="replies", choices=("replies", "new-cases"),
                        help="replies into open cases, or every message opening a case (4 outgoing mails or more)")
    parser.add_argument("--profile", type=int, default=0, help="print the N biggest stages (cProfile)")
    parser.add_argument("--statements", action="store_true", help="print the SQL statements of the last reply")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="dg-hot-"))
    url, drop = scratch.database(args.backend, folder, prefix="dg_hot")
    sink = Sink()
    backend = Backend(args.backend, url, "memory://")
    settings = settings_for(folder, backend, sink.port, hygiene={"freeze_after_messages": 1_000_000})
    dbmod.upgrade(url)
    runtime = Runtime(settings, clock=SystemClock())
    # Each job runs at once in this thread, as a worker thread runs it when the broker hands it over.
    runtime.enqueue_inbound = lambda inbound_id, delay_ms=None: runtime.process_inbound.fn(inbound_id)
    runtime.enqueue_delivery = lambda outbox_id, delay_ms=None: runtime.deliver.fn(outbox_id)
    try:
        now = runtime.now()
        day = (now - timedelta(days=10)).date()
        (folder / "m.csv").write_text("merchant_id,name,support_email,locale\nshop,Shop,support@shop.bench,en\n")
        (folder / "t.csv").write_text(
            "reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n"
            + "".join(f"TX-{n:06d},shop,customer{n}@customer.bench,Customer {n},10,EUR,{day}\n"
                      for n in range(args.cases + (args.replies if args.scenario == "new-cases" else 0))))
        with runtime.database.unit_of_work() as db:
            importer.import_merchants(db, folder / "m.csv", now=now)
        with runtime.database.unit_of_work() as db:
            importer.import_transactions(db, folder / "t.csv", now=now)
        acceptor = Acceptor(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)

        def accept(sender: str, to: str, raw: bytes) -> None:
            acceptor.accept(raw, mail_from=sender, rcpt_tos=[to], source="bench")

        for n in range(args.cases):
            customer = f"customer{n}@customer.bench"
            accept(customer, f"delivery@{DOMAIN}", mail(customer, f"delivery@{DOMAIN}", f"TX-{n:06d} lost", 2000))
        with runtime.database.unit_of_work() as db:
            cases = {row["customer_email"]: row["reference"].lower() for row in reports.list_cases(db)}
        customers = sorted(cases)
        jobs = []
        for n in range(args.replies):
            customer = customers[n % len(customers)]
            jobs.append((customer, addresses.case_address(cases[customer], "c", domain=DOMAIN, keys=KEYS)))
        raws = [mail(sender, to, "Re: lost", args.size) for sender, to in jobs]
        if args.scenario == "new-cases":
            jobs = [(f"customer{n}@customer.bench", f"delivery@{DOMAIN}") for n in range(args.cases, args.cases + args.replies)]
            raws = [mail(sender, to, f"TX-{n:06d} never arrived", args.size)
                    for n, (sender, to) in enumerate(jobs, start=args.cases)]
        for (sender, to), raw in list(zip(jobs, raws))[:20]:  # warm up
            accept(sender, to, raw)
        jobs, raws = jobs[20:], raws[20:]
        statements: Counter = Counter()

        last: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany) -> None:
            statements[statement.split(None, 1)[0].upper()] += 1
            if statement.startswith("INSERT INTO inbound"):
                last.clear()
            last.append(" ".join(statement.split())[:160])

        engine = runtime.database.engine
        event.listen(engine, "before_cursor_execute", count)
        sent_before = len(sink.received)
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.thread_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for (sender, to), raw in zip(jobs, raws):
            accept(sender, to, raw)
        if profiler:
            profiler.disable()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        event.remove(engine, "before_cursor_execute", count)
        relayed = len(sink.received) - sent_before
        n = len(jobs)
        print(f"{args.backend} {args.scenario}: {n} messages, {relayed} mails sent; this thread's CPU {1000 * cpu / n:.2f} ms per message "
              f"(wall {1000 * wall / n:.2f} ms; accept + process + deliver)")
        print("SQL statements per message: " + ", ".join(f"{k} {v / n:.1f}" for k, v in statements.most_common())
              + f" (total {sum(statements.values()) / n:.1f})")
        if args.statements:
            print("the statements of the last reply, in order:")
            for line in last:
                print("  " + line)
        if profiler:
            stats = pstats.Stats(profiler)
            print(f"Python function calls per message: {stats.total_calls / n:,.0f} (repeatable where the CPU "
                  f"time is not, on a loaded machine)")
            rows = []
            for (file, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():
                if "/gateway/" in file or "/workers/" in file:
                    rows.append((ct, f"{name} ({file.split('/work/')[-1].split('/', 1)[-1]}:{line})"))
            rows.sort(reverse=True)
            by_library: Counter = Counter()
            for (file, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():
                where = file.split("site-packages/")[-1] if "site-packages/" in file else file
                if "/gateway/" in file or "/workers/" in file:
                    by_library["gateway (own code)"] += tt
                elif "site-packages/" in file:
                    by_library[where.split("/")[0]] += tt
                else:
                    by_library["python: " + (Path(where).stem if "/" in where else name)] += tt
            print("own CPU by library (ms per reply, cProfile): " + ", ".join(
                f"{k} {1000 * v / n:.2f}" for k, v in by_library.most_common(12)))
            print("biggest stages (inclusive CPU ms per reply, cProfile; its overhead inflates them):")
            for ct, where in rows[:args.profile]:
                print(f"  {1000 * ct / n:7.2f}  {where}")
        return 0 if relayed >= n else 1  # every message relayed (new cases: four mails or more each)
    finally:
        runtime.close()
        sink.stop()
        drop()


if __name__ == "__main__":
    sys.exit(main())
