"""The hash chain over a case's events: each event's SHA-256 covers the previous one's,
so changing, removing or reordering any event changes every hash after it. Pure.

    hash(n) = SHA-256( hash(n-1) + canonical JSON of event n )
    hash(0) = SHA-256( "dispute-gateway:case:" + case reference )   (the genesis value)

Canonical JSON: keys sorted, no spaces, UTF-8, the event without its `prev` and `hash`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

ALGORITHM = "SHA-256"
RULE = ("hash = SHA-256(previous hash + canonical JSON of the event without 'prev' and 'hash': keys sorted, "
        "separators ',' and ':', UTF-8); the first event's previous hash is the genesis value "
        "SHA-256('dispute-gateway:case:' + case reference)")


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def genesis(reference: str) -> str:
    return hashlib.sha256(f"dispute-gateway:case:{reference.upper()}".encode()).hexdigest()


def _hash(previous: str, record: dict) -> str:
    return hashlib.sha256((previous + canonical(record)).encode("utf-8")).hexdigest()


def link(reference: str, records: list[dict]) -> list[dict]:
    """`records` with `prev` and `hash` added, in order."""
    previous = genesis(reference)
    linked = []
    for record in records:
        body = {k: v for k, v in record.items() if k not in ("prev", "hash")}
        digest = _hash(previous, body)
        linked.append({**body, "prev": previous, "hash": digest})
        previous = digest
    return linked


def head(reference: str, linked: list[dict]) -> str:
    return linked[-1]["hash"] if linked else genesis(reference)


@dataclass(frozen=True)
class Break:
    index: int  # position in the chain (0-based)
    problem: str


def verify(reference: str, linked: list[dict]) -> list[Break]:
    """Where the chain does not hold: an event whose content no longer gives its hash
    (it was changed), or whose `prev` is not the hash before it (one was removed,
    inserted or moved). Empty when every link holds."""
    breaks = []
    previous = genesis(reference)
    for index, record in enumerate(linked):
        body = {k: v for k, v in record.items() if k not in ("prev", "hash")}
        if record.get("prev") != previous:
            breaks.append(Break(index, "its 'prev' is not the hash of the event before it "
                                       "(an event was removed, inserted or moved)"))
        if _hash(record.get("prev") or "", body) != record.get("hash"):
            breaks.append(Break(index, "its content does not give its hash (the event was changed)"))
        previous = record.get("hash") or ""
    return breaks
