"""Measure bounce and auto-reply classification on the real-world corpus in tests/mail/corpus.

    .venv/bin/python bench/classify_corpus.py [--verbose]

Prints, for bounces: detection rate (classified as a bounce with at least one failure),
exact-address rate (the expected failed address is among those found) and kind accuracy;
for auto-replies: detection rate; and false positives on ordinary human mail and on the
non-bounce samples. Each message goes through the same path as in the gateway: parse ->
classify (the bounce gate) -> bounce detectors. The envelope sender is taken from the
Return-Path header when the sample has one (samples are stored without their envelope).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.mail.bounces import confirm  # noqa: E402
from gateway.mail.classify import Kind, Signals, classify  # noqa: E402
from gateway.mail.parse import parse  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "mail" / "corpus"


def envelope_sender(raw: bytes) -> str:
    for line in raw.split(b"\n", 60):
        if line.lower().startswith(b"return-path:"):
            value = line.split(b":", 1)[1].strip().decode("latin-1")
            return "<>" if value in ("<>", "") else value.strip("<>")
    return "unknown@sender.invalid"


def classify_file(path: Path):
    raw = path.read_bytes()
    kind = classify(parse(raw), Signals(mail_from=envelope_sender(raw), keys=("bench-key-0000000000",)))
    kind, verdict = confirm(kind, raw)
    return kind, (verdict if kind.kind is Kind.BOUNCE else None)


def rows(name: str) -> list[list[str]]:
    path = CORPUS / name / "expected.tsv"
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    show = print if args.verbose else (lambda *a: None)

    bounces = rows("bounces")
    detected = exact = kind_ok = with_address = 0
    for name, kind, addresses, *_ in bounces:
        classification, verdict = classify_file(CORPUS / "bounces" / name)
        want = {a for a in addresses.split(",") if a}
        found = {f.recipient for f in verdict.failures} if verdict else set()
        if verdict:
            detected += 1
        else:
            show(f"bounce missed: {name} ({classification.kind.value}: {classification.reason})")
        if want:
            with_address += 1
            if want <= found:
                exact += 1
            elif verdict:
                show(f"wrong address: {name} want {sorted(want)} got {sorted(found)}")
        if verdict and any(f.kind.value == kind or (kind == "hard" and f.kind.permanent) for f in verdict.failures):
            kind_ok += 1
    delayed = rows("delayed")
    delayed_ok = 0
    for name, *_ in delayed:
        _, verdict = classify_file(CORPUS / "delayed" / name)
        if verdict and all(not f.kind.permanent for f in verdict.failures):
            delayed_ok += 1
        else:
            show(f"delayed misread: {name} {verdict}")

    auto = rows("autoreplies")
    auto_yes = [r for r in auto if r[1] == "yes"]
    auto_no = [r for r in auto if r[1] == "no"]
    auto_hits = auto_fp = 0
    for name, expected, *_ in auto:
        classification, _ = classify_file(CORPUS / "autoreplies" / name)
        automatic = classification.kind in (Kind.AUTO_REPLY, Kind.BOUNCE, Kind.LIST)
        if expected == "yes" and classification.kind is Kind.AUTO_REPLY:
            auto_hits += 1
        elif expected == "yes":
            show(f"auto-reply missed: {name} ({classification.kind.value}: {classification.reason})")
        if expected == "no" and automatic and "postfix" not in name:
            auto_fp += 1
            show(f"auto-reply false positive: {name} ({classification.kind.value}: {classification.reason})")

    human = sorted((CORPUS / "human").glob("*.eml"))
    human_fp = 0
    for path in human:
        classification, verdict = classify_file(path)
        if classification.kind is not Kind.HUMAN:
            human_fp += 1
            show(f"human mail misclassified: {path.name} ({classification.kind.value}: {classification.reason})")
    not_bounces = sorted((CORPUS / "not_bounces").glob("*.eml"))
    nb_fp = 0
    for path in not_bounces:
        _, verdict = classify_file(path)
        if verdict:
            nb_fp += 1
            show(f"non-bounce read as a bounce: {path.name} {verdict}")

    def pct(a: int, b: int) -> str:
        return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"

    print(f"bounces detected:          {pct(detected, len(bounces))}")
    print(f"exact failed address:      {pct(exact, with_address)}")
    print(f"failure kind as expected:  {pct(kind_ok, len(bounces))}")
    print(f"delay warnings not hard:   {pct(delayed_ok, len(delayed))}")
    print(f"auto-replies detected:     {pct(auto_hits, len(auto_yes))}")
    print(f"auto-reply false positives on look-alikes: {pct(auto_fp, len(auto_no))}")
    print(f"false positives on human mail: {pct(human_fp, len(human))}")
    print(f"non-bounces read as bounces:   {pct(nb_fp, len(not_bounces))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
