"""End-to-end throughput of the hot path: SMTP in -> store -> process -> relay -> SMTP out.

    .venv/bin/python bench/throughput.py [--messages 500] [--backend sqlite|postgres] [--size 4096]

Starts the gateway in-process (ingress + workers) against a real aiosmtpd sink standing in
for the smarthost, opens one case, then sends --messages customer replies of about --size
bytes over one persistent SMTP connection and waits until every relay reached the sink.
Prints messages per second (accepted -> relayed), SMTP acceptance rate, process CPU per
message and peak RSS. PostgreSQL runs with Redis as the broker (both on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.opening import open_case  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from tests.harness import CUSTOMER, Backend, Gateway, Sink, build_mail, settings_for  # noqa: E402


def backend_for(name: str, tmp: Path) -> Backend:
    if name == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp / 'bench.db'}", "memory://")
    import psycopg

    db = f"dg_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')

    def cleanup():
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    return Backend("postgres", f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", "redis://127.0.0.1:6379/14",
                   cleanup)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dg-bench-"))
    backend = backend_for(args.backend, tmp)
    sink = Sink()
    settings = settings_for(tmp, backend, sink.port, max_message_bytes=10_000_000,
                            hygiene={"freeze_after_messages": 10 * args.messages + 100},
                            workers={"threads": args.threads, "lease_seconds": 600, "sweep_interval_seconds": 3600})
    gateway = Gateway(settings, clock=SystemClock(), threads=args.threads)  # a benchmark runs on the real clock
    try:
        address = open_case(gateway, sink, tmp)
        filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 200)[: max(0, args.size - 600)]
        bodies = [build_mail(sender=CUSTOMER, to=address, subject="Re: TX-1001", body=f"Reply {i}\n{filler}")
                  for i in range(args.messages)]
        before = len(sink.received)
        cpu0 = time.process_time()
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
            for body in bodies:
                client.sendmail(CUSTOMER, [address], body)
        accepted = time.perf_counter() - start
        sink.wait_count(before + args.messages, timeout=600)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    finally:
        gateway.stop()
        sink.stop()
        backend.cleanup()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"backend {args.backend}, {args.messages} messages of ~{len(bodies[0])} bytes, {args.threads} worker threads")
    print(f"SMTP accepted (stored and committed): {args.messages / accepted:.1f} msg/s")
    print(f"end to end (accepted -> relayed to the smarthost): {args.messages / elapsed:.1f} msg/s "
          f"({elapsed:.2f} s)")
    print(f"CPU: {1000 * cpu / args.messages:.1f} ms per message (whole process: ingress, workers, sink)")
    print(f"peak RSS: {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
