"""The fault matrix with more mail: exactly once under faults, and how long recovery takes.

    .venv/bin/python bench/faults.py [--per-run 100] [--replies 100] [--only 451,pgstop] [--pg-stop 30]

Runs tests/faults (real serve-smtp, two workers and a scheduler as processes, a private
PostgreSQL and Redis in a scratch folder, a smarthost that fails on demand, the real
clock) with --per-run complaints and --replies merchant answers in flight for every fault,
and prints one row per fault: messages sent and accepted, the outbox rows that had to reach
the smarthost and how many did, lost, duplicated (and how many of those the window SMTP
leaves open explains), and the seconds from the end of the fault until everything was
delivered. Needs root (PostgreSQL runs as the postgres user) and about 10 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults import matrix as m  # noqa: E402
from tests.faults.cluster import GatewayCluster  # noqa: E402
from tests.faults.smarthost import FaultSmarthost  # noqa: E402


def faults(args) -> list[tuple[str, str, object]]:
    """(tag, name, drive) of every fault, with counts that scale with the load."""
    n = max(4, args.per_run // 10)
    return [
        ("base", "none", lambda run: (run.end_fault(), run.send())),
        ("451", "smarthost 451 for 20 s", lambda run: m.smarthost_451(run, 20)),
        ("550", "smarthost 550 for one merchant", m.smarthost_550),
        ("dropb", f"connection dropped before 250 (x{n})", m.dropping("drop_before_250", n)),
        ("dropa", f"connection dropped after 250 (x{n})", m.dropping("drop_after_250", n)),
        ("window", f"250 lost after storing (x{n})", m.smtp_window(n)),
        ("hang", "smarthost hangs 20 s", lambda run: m.smarthost_hangs(run, 20)),
        ("dup", "MTA delivers each twice", m.mta_duplicates),
        ("kill250", "kill -9 after 250, before commit (x5)", m.kill_after_250(5)),
        ("killsend", "kill -9 during DATA", m.kill_mid_send),
        ("killproc", "kill -9 both workers mid-processing", m.kill_mid_processing),
        ("killrandom", "kill -9 a worker every 3 s (x5)", m.kill_randomly(5, 3)),
        ("flush", "Redis FLUSHALL", m.redis_flushall),
        ("pgfast", "PostgreSQL restart -m fast", m.postgres_restart("fast")),
        ("pgimm", "PostgreSQL restart -m immediate", m.postgres_restart("immediate")),
        ("pgstop", f"PostgreSQL stopped {args.pg_stop} s + kill -9", m.postgres_stopped(args.pg_stop)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-run", type=int, default=100, help="complaints per fault (each makes 5 deliveries)")
    parser.add_argument("--replies", type=int, default=100, help="merchant answers on earlier cases per fault")
    parser.add_argument("--only", default="", help="comma-separated tags (base always runs first)")
    parser.add_argument("--pg-stop", type=int, default=30, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (the processes' logs)")
    args = parser.parse_args()
    chosen = faults(args)
    if args.only:
        wanted = {"base", *args.only.split(",")}
        chosen = [f for f in chosen if f[0] in wanted]
    folder = Path(tempfile.mkdtemp(prefix="dg-bench-faults-"))
    smarthost = FaultSmarthost()
    cluster = GatewayCluster(folder, smarthost.port)
    tags = [tag for tag, _, _ in chosen]
    plan = m.Matrix.plan(tags, args.per_run)
    results, started = [], time.monotonic()
    try:
        cluster.start([row for rows in plan.values() for row in rows])
        matrix = m.Matrix(cluster, smarthost, per_run=args.per_run, replies=args.replies)
        matrix.load_plan(plan)
        for tag, name, drive in chosen:
            replies = 0 if tag in ("base", "dup") else args.replies
            run = matrix.run(name, drive, load=m.Load(matrix, tag, args.per_run, replies), timeout=600)
            results.append(run.result)
            print(m.table([run.result]).splitlines()[-1], *("    " + note for note in run.result.notes), sep="\n",
                  flush=True)
            if tag == "base":
                matrix.remember_cases()
        crashes = list(cluster.crashes)
    finally:
        cluster.stop()
        smarthost.stop()
        if args.keep:
            print(f"logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{args.per_run} complaints and up to {args.replies} replies in flight per fault; "
          f"{time.monotonic() - started:.0f} s in all; unexpected process exits: {crashes or 'none'}\n")
    print(m.table(results))
    return 0 if all(r.lost == 0 and r.duplicated == r.window for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
