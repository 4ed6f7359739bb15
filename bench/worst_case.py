"""Worst-case inputs per stage: how much CPU one hostile message costs each stage of the
pipeline (parse, HTML to text, reply trimming, sanitising, composing a relay, bounce
detection), and which input is the slowest for each.

    .venv/bin/python bench/worst_case.py [--scale 1.0] [--only NAME] [--budget 1.0]

The inputs are those an attacker can send without authenticating: a long HTML body of
`</`, a Subject of many encoded words, one long inline style, a hundred thousand distinct
headers, MIME nested a thousand deep, very long lines, thousands of parts, and more.
`--scale` shrinks or grows them (1.0 is the size that was seen to stall intake). Each stage
runs once per input in this process; CPU seconds are per input and stage. A stage over
`--budget` seconds is marked SLOW, and the exit code is 1 when any is.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEAD = (b"From: stranger@evil.test\r\nTo: delivery@disputes.test\r\nMessage-ID: <w@evil.test>\r\n"
        b"Date: Thu, 26 Nov 2026 10:00:00 +0100\r\n")


def _simple(subject: bytes = b"TX-1001", extra_headers: bytes = b"", content_type: bytes = b"text/plain",
            body: bytes = b"hello\r\n") -> bytes:
    return (HEAD + b"Subject: " + subject + b"\r\n" + extra_headers + b"MIME-Version: 1.0\r\nContent-Type: "
            + content_type + b"; charset=utf-8\r\n\r\n" + body)


def html_close_tags(scale: float) -> bytes:
    return _simple(content_type=b"text/html", body=b"</" * int(2_050_000 * scale))


def html_open_tags(scale: float) -> bytes:
    return _simple(content_type=b"text/html", body=b"<div>" * int(400_000 * scale))


def html_comment_starts(scale: float) -> bytes:
    return _simple(content_type=b"text/html", body=b"<!--" * int(1_000_000 * scale))


def html_unclosed_attribute(scale: float) -> bytes:
    return _simple(content_type=b"text/html", body=b'<a href="' + b"x" * int(4_000_000 * scale))


def encoded_word_subject(scale: float) -> bytes:
    words = b" ".join([b"=?utf-8?q?caf=C3=A9?="] * int(95_000 * scale))
    return _simple(subject=words)


def encoded_word_from_name(scale: float) -> bytes:
    words = b" ".join([b"=?utf-8?b?w6k=?="] * int(60_000 * scale))
    return (b"From: " + words + b" <stranger@evil.test>\r\nTo: delivery@disputes.test\r\nSubject: x\r\n\r\nhi\r\n")


def long_inline_style(scale: float) -> bytes:
    style = b"color:" + b"a" * int(137_000 * scale)
    return _simple(content_type=b"text/html", body=b'<p style="' + style + b'">hello</p>')


def many_css_urls(scale: float) -> bytes:
    style = b"background:" + b"url(" * int(30_000 * scale)
    return _simple(content_type=b"text/html", body=b'<p style="' + style + b'">hello</p>')


def many_style_declarations(scale: float) -> bytes:
    style = b"color:red;" * int(100_000 * scale)
    return _simple(content_type=b"text/html", body=b'<p style="' + style + b'">hello</p>')


def many_headers(scale: float) -> bytes:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(int(100_000 * scale)))
    return _simple(extra_headers=headers)


def one_long_header(scale: float) -> bytes:
    return _simple(extra_headers=b"X-Long: " + b"a" * int(2_000_000 * scale) + b"\r\n")


def folded_header(scale: float) -> bytes:
    return _simple(extra_headers=b"X-Folded: a" + b"\r\n b" * int(300_000 * scale) + b"\r\n")


def many_references(scale: float) -> bytes:
    refs = b" ".join(b"<r%d@evil.test>" % n for n in range(int(60_000 * scale)))
    return _simple(extra_headers=b"References: " + refs + b"\r\nIn-Reply-To: " + refs[:200] + b"\r\n")


def many_recipients_header(scale: float) -> bytes:
    to = b", ".join(b"u%d@evil.test" % n for n in range(int(60_000 * scale)))
    return _simple(extra_headers=b"Cc: " + to + b"\r\n")


def nested_multipart(scale: float) -> bytes:
    depth = int(1000 * scale)
    parts = [HEAD + b"Subject: nested\r\nMIME-Version: 1.0\r\n"]
    for level in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level))
    parts.append(b"Content-Type: text/plain\r\n\r\ndeep\r\n")
    for level in reversed(range(depth)):
        parts.append(b"--b%d--\r\n" % level)
    return b"".join(parts)


def nested_rfc822(scale: float) -> bytes:
    depth = int(500 * scale)
    raw = b"Subject: inner\r\n\r\nthe bottom\r\n"
    for _ in range(depth):
        raw = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return HEAD + raw


def many_parts(scale: float) -> bytes:
    count = int(20_000 * scale)
    body = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(count)) + b"--b--\r\n"
    return (HEAD + b'Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + body)


def many_attachments(scale: float) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "stranger@evil.test", "delivery@disputes.test", "files"
    message.set_content("see attached")
    for n in range(int(2_000 * scale)):
        message.add_attachment(b"x" * 10, maintype="application", subtype="octet-stream", filename=f"f{n}.bin")
    return message.as_bytes(policy=SMTP)


def long_line_text(scale: float) -> bytes:
    return _simple(body=b"TX-1001 " + b"a" * int(8_000_000 * scale) + b"\r\n")


def many_quote_lines(scale: float) -> bytes:
    body = b"Hello\r\n" + b"> quoted line\r\nnew text\r\n" * int(150_000 * scale)
    return _simple(body=body)


def attribution_lines(scale: float) -> bytes:
    body = b"".join(b"On Mon, 1 Jan 2026 at 10:00, someone wrote:\r\nanswer\r\n" for _ in range(int(60_000 * scale)))
    return _simple(body=body)


def long_reply_line(scale: float) -> bytes:
    return _simple(body=b"Le " + b"x " * int(1_500_000 * scale) + b"\r\n")


def base64_garbage(scale: float) -> bytes:
    payload = base64.encodebytes(b"\x00\xff" * int(1_000_000 * scale))
    return _simple(extra_headers=b"Content-Transfer-Encoding: base64\r\n", content_type=b"text/html", body=payload)


def report_with_many_recipients(scale: float) -> bytes:
    blocks = b"".join(b"Final-Recipient: rfc822; u%d@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" % n
                      for n in range(int(20_000 * scale)))
    return (b"From: MAILER-DAEMON@mx.test\r\nTo: bounce@disputes.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n--r\r\n'
            b"Content-Type: text/plain\r\n\r\nfailed\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.test\r\n\r\n" + blocks + b"--r--\r\n")


def control_characters(scale: float) -> bytes:
    return _simple(subject=b"TX-1001 \x00\x01\x1b[31m bad" * int(10_000 * scale))


def scrub_near_misses(scale: float) -> bytes:
    """Almost the customer's address, a million times: the scrubber's search must stay linear."""
    return _simple(body=b"carol@customer.tes carol@customer.tesx " * int(100_000 * scale))


def scrub_invisible_runs(scale: float) -> bytes:
    """Case-address prefixes followed by long runs of zero-width spaces, in HTML."""
    run = "case+" + "\u200b" * 2000 + "x "
    return _simple(content_type=b"text/html", body=("<p>" + run * int(800 * scale) + "</p>").encode())


def scrub_tags_between_letters(scale: float) -> bytes:
    """An address prefix with an empty tag after every letter, over and over."""
    return _simple(content_type=b"text/html",
                   body=b"c<b></b>a<b></b>r<b></b>o<b></b>l<b></b> " * int(100_000 * scale))


def calendar_many_addresses(scale: float) -> bytes:
    """An invitation with a hundred thousand attendees, each a hidden address to rewrite."""
    lines = b"ATTENDEE;CN=Carol:mailto:carol@customer.test\r\n" * int(100_000 * scale)
    return _simple(content_type=b"text/calendar",
                   body=b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + lines + b"END:VEVENT\r\nEND:VCALENDAR\r\n")


def many_content_ids(scale: float) -> bytes:
    """Thousands of inline parts with Content-IDs an HTML body refers to."""
    count = int(2_000 * scale)
    html = b"".join(b'<img src="cid:i%d@shop.test">' % n for n in range(count))
    parts = b"".join(b"--b\r\nContent-Type: image/png\r\nContent-ID: <i%d@shop.test>\r\n"
                     b"Content-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n" % n for n in range(count))
    return (HEAD + b'Subject: cids\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/html\r\n\r\n" + html + b"\r\n" + parts + b"--b--\r\n")


INPUTS: dict[str, Callable[[float], bytes]] = {
    name: fn for name, fn in globals().items()
    if callable(fn) and getattr(fn, "__module__", "") == __name__ and not name.startswith("_")
    and name not in ("main", "stages", "measure")
}


def stages() -> dict[str, Callable[[bytes], object]]:
    """name -> a function of the raw bytes running that stage as the pipeline does."""
    from gateway.mail import bounces
    from gateway.mail.classify import Signals, classify
    from gateway.mail.compose import Envelope, compose_relay
    from gateway.mail.hygiene import relay_transform
    from gateway.mail.attachments import AttachmentPolicy
    from gateway.mail.parse import parse
    from gateway.mail.sanitize import sanitize_html
    from gateway.mail.text import html_to_text, new_text
    from datetime import datetime, timezone

    parsed_cache: dict[int, object] = {}

    def parsed(raw: bytes):
        key = id(raw)
        if key not in parsed_cache:
            parsed_cache.clear()
            parsed_cache[key] = parse(raw)
        return parsed_cache[key]

    from gateway.mail.scrub import AddressScrubber

    def relay(raw: bytes):  # as Mailer.relay builds it: the case's addresses hidden
        scrubber = AddressScrubber.build(["carol@customer.test", "support@shop.test", "staff@ops.test"],
                                         domain="disputes.test", case_reference="x", own_address="case+x-m-y@disputes.test",
                                         locale="en")
        transform, _ = relay_transform(policy=AttachmentPolicy(), block_remote_images=True, locale="en",
                                       scrubber=scrubber)
        envelope = Envelope(from_name="Stranger (customer) via Disputes", from_address="case+x-m-y@disputes.test",
                            to_address="support@shop.test", to_name="Shop", subject="[Case X] subject",
                            message_id="<m@disputes.test>", date=datetime(2026, 1, 1, tzinfo=timezone.utc))
        return compose_relay(raw, envelope, key="k" * 32, transform=transform)

    return {
        "pipeline": _pipeline_stage(),
        "parse": parse,
        "html_to_text": lambda raw: html_to_text(parsed(raw).html or ""),
        "new_text": lambda raw: new_text(parsed(raw).text),
        "sanitize": lambda raw: sanitize_html(parsed(raw).html or "", block_remote_images=True),
        "classify": lambda raw: classify(parsed(raw), Signals(mail_from="", keys=("k" * 32,))),
        "bounces": bounces.detect,
        "relay": relay,
    }


def _pipeline_stage() -> Callable[[bytes], object]:
    """The whole of `process_inbound` on the input, sent by the customer to her case address
    of an open delivery case (the relay path: parse, classify, sender check, sanitise and
    compose for the merchant), on a scratch SQLite database."""
    import tempfile
    from datetime import datetime, timezone

    from gateway import addresses, db as dbmod, importer, pipeline, store
    from gateway.mail.templating import Renderer
    from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANTS_CSV, build_mail, settings_for, transactions_csv
    from tests.harness import Backend

    folder = Path(tempfile.mkdtemp(prefix="dg-worst-"))
    url = f"sqlite:///{folder / 'worst.db'}"
    settings = settings_for(folder, Backend("sqlite", url, "memory://"), None)
    dbmod.upgrade(url)
    database = dbmod.Database(url)
    renderer = Renderer(settings.gateway.templates_dir)
    now = datetime.now(timezone.utc)
    (folder / "m.csv").write_text(MERCHANTS_CSV)
    (folder / "t.csv").write_text(transactions_csv(now))
    with database.unit_of_work() as db:
        importer.import_merchants(db, folder / "m.csv", now=now)
        importer.import_transactions(db, folder / "t.csv", now=now)

    def process(raw: bytes, rcpt: str) -> None:
        with database.unit_of_work() as db:
            inbound_id, _ = store.save_inbound(db, raw=raw, mail_from=CUSTOMER, rcpt_tos=[rcpt], source="smtp",
                                               now=now, lease_seconds=60)
        with database.unit_of_work() as db:
            pipeline.process_inbound(db, inbound_id, settings=settings, renderer=renderer, now=now)

    process(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 lost", body="TX-1001 lost"),
            f"delivery@{DOMAIN}")
    with database.unit_of_work() as db:
        from gateway.models import Case
        from sqlalchemy import select

        reference = db.scalar(select(Case.reference))
    case_address = addresses.case_address(reference, "c", domain=DOMAIN, keys=KEYS)
    counter = iter(range(10**9))

    def run(raw: bytes) -> None:
        raw = raw.replace(b"stranger@evil.test", CUSTOMER.encode()).replace(b"<w@evil.test>",
                                                                          b"<w%d@x.test>" % next(counter))
        process(raw, case_address)

    return run


def measure(fn: Callable[[bytes], object], raw: bytes) -> tuple[float, str]:
    start = time.process_time()
    try:
        fn(raw)
        outcome = "ok"
    except RecursionError:
        outcome = "RecursionError"
    except Exception as error:  # the pipeline would quarantine it: still a defined answer
        outcome = type(error).__name__
    return time.process_time() - start, outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", action="append", help="input name (repeatable)")
    parser.add_argument("--stage", action="append", help="stage name (repeatable)")
    parser.add_argument("--budget", type=float, default=1.0, help="CPU seconds one stage may take per input")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    run_stages = {k: v for k, v in stages().items() if not args.stage or k in args.stage}
    names = args.only or list(INPUTS)
    slow = 0
    worst: dict[str, tuple[float, str]] = {}
    print(f"{'input':30} {'size':>10}  " + "  ".join(f"{s:>13}" for s in run_stages))
    for name in names:
        raw = INPUTS[name](args.scale)
        cells = []
        for stage, fn in run_stages.items():
            seconds, outcome = measure(fn, raw)
            if seconds > worst.get(stage, (-1.0, ""))[0]:
                worst[stage] = (seconds, name)
            mark = "SLOW" if seconds > args.budget else ""
            slow += bool(mark)
            cell = f"{seconds:7.3f}s" + (f" {outcome[:5]}" if outcome != "ok" else "") + (f" {mark}" if mark else "")
            cells.append(f"{cell:>13}")
        print(f"{name:30} {len(raw):>10}  " + "  ".join(cells), flush=True)
    print("\nslowest input per stage:")
    for stage, (seconds, name) in worst.items():
        print(f"  {stage:14} {seconds:7.3f}s  {name}")
    print(f"\n{slow} stage run(s) over the {args.budget:.1f} s budget")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
