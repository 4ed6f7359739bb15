"""The sent journal: a 250 is on disk before `record` returns; a journal whose process is
alive is never taken; one whose process stopped is adopted once and removed; a torn last
line (a crash mid-write) is ignored; what was recorded is not recorded again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from gateway import sent_journal
from gateway.sent_journal import Accepted, SentJournal

AT = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)


def _adopt(folder, own=None):
    adopted: list[tuple[str, list[int]]] = []
    count = sent_journal.adopt_orphans(folder, own=own, record=lambda owner, entries: adopted.append(
        (owner, [e.outbox_id for e in entries])))
    return count, adopted


def test_an_entry_is_on_disk_and_a_live_journal_is_never_adopted(tmp_path):
    journal = SentJournal(tmp_path, "host-1-aaaaaa")
    journal.record(Accepted(7, AT, "<m7@d>"))
    assert sent_journal.parse(journal.path.read_text()) == [Accepted(7, AT, "<m7@d>")]
    assert _adopt(tmp_path) == (0, [])  # its lock is held: the process is alive
    journal.mark_recorded([7])
    assert journal.unrecorded() == [] and sent_journal.waiting(tmp_path) == []
    journal.close()
    assert not journal.path.exists()  # nothing left to record: removed


def test_a_stopped_process_journal_is_adopted_once_then_removed(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from datetime import datetime, timezone
        sys.path.insert(0, {str(os.getcwd())!r})
        from gateway.sent_journal import Accepted, SentJournal
        journal = SentJournal({str(tmp_path)!r}, "host-2-bbbbbb")
        journal.record(Accepted(1, datetime.now(timezone.utc), "<a@d>"))
        journal.record(Accepted(2, datetime.now(timezone.utc), "<b@d>"))
        journal.mark_recorded([1])
        os._exit(0)  # like kill -9: nothing closed, nothing flushed beyond the fsyncs
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=os.getcwd())
    mine = SentJournal(tmp_path, "host-3-cccccc")
    mine.check_writable()
    assert _adopt(tmp_path, own=mine.path) == (1, [("host-2-bbbbbb", [2])])
    assert not (tmp_path / "host-2-bbbbbb.journal").exists()
    assert _adopt(tmp_path, own=mine.path) == (0, [])  # once
    mine.close()


def test_a_journal_whose_recording_fails_is_kept_for_the_next_try(tmp_path):
    path = tmp_path / "host-4-dddddd.journal"
    path.write_bytes(Accepted(5, AT).line())

    def failing(owner, entries):
        raise RuntimeError("database unavailable")

    with pytest.raises(RuntimeError):
        sent_journal.adopt_orphans(tmp_path, own=None, record=failing)
    assert path.exists()
    assert _adopt(tmp_path) == (1, [("host-4-dddddd", [5])])


def test_a_torn_last_line_is_ignored():
    text = Accepted(1, AT).line().decode() + Accepted(2, AT).line().decode()[:20]
    assert [e.outbox_id for e in sent_journal.parse(text)] == [1]


def test_a_journal_that_is_all_recorded_is_emptied_past_its_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(sent_journal, "COMPACT_BYTES", 300)
    journal = SentJournal(tmp_path, "host-5-eeeeee")
    line = len(Accepted(1, AT, "<1@d>", "250 ok").line())
    for n in range(1, 51):
        journal.record(Accepted(n, AT, f"<{n}@d>", "250 ok"))
        journal.mark_recorded([n])
        assert journal.path.stat().st_size < 300 + 2 * line  # 50 deliveries, never much past the limit
    journal.record(Accepted(9, AT))
    assert [e.outbox_id for e in sent_journal.parse(journal.path.read_text())] == [9]
    journal.close()
    assert journal.path.exists()  # 9 is not recorded: kept for the next process


def test_an_unwritable_folder_is_said_at_start(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(OSError):
        SentJournal(blocker / "journal", "host-6-ffffff").check_writable()
