"""The sent journal: each smarthost 250 written to local disk (fsync'd) before the database
hears of it, so neither a database outage nor a crash between the 250 and the commit makes
the gateway send that message a second time.

One file per process, `<journal_dir>/<installation id>/<process id>.journal`, locked
(`flock`) for as long as the process lives. One JSON object per line:

    {"sent": 12, "at": "2026-11-27T...", "message_id": "<...>", "reply": "250 ..."}   fsync'd
    {"recorded": [12, 13]}                                                           not fsync'd

A "recorded" line that a crash loses only makes the entry be recorded again, which changes
nothing. A file whose lock is free belongs to a process that stopped: any process of the
same installation on the host adopts it (records its entries in the database), then
removes it. The folder must be on a local disk that survives a reboot (flock is not
reliable over NFS; /tmp may be private to one systemd unit or cleared at boot).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from gateway.outage import id_list

log = logging.getLogger(__name__)

SUFFIX = ".journal"
COMPACT_BYTES = 256 * 1024  # a file with nothing left to record is emptied past this size


@dataclass(frozen=True)
class Accepted:
    """The smarthost accepted outbox row `outbox_id` at `at` (its 250)."""

    outbox_id: int
    at: datetime
    message_id: str = ""
    reply: str = ""  # the smarthost's answer to DATA (its queue id)

    def line(self) -> bytes:
        return (json.dumps({"sent": self.outbox_id, "at": self.at.isoformat(), "message_id": self.message_id,
                            "reply": self.reply[:1000]}) + "\n").encode()


def parse(text: str) -> list[Accepted]:
    """The entries of a journal not yet recorded, in order. A torn last line (a crash while
    it was written, before its fsync returned) is ignored: its 250 was never durable."""
    sent: dict[int, Accepted] = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
            if "sent" in item:
                sent[int(item["sent"])] = Accepted(int(item["sent"]), datetime.fromisoformat(item["at"]),
                                                   str(item.get("message_id") or ""), str(item.get("reply") or ""))
            for outbox_id in item.get("recorded", ()):
                sent.pop(int(outbox_id), None)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return list(sent.values())


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SentJournal:
    """This process's journal. `record` returns once the entry is on disk."""

    def __init__(self, folder: Path, owner: str) -> None:
        self.folder = Path(folder)
        self.owner = owner
        self.path = self.folder / f"{_file_name(owner)}{SUFFIX}"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._unrecorded: dict[int, Accepted] = {}

    def _open(self) -> int:
        """Create and lock the file under a temporary name, then give it its real name, so
        nobody ever sees it unlocked (and takes it for a stopped process's)."""
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = self.folder / f".{self.path.name}.new"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temporary, self.path)
            _fsync_folder(self.folder)
            self._fd = fd
        return self._fd

    def check_writable(self) -> None:
        """Raise OSError unless the journal can be created (called at start)."""
        with self._lock:
            self._open()

    def record(self, entry: Accepted) -> None:
        with self._lock:
            fd = self._open()
            os.write(fd, entry.line())
            os.fsync(fd)
            self._unrecorded[entry.outbox_id] = entry

    def mark_recorded(self, outbox_ids: list[int]) -> None:
        """The database has these; they need not be recorded again."""
        if not outbox_ids:
            return
        with self._lock:
            for outbox_id in outbox_ids:
                self._unrecorded.pop(outbox_id, None)
            if self._fd is None:
                return
            if not self._unrecorded and os.fstat(self._fd).st_size > COMPACT_BYTES:
                os.ftruncate(self._fd, 0)
                os.fsync(self._fd)
            else:
                os.write(self._fd, (json.dumps({"recorded": outbox_ids}) + "\n").encode())

    def unrecorded(self) -> list[Accepted]:
        with self._lock:
            return list(self._unrecorded.values())

    def close(self) -> None:
        """Remove the file when everything in it is recorded; otherwise leave it (unlocked)
        for the next process of this host to adopt."""
        with self._lock:
            if self._fd is None:
                return
            if not self._unrecorded:
                self.path.unlink(missing_ok=True)
            else:
                log.warning("sent journal %s keeps %s deliveries the smarthost accepted that the database "
                            "has not recorded (outbox %s); the next gateway process on this host records them",
                            self.path, len(self._unrecorded), id_list(e.outbox_id for e in self._unrecorded.values()))
            os.close(self._fd)
            self._fd = None


def _file_name(owner: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in owner)


def adopt_orphans(folder: Path, *, own: Path | None, record: Callable[[str, list[Accepted]], None]) -> int:
    """Record the entries of every journal in `folder` whose process stopped, then remove
    it. `record(owner, entries)` writes them to the database and raises when it cannot (the
    file is then left for the next try). Returns how many entries were recorded."""
    recorded = 0
    for path, fd in _unlocked(folder, own):
        try:
            with open(fd, "r", encoding="utf-8", errors="replace", closefd=False) as handle:
                entries = parse(handle.read())
            record(path.name[: -len(SUFFIX)], entries)
            path.unlink(missing_ok=True)
            recorded += len(entries)
        finally:
            os.close(fd)  # releases the lock
    return recorded


def _unlocked(folder: Path, own: Path | None) -> Iterator[tuple[Path, int]]:
    """Journals whose lock could be taken (their process is gone), each open and locked."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if own is not None and path == own:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # adopted by another process meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive (or another one is adopting it)
            os.close(fd)
            continue
        if not path.exists():  # adopted and removed between our open and our lock
            os.close(fd)
            continue
        yield path, fd


def waiting(folder: Path) -> list[tuple[str, Accepted]]:
    """(owner, entry) of every entry in `folder` not yet recorded, live processes' included
    (for the health check; nothing is locked or changed)."""
    found: list[tuple[str, Accepted]] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.extend((path.name[: -len(SUFFIX)], entry) for entry in parse(text))
    return found
