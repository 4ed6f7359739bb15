"""Time and size of a case export: a delivery case of --messages messages, then
`cases export` (the service the CLI and #export call) and `cases verify-export`.

    .venv/bin/python bench/export.py [--messages 50] [--backend sqlite|postgres] [--runs 3]

The case is built over real SMTP by the in-process gateway (ingress + workers, an aiosmtpd
sink as the smarthost): customer and merchant take turns, every fifth merchant answer
carries a one-page PDF invoice and every tenth customer message a 400 KB photo, as in a
real dispute. Prints the median export time (wall and CPU), the ZIP's size, the number of
files, the transcript's pages and PDF files, and the time verify-export takes.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.opening import open_case  # noqa: E402
from bench.throughput import backend_for  # noqa: E402
from gateway import addresses, store  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from gateway.export import service, verify  # noqa: E402
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, Gateway, Sink, build_mail, settings_for  # noqa: E402


def _invoice(number: int) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 750, f"Invoice F2026-{number:04d} - Shop One - EUR 49.90")
    page.drawString(72, 730, "Shipped with Colissimo, tracking number 6A12345678901")
    page.save()
    return out.getvalue()


def build_case(gateway: Gateway, sink: Sink, tmp: Path, messages: int) -> str:
    customer_address = open_case(gateway, sink, tmp)
    reference = customer_address.split("+", 1)[1].split("-", 1)[0]
    merchant_address = addresses.case_address(reference, "m", domain=DOMAIN, keys=KEYS)
    text = "I am still waiting for my parcel; the tracking page shows no movement since last week. " * 12
    for n in range(1, messages):  # the opening message is the first
        if n % 2:
            files = [("facture.pdf", "application/pdf", _invoice(n))] if n % 10 == 1 else None
            raw = build_mail(sender=MERCHANT, to=merchant_address, subject="Re: your parcel", attachments=files,
                             body=f"Answer {n}: the parcel left with Colissimo, tracking number 6A12345678901.\n{text}")
            gateway.send(raw, to=merchant_address, sender=MERCHANT)
        else:
            files = [(f"photo{n}.jpg", "image/jpeg", os.urandom(400_000))] if n % 10 == 0 else None
            raw = build_mail(sender=CUSTOMER, to=customer_address, subject="Re: your parcel", attachments=files,
                             body=f"Message {n}: {text}")
            gateway.send(raw, to=customer_address, sender=CUSTOMER)
    gateway.settle(timeout=300)
    return reference


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dg-bench-export-"))
    backend = backend_for(args.backend, tmp)
    sink = Sink()
    settings = settings_for(tmp, backend, sink.port, max_message_bytes=10_000_000,
                            hygiene={"freeze_after_messages": 10 * args.messages + 100},
                            export={"directory": str(tmp / "exports")})
    gateway = Gateway(settings, clock=SystemClock())  # a benchmark runs on the real clock
    try:
        reference = build_case(gateway, sink, tmp, args.messages)
        walls, cpus, results = [], [], []
        for _ in range(args.runs):
            cpu0, start = time.process_time(), time.perf_counter()
            with gateway.runtime.database.unit_of_work() as db:
                case = store.case_by_reference(db, reference, lock=True)
                results.append(service.export_case(db, case, settings=settings, now=gateway.clock.now()))
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu0)
            time.sleep(1.1)  # one bundle name per second
        start = time.perf_counter()
        report = verify.verify(results[-1].path)
        verified = time.perf_counter() - start
    finally:
        gateway.stop()
        sink.stop()
        backend.cleanup()
    last = results[-1]
    pdfs = [f for f in last.files if f.startswith("data/transcript") and f.endswith(".pdf")]
    print(f"backend {args.backend}: case of {args.messages} messages received, "
          f"{sum(1 for f in last.files if f.startswith('data/outgoing/'))} sent, {args.runs} exports")
    print(f"export: {statistics.median(walls):.2f} s wall (median; runs {', '.join(f'{w:.2f}' for w in walls)}), "
          f"{statistics.median(cpus):.2f} s CPU")
    print(f"bundle: {last.size / 1e6:.2f} MB, {len(last.files)} files, transcript {last.pages} pages in "
          f"{len(pdfs)} PDF file(s), {last.events} events in the hash chain")
    print(f"verify-export: {verified:.2f} s, {'intact' if report.ok else report.problems}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
