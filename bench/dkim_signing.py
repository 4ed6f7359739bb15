"""DKIM signing cost per outgoing message (gateway/mail/dkim.py, dkimpy), for a 4 KB
notice, a 100 KB relay and a 25 MB message, with one key and with two (a rotation).

    .venv/bin/python -m bench.dkim_signing [--runs N]

Prints a table of the median milliseconds per message and the MB/s for the body hash.
"""

from __future__ import annotations

import argparse
import statistics
import time
from email.message import EmailMessage
from email.policy import SMTP

from gateway.mail import dkim


def message(size: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "\"Carol (customer) via Disputes\" <case+abcd-c-aaaaaaaaaaaaaaaa@disputes.test>"
    mail["To"] = "support@shop.test"
    mail["Subject"] = "[ABCD] My order never arrived"
    mail["Message-ID"] = "<abc@disputes.test>"
    mail["Date"] = "Thu, 26 Nov 2026 10:00:00 +0100"
    line = "The parcel never came; here is what the tracking page says about it today.\n"
    mail.set_content(line * max(1, size // len(line)))
    return mail.as_bytes(policy=SMTP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    keys = (dkim.SigningKey("dg1", dkim.generate_private_key(), 2048), dkim.SigningKey("dg2", dkim.generate_private_key(), 2048))
    print(f"{'message':>10}  {'keys':>4}  {'ms/message':>10}  {'MB/s':>7}")
    for label, size in (("4 KB", 4_000), ("100 KB", 100_000), ("25 MB", 25_000_000)):
        raw = message(size)
        for count in (1, 2):
            signer = dkim.DkimSigner("disputes.test", keys[:count])
            runs = args.runs if size < 1_000_000 else 3
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                signer.sign(raw)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            print(f"{label:>10}  {count:>4}  {median * 1000:10.1f}  {len(raw) / median / 1e6:7.1f}")


if __name__ == "__main__":
    main()
