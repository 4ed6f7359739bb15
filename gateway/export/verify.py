"""Checking a bundle: is it the bag it was when exported, and does its history hold?

1. The ZIP holds one bag folder and no path that leaves it.
2. The bag validates with the Library of Congress `bagit` library (RFC 8493: manifests,
   tag manifest, Payload-Oxum), and each changed, missing or added file is named.
3. The events in case.json form an unbroken SHA-256 chain whose head is the one in
   bag-info.txt; every raw message's SHA-256 is the one its events carry.
4. Every earlier export the history records (same redaction) still has its chain head at
   its place: the history before it was not changed afterwards.
5. Optionally (`history`): the gateway's own database still has the same history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import bagit

from gateway.export import chain


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _extract(path: Path, into: Path, report: Report) -> Path | None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        report.problems.append(f"{path}: not a readable ZIP file ({error})")
        return None
    with archive:
        names = [info for info in archive.infolist() if not info.is_dir()]
        tops = {PurePosixPath(info.filename).parts[0] for info in names if PurePosixPath(info.filename).parts}
        for info in names:
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                report.problems.append(f"{info.filename}: a path outside the bag (refused)")
                return None
        if len(tops) != 1:
            report.problems.append(f"the ZIP must hold one bag folder, it holds {len(tops)}: {', '.join(sorted(tops))}")
            return None
        for info in names:
            target = into / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
    return into / tops.pop()


def _manifest_differences(root: Path, manifest: str) -> list[str]:
    """Each file the manifest lists that changed or is missing, and each payload file it
    does not list (bagit stops at the first failed check; this names them all)."""
    listed = {}
    for line in (root / manifest).read_text("utf-8").splitlines():
        digest, _, name = line.strip().partition(" ")
        if name:
            listed[name.strip()] = digest.lower()
    found = []
    for name, digest in sorted(listed.items()):
        target = root / name
        if not target.is_file():
            found.append(f"{name}: missing (listed in {manifest})")
        elif hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            found.append(f"{name}: changed since the export (its SHA-256 is not the one in {manifest})")
    if manifest.startswith("manifest"):
        for target in sorted((root / "data").rglob("*")):
            name = target.relative_to(root).as_posix()
            if target.is_file() and name not in listed:
                found.append(f"{name}: not in {manifest} (added after the export)")
    return found


def _check_bag(root: Path, report: Report) -> None:
    logging.getLogger("bagit").setLevel(logging.ERROR)
    try:
        bagit.Bag(str(root)).validate(processes=1)
        report.notes.append(f"BagIt: valid (bagit {bagit.VERSION}), every file matches manifest-sha256.txt")
    except bagit.BagError as error:
        report.problems.append(f"BagIt: not valid: {error}")
    for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        if (root / manifest).is_file():
            report.problems.extend(_manifest_differences(root, manifest))
        else:
            report.problems.append(f"{manifest}: missing")


def _bag_info(root: Path) -> dict[str, str]:
    info = {}
    path = root / "bag-info.txt"
    if path.is_file():
        for line in path.read_text("utf-8", "replace").splitlines():
            label, _, value = line.partition(":")
            info[label.strip()] = value.strip()
    return info


def _check_chain(case: dict, info: dict[str, str], root: Path, report: Report) -> None:
    reference = (case.get("case") or {}).get("reference") or ""
    events = case.get("events") or []
    before = len(report.problems)
    for found in chain.verify(reference, events):
        event = events[found.index]
        report.problems.append(f"case.json event #{found.index + 1} ({event.get('kind')}, {event.get('at')}): "
                               f"{found.problem}")
    head = chain.head(reference, events)
    recorded = (case.get("chain") or {}).get("head")
    if recorded != head:
        report.problems.append(f"case.json: the chain head written ({recorded}) is not the last event's hash ({head})")
    if info.get("Case-Chain-Head") and info["Case-Chain-Head"] != head:
        report.problems.append("bag-info.txt: Case-Chain-Head is not the head of the chain in case.json")
    if len(report.problems) == before:
        report.notes.append(f"hash chain: {len(events)} events hold, head {head}")
    by_message = {m.get("message"): m for m in case.get("messages") or [] if m.get("message")}
    for event in events:
        message = by_message.get(event.get("message"))
        if event.get("message_sha256") and message and message.get("sha256") != event["message_sha256"]:
            report.problems.append(f"case.json: message {message.get('file')} has a SHA-256 other than its event "
                                   f"#{event.get('seq')} records")
    for message in case.get("messages") or []:
        if message.get("file") and (root / "data" / message["file"]).is_file():
            if hashlib.sha256((root / "data" / message["file"]).read_bytes()).hexdigest() != message.get("sha256"):
                report.problems.append(f"data/{message['file']}: not the message received (SHA-256 differs from "
                                       "its receipt)")
    _check_earlier_exports(events, bool(case.get("redacted")), report)


def _check_earlier_exports(events: list[dict], redacted: bool, report: Report) -> None:
    for event in events:
        detail = event.get("detail") or {}
        if event.get("kind") != "case_exported" or bool(detail.get("redacted")) != redacted:
            continue
        count, head = detail.get("events"), detail.get("chain_head")
        if isinstance(count, int) and 0 < count <= len(events) and events[count - 1].get("hash") != head:
            report.problems.append(f"the history before the export of {event.get('at')} is not what that export "
                                   "contained: it was changed afterwards")


def verify(path: Path, *, history: Callable[[str, bool], list[dict] | None] | None = None) -> Report:
    """Check the bundle at `path`. `history(reference, redacted)`, when given, returns the
    case's linked events from the gateway's database (None: no such case)."""
    report = Report()
    with tempfile.TemporaryDirectory(prefix="dg-verify-") as scratch:
        root = _extract(path, Path(scratch), report)
        if root is None:
            return report
        _check_bag(root, report)
        try:
            case = json.loads((root / "data" / "case.json").read_text("utf-8"))
        except (OSError, ValueError) as error:
            report.problems.append(f"data/case.json: unreadable ({error})")
            return report
        report.reference = (case.get("case") or {}).get("reference")
        _check_chain(case, _bag_info(root), root, report)
        if history is not None and report.reference:
            _compare_with_database(case, history(report.reference, bool(case.get("redacted"))), report)
    return report


def _compare_with_database(case: dict, stored: list[dict] | None, report: Report) -> None:
    if stored is None:
        report.notes.append(f"this gateway has no case {report.reference}: not compared with a database")
        return
    events = case.get("events") or []
    for index, event in enumerate(events):
        if index >= len(stored) or stored[index].get("hash") != event.get("hash"):
            report.problems.append(f"the gateway's history of case {report.reference} differs from this bundle from "
                                   f"event #{index + 1} ({event.get('kind')}, {event.get('at')}) on")
            return
    report.notes.append(f"the gateway's database holds the same {len(events)} events (and {len(stored) - len(events)} "
                        "since)")
