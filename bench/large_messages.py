"""Peak memory while worker threads process several large messages at once.

    .venv/bin/python bench/large_messages.py [--messages 4] [--mb 20] [--threads 4] [--at-once 1]

`--mb 18` makes a message of about 25 MB (photos are base64 on the wire: a third larger).

Starts the gateway in-process (SQLite, in-memory broker, 4 worker threads) with a real
aiosmtpd sink as the smarthost, opens one case, queues --messages customer replies of
about --mb MB each (photos as attachments) while the workers are stopped, then starts the
workers so they all pick the messages up together, and waits until every relay reached
the sink (which counts them and keeps no copy). Prints the wall time and the process's peak RSS. Compare `--at-once 1` (the
default of [workers] large_messages_at_once) with `--at-once 4` (no bound).
"""

from __future__ import annotations

import argparse
import os
import resource
import smtplib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.opening import open_case  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from tests.harness import CUSTOMER, Backend, Gateway, Received, Sink, build_mail, settings_for  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--mb", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--at-once", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dg-bench-large-"))
    backend = Backend("sqlite", f"sqlite:///{tmp / 'bench.db'}", "memory://")
    sink = Sink()
    settings = settings_for(tmp, backend, sink.port, max_message_bytes=32 * 1024 * 1024,
                            workers={"threads": args.threads, "lease_seconds": 600, "sweep_interval_seconds": 3600,
                                     "large_messages_at_once": args.at_once})
    gateway = Gateway(settings, clock=SystemClock(), threads=args.threads)  # a benchmark runs on the real clock
    try:
        address = open_case(gateway, sink, tmp)
        gateway.worker.stop()  # queue everything first, so the threads start on them together

        async def count_only(server, session, envelope):  # the smarthost keeps no copy in this process
            with sink.handler.lock:
                sink.handler.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), b""))
            return "250 OK queued"

        sink.handler.handle_DATA = count_only
        photos = [(f"photo{i}.jpg", "image/jpeg", os.urandom(args.mb * 1024 * 1024 // 5)) for i in range(5)]
        before = len(sink.received)
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=120) as client:
            for i in range(args.messages):
                raw = build_mail(sender=CUSTOMER, to=address, subject="Re: TX-1001", body=f"Photos {i}",
                                 attachments=photos)
                size = len(raw)
                client.sendmail(CUSTOMER, [address], raw)
                del raw
        del photos
        baseline = rss_mib()
        start = time.perf_counter()
        gateway.worker = gateway.runtime.start_worker(args.threads)
        sink.wait_count(before + args.messages, timeout=900)
        elapsed = time.perf_counter() - start
        peak = rss_mib()
    finally:
        gateway.stop()
        sink.stop()
    print(f"{args.messages} messages of {size / 1e6:.1f} MB ({args.mb} MiB of photos, base64), {args.threads} worker threads, "
          f"large_messages_at_once = {args.at_once}")
    print(f"processed and relayed in {elapsed:.1f} s")
    print(f"peak RSS: {peak:.0f} MiB (after the messages were received: {baseline:.0f} MiB; "
          f"growth while processing: {peak - baseline:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
