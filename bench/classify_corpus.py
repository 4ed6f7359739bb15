"""Measure how delivery reports, auto-replies and human mail are read, on tests/mail/corpus.

    .venv/bin/python bench/classify_corpus.py [--verbose] [--code DIR] [--write-expected]
        [--sets tuning,heldout,heldout2,heldout3,heldout4,heldout5,heldout6] [--held-out-misses]

Each message goes through the gateway's own path: parse -> classify (the bounce gate) ->
bounce detectors; the envelope sender is taken from the Return-Path header (samples are
stored without their envelope). Reported, separately for the tuning corpus and for each
held-out corpus (tests/mail/corpus/heldout/ from the first two passes, heldout2/ from the
third, heldout3/ from the fourth, heldout4/ from the fifth, heldout5/ from the sixth,
heldout6/ from the seventh; all kept out of tuning: while tuning, run with `--sets tuning`):

- reports read with the right verdict (dead address / trouble / refused message / delay
  warning / not a failure) and the right reason (Sisimai's reason names);
- failed recipients named exactly; permanent/temporary agreement with the reference;
- false bounces: human mail, auto-replies, feedback and success reports taken for failures;
- a table per MTA.

The expected values are in tests/mail/corpus/reports.tsv: Sisimai's reading of every
file (`--write-expected` regenerates it where libsisimai-perl is installed), with the
recipient lists of flufl.bounce's own test table for its samples. Where Sisimai is
installed the benchmark also runs it live on the same files and reports the agreement.

`--code DIR` imports the gateway from another checkout (e.g. /work/main) to measure it
with the same corpus and rules; a version without reasons is read by its failure kinds.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "mail" / "corpus"
EXPECTED = CORPUS / "reports.tsv"
REPORT_FOLDERS = ("bounces", "delayed", "not_bounces", "reports", "heldout", "heldout2", "heldout3",
                  "heldout4", "heldout5", "heldout6")
# folder -> set name in reports.tsv; held-out sets are never used to tune the detectors
HELD_OUT_SETS = {"heldout/": "heldout", "heldout2/": "heldout2", "heldout3/": "heldout3",
                 "heldout4/": "heldout4", "heldout5/": "heldout5",
                 "heldout6/": "heldout6"}
SET_TITLES = (("tuning", "Tuning corpus"),
              ("heldout", "Held-out corpus of the first two passes (kept out of tuning)"),
              ("heldout2", "Held-out corpus of the third pass (kept out of tuning)"),
              ("heldout3", "Held-out corpus of the fourth pass (kept out of tuning)"),
              ("heldout4", "Held-out corpus of the fifth pass (kept out of tuning)"),
              ("heldout5", "Held-out corpus of the sixth pass (kept out of tuning)"),
              ("heldout6", "Held-out corpus of the seventh pass (kept out of tuning)"))
# Sisimai 4.25 has no authfailure (Sisimai 5's name for SPF/DKIM/DMARC) and files those
# under securityerror or blocked; exceedlimit and mesgtoobig are both "too large";
# onhold is Sisimai's "could not decide".
SAME_REASON = {"authfailure": {"securityerror", "blocked"}, "exceedlimit": {"mesgtoobig"},
               "mesgtoobig": {"exceedlimit"}, "undefined": {"onhold"}}
DEAD = {"userunknown", "hostunknown", "hasmoved", "notaccept"}
MESSAGE = {"mesgtoobig", "exceedlimit", "spamdetected", "virusdetected", "contenterror"}
REPORTS = {"delivered", "expanded", "feedback", "vacation", "challenge"}


@dataclass
class Row:
    path: str  # relative to the corpus folder
    set: str  # tuning | heldout | heldout2 | heldout3 | heldout4 | heldout5 | heldout6
    verdict: str  # dead | trouble | message | delayed | report | failed | none
    reason: str  # Sisimai reason or '-'
    recipients: set[str]
    mta: str


@dataclass
class Ours:
    classification: str
    verdict: str  # as Row.verdict
    reasons: list[str]
    recipients: set[str]
    permanent: bool


@dataclass
class Tally:
    reports: int = 0
    verdict_ok: int = 0
    with_reason: int = 0
    reason_ok: int = 0
    dead_ref: int = 0
    dead_ok: int = 0
    soft_ref: int = 0
    soft_ok: int = 0
    with_recipients: int = 0
    recipients_ok: int = 0
    permanence: int = 0
    permanence_ok: int = 0
    soft_called_permanent: int = 0
    soft_total: int = 0
    not_failures: int = 0  # feedback and success reports (the reference reads one, not a failure)
    not_failures_as_bounces: int = 0
    unread: int = 0  # files the expected values call no report at all (Sisimai reads none, or flufl's table)
    unread_as_bounces: int = 0
    misses: list[str] = field(default_factory=list)


def expected_verdict(reason: str, soft: int | None, action: str) -> str:
    if reason in REPORTS:
        return "report"
    if action == "delayed":
        return "delayed"
    if reason in DEAD:
        return "dead" if soft == 0 else "trouble"
    if reason in MESSAGE:
        return "message"
    return "trouble"


def load_expected() -> dict[str, Row]:
    rows = {}
    for line in EXPECTED.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, held, verdict, reason, recipients, mta, *_ = line.split("\t")
        rows[path] = Row(path, held, verdict, reason, {r for r in recipients.split(",") if r}, mta)
    return rows


def legacy_kind(kind: str, failed: bool) -> str:
    """A version without reasons: its failure kinds mapped onto the verdicts they cause."""
    return {"hard": "dead", "spam": "dead", "soft": "trouble", "delayed": "delayed"}.get(kind, "trouble")


def envelope_sender(raw: bytes) -> str:
    for line in raw.replace(b"\r", b"\n").split(b"\n", 80):
        if line.lower().startswith(b"return-path:"):
            value = line.split(b":", 1)[1].strip().decode("latin-1")
            return "<>" if value in ("<>", "") else value.strip("<>")
    return "unknown@sender.invalid"


class Reader:
    """The gateway's path from raw bytes to (classification, verdict)."""

    def __init__(self, analyser=None) -> None:
        self.analyser = analyser
        self.bounces = importlib.import_module("gateway.mail.bounces")
        self.classify = importlib.import_module("gateway.mail.classify")
        self.parse = importlib.import_module("gateway.mail.parse").parse

    def read(self, raw: bytes) -> Ours:
        classify = self.classify
        kind = classify.classify(self.parse(raw), classify.Signals(mail_from=envelope_sender(raw),
                                                                   keys=("bench-key-0000000000",)))
        if self.analyser is None:
            kind, verdict = self.bounces.confirm(kind, raw)
        else:
            kind, verdict = self.bounces.confirm(kind, raw, analyser=self.analyser)
        if kind.kind is not classify.Kind.BOUNCE:
            if kind.kind is classify.Kind.AUTO_REPLY:  # the gate's auto-reply is Sisimai's "vacation"
                return Ours(kind.kind.value, "report", ["vacation"], set(), False)
            return Ours(kind.kind.value, "none", [], set(), False)
        entries = list(verdict.failures) if verdict else []
        if not entries:
            return Ours("bounce", "none", [], set(), False)
        if hasattr(entries[0], "reason"):
            failed = [f for f in entries if f.kind.failed]
            main = (failed or entries)[0]
            return Ours("bounce", main.kind.value, [f.reason.value for f in entries],
                        {f.recipient for f in failed or entries if f.recipient},
                        main.kind.value == "dead")  # the main entry, as the verdict and reason
        verdicts = [legacy_kind(f.kind.value, True) for f in entries]
        main = next((v for v in verdicts if v != "delayed"), verdicts[0])
        return Ours("bounce", main, [], {f.recipient for f in entries}, "dead" in verdicts)


def same_reason(ours: str, theirs: str) -> bool:
    return ours == theirs or theirs in SAME_REASON.get(ours, ())


def score(rows: list[Row], reader: Reader, tally: Tally, per_mta: dict, show) -> None:
    for row in rows:
        ours = reader.read((CORPUS / row.path).read_bytes())
        if row.verdict in ("none", "report"):
            read_as_failure = ours.verdict in ("dead", "trouble", "message")
            if row.verdict == "report":
                tally.not_failures += 1
                tally.not_failures_as_bounces += read_as_failure
            else:
                tally.unread += 1
                tally.unread_as_bounces += read_as_failure
            if read_as_failure:
                tally.misses.append(f"{row.path}: not a failure ({row.reason}), read as {ours.verdict} {ours.reasons}")
            if row.verdict == "none":
                continue
        tally.reports += 1
        mta = per_mta[row.mta]
        mta["n"] += 1
        verdict_ok = ours.verdict == row.verdict or (row.verdict == "failed" and ours.verdict in
                                                      ("dead", "trouble", "message"))
        tally.verdict_ok += verdict_ok
        mta["verdict"] += verdict_ok
        if row.reason != "-":
            tally.with_reason += 1
            if row.verdict == "delayed":  # Sisimai names the cause of a delay; ours says "delayed"
                ok = ours.verdict == "delayed"
            else:
                ok = any(same_reason(r, row.reason) for r in ours.reasons[:1])
            tally.reason_ok += ok
            mta["reason"] += ok
            if row.verdict == "dead":
                tally.dead_ref += 1
                tally.dead_ok += ok
            elif row.verdict in ("trouble", "message", "delayed"):
                tally.soft_ref += 1
                tally.soft_ok += ok
            if not ok:
                tally.misses.append(f"{row.path}: reason {ours.reasons[:1] or ours.verdict} want {row.reason}")
        else:
            mta["reason"] += verdict_ok
        if row.verdict in ("dead", "trouble", "message", "delayed", "failed"):
            if row.verdict != "failed":
                tally.permanence += 1
                agree = (row.verdict == "dead") == ours.permanent
                tally.permanence_ok += agree
                tally.soft_called_permanent += (row.verdict != "dead" and ours.permanent)
                tally.soft_total += row.verdict != "dead"
            if row.recipients:
                tally.with_recipients += 1
                ok = row.recipients <= ours.recipients
                tally.recipients_ok += ok
                mta["recipients"] += ok
                if not ok:
                    tally.misses.append(f"{row.path}: recipients {sorted(ours.recipients)} want {sorted(row.recipients)}")
            else:
                mta["recipients"] += 1
        if not verdict_ok:
            tally.misses.append(f"{row.path}: verdict {ours.verdict} {ours.reasons[:1]} want {row.verdict} {row.reason}")
        show(f"{row.path}: ours {ours.verdict} {ours.reasons[:2]} {sorted(ours.recipients)[:2]} / want "
             f"{row.verdict} {row.reason} {sorted(row.recipients)[:2]}")


def pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def print_tally(title: str, tally: Tally, per_mta: dict, *, verbose: bool) -> None:
    print(f"\n## {title}")
    print(f"reports read with the right verdict:    {pct(tally.verdict_ok, tally.reports)}")
    print(f"reason as the reference (Sisimai):      {pct(tally.reason_ok, tally.with_reason)}")
    print(f"  on dead addresses:                    {pct(tally.dead_ok, tally.dead_ref)}")
    print(f"  on temporary/soft failures:           {pct(tally.soft_ok, tally.soft_ref)}")
    print(f"failed recipients named exactly:        {pct(tally.recipients_ok, tally.with_recipients)}")
    print(f"permanent/temporary as the reference:   {pct(tally.permanence_ok, tally.permanence)}")
    print(f"temporary/soft failures called dead:    {pct(tally.soft_called_permanent, tally.soft_total)}")
    print(f"feedback/success reports as bounces:    {pct(tally.not_failures_as_bounces, tally.not_failures)}")
    print(f"no report by the expected values, read as a failure: {pct(tally.unread_as_bounces, tally.unread)}")
    print("\n| MTA (Sisimai's name) | reports | verdict | reason | recipient |\n|---|---|---|---|---|")
    for mta, counts in sorted(per_mta.items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        print(f"| {mta} | {counts['n']} | {counts['verdict']} | {counts['reason']} | {counts['recipients']} |")
    if verbose:
        for miss in tally.misses:
            print("  miss:", miss)


def false_positives(reader: Reader, show) -> tuple[int, int, int, int]:
    human = sorted((CORPUS / "human").glob("*.eml"))
    human_fp, other = 0, 0
    for path in human:
        ours = reader.read(path.read_bytes())
        if ours.classification == "bounce" or ours.verdict in ("dead", "trouble", "message", "delayed"):
            human_fp += 1
            show(f"human mail taken for a bounce: {path.name} ({ours.classification} {ours.verdict})")
        elif ours.classification != "human":
            other += 1
            show(f"human mail read as {ours.classification} (not a bounce): {path.name}")
    print(f"\nhuman messages read as list/bulk/auto mail (not bounces): {pct(other, len(human))}")
    auto = [line.split("\t") for line in (CORPUS / "autoreplies" / "expected.tsv").read_text().splitlines() if line]
    auto_bounce = 0
    for name, expected, *_ in auto:
        ours = reader.read((CORPUS / "autoreplies" / name).read_bytes())
        if expected == "yes" and ours.verdict in ("dead", "trouble", "message"):
            auto_bounce += 1
            show(f"auto-reply read as a failure: {name} ({ours.verdict})")
    return human_fp, len(human), auto_bounce, sum(1 for r in auto if r[1] == "yes")


def live_sisimai(rows: list[Row], reader: Reader) -> None:
    sys.path.insert(0, str(HERE))
    import sisimai_reference

    if not sisimai_reference.available():
        print("\nSisimai (libsisimai-perl) is not installed: live comparison skipped.")
        return
    paths = [CORPUS / r.path for r in rows]
    started = time.perf_counter()
    theirs = sisimai_reference.analyse(paths)
    sisimai_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = {str(CORPUS / r.path): reader.read((CORPUS / r.path).read_bytes()) for r in rows}
    our_seconds = time.perf_counter() - started
    both = agree = dead_both = dead_agree = 0
    for path, entries in theirs.items():
        entries = [e for e in entries if e["reason"] not in ("vacation",)]
        if not entries or not ours[path].reasons:
            continue
        both += 1
        ok = same_reason(ours[path].reasons[0], entries[0]["reason"])
        agree += ok
        if entries[0]["reason"] in DEAD and entries[0]["soft"] == 0:
            dead_both += 1
            dead_agree += ok
    print(f"\n## Live comparison with Sisimai {sisimai_reference.version()} on the same {len(rows)} files")
    print(f"same reason where both read a report:   {pct(agree, both)} (dead addresses: {pct(dead_agree, dead_both)})")
    print(f"time for all files: Sisimai {sisimai_seconds * 1000:.0f} ms in one perl process; "
          f"ours {our_seconds * 1000:.0f} ms ({1000 * our_seconds / max(1, len(rows)):.2f} ms per file)")


def write_expected() -> None:
    sys.path.insert(0, str(HERE))
    import sisimai_reference

    flufl = {}
    for folder in ("bounces", "delayed", "not_bounces"):
        for line in (CORPUS / folder / "expected.tsv").read_text().splitlines():
            if line.strip():
                name, kind, addresses, *_ = line.split("\t")
                flufl[f"{folder}/{name}"] = (kind, {a for a in addresses.split(",") if a})
    paths = sorted(p for folder in REPORT_FOLDERS for p in (CORPUS / folder).glob("*.eml"))
    theirs = sisimai_reference.analyse(paths)
    lines = ["# path\tset\tverdict\treason\trecipients\tmta\tsource of the expected values"]
    for path in paths:
        rel = str(path.relative_to(CORPUS))
        entries = theirs.get(str(path), [])
        kind, recipients = flufl.get(rel, (None, None))
        if entries:
            first = entries[0]
            verdict = expected_verdict(first["reason"], first["soft"], first["action"])
            reason, mta = first["reason"], first["lhost"] or "-"
            source = "sisimai"
            if recipients is None:
                recipients = {e["recipient"] for e in entries if e["recipient"]}
            else:
                source = "sisimai; recipients: flufl.bounce table"
            if kind == "none" and verdict != "report":
                verdict, reason, source = "none", "-", "flufl.bounce table: not a bounce (Sisimai reads one)"
        else:
            verdict = {"hard": "failed", "soft": "delayed", "none": "none"}.get(kind or "", "none")
            reason, mta, source = "-", "-", "flufl.bounce table (Sisimai reads nothing)"
        held = next((name for prefix, name in HELD_OUT_SETS.items() if rel.startswith(prefix)), "tuning")
        lines.append("\t".join([rel, held, verdict, reason, ",".join(sorted(recipients or ())), mta, source]))
    EXPECTED.write_text("\n".join(lines) + "\n")
    print(f"wrote {EXPECTED} ({len(paths)} files)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--code", default=str(HERE.parent), help="checkout whose gateway package is measured")
    parser.add_argument("--write-expected", action="store_true")
    parser.add_argument("--sets", default="tuning,heldout,heldout2,heldout3,heldout4,heldout5,heldout6",
                        help="comma-separated sets to measure (tuning, heldout, heldout2, heldout3, heldout4, heldout5, heldout6)")
    parser.add_argument("--held-out-misses", action="store_true",
                        help="with --verbose, list the held-out misses too (for the final report, not for tuning)")
    parser.add_argument("--analyser", default="none", choices=("none", "sisimai"),
                        help="read reports as [bounces] analyser = this: our detectors alone, or joined with Sisimai's")
    args = parser.parse_args()
    if args.write_expected:
        write_expected()
        return 0
    sys.path.insert(0, str(Path(args.code).resolve()))
    analyser = None
    if args.analyser == "sisimai":
        analyser = importlib.import_module("gateway.sisimai").Sisimai()
        print("reports read by our detectors joined with Sisimai's reading ([bounces] analyser = \"sisimai\")")
    reader = Reader(analyser)
    show = print if args.verbose else (lambda *a: None)
    rows = list(load_expected().values())
    wanted = set(args.sets.split(","))
    rows = [r for r in rows if r.set in wanted]
    for name, title in SET_TITLES:
        chosen = [r for r in rows if r.set == name]
        if not chosen:
            continue
        tally, per_mta = Tally(), defaultdict(lambda: defaultdict(int))
        score(chosen, reader, tally, per_mta, show if name == "tuning" else (lambda *a: None))
        print_tally(title, tally, per_mta, verbose=args.verbose and (name == "tuning" or args.held_out_misses))
    human_fp, human, auto_fp, auto = false_positives(reader, show)
    print(f"\nhuman messages taken for bounces:       {pct(human_fp, human)}")
    print(f"auto-replies taken for failures:        {pct(auto_fp, auto)}")
    live_sisimai(rows, reader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
