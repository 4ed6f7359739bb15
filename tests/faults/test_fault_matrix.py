"""Exactly once under faults: real processes (serve-smtp, two workers, a scheduler) on a
private PostgreSQL and Redis, a real smarthost that fails on demand, the real clock.

For every fault: nothing accepted is lost, nothing reaches the smarthost twice per
(Message-ID, recipient) (except the one window SMTP leaves open, where exactly one
delayed, logged retry with the same Message-ID is the documented answer), and the
gateway is back to normal within a bound. bench/faults.py runs the same with more mail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.faults import matrix as m
from tests.faults.cluster import GatewayCluster
from tests.faults.services import PG_BIN
from tests.faults.smarthost import FaultSmarthost

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None or os.geteuid() != 0:
    pytest.skip(f"the fault matrix runs a private PostgreSQL from {PG_BIN} as the postgres user (root and "
                "runuser needed; DG_PG_BIN names another folder)", allow_module_level=True)

PER_RUN = 6  # complaints per fault (each makes 5 outbox rows)
REPLIES = 3  # merchant answers on earlier cases per fault
TAGS = ["base", "451", "550", "dropb", "dropa", "window", "hang", "dup", "kill250", "killsend", "killproc",
        "flush", "pgfast", "pgimm", "pgstop"]


@pytest.fixture(scope="module")
def matrix():
    folder = Path(tempfile.mkdtemp(prefix="dg-faults-"))  # not pytest's tmp_path: postgres must reach it
    smarthost = FaultSmarthost()
    cluster = GatewayCluster(folder, smarthost.port)
    plan = m.Matrix.plan(TAGS, PER_RUN)
    try:
        cluster.start([row for rows in plan.values() for row in rows])
        runs = m.Matrix(cluster, smarthost, per_run=PER_RUN, replies=REPLIES)
        runs.load_plan(plan)
        yield runs
    finally:
        cluster.stop()
        smarthost.stop()
        if not os.environ.get("DG_FAULTS_KEEP"):  # DG_FAULTS_KEEP=1 keeps the processes' logs to read
            shutil.rmtree(folder, ignore_errors=True)


def _run(matrix: m.Matrix, tag: str, fault: str, drive, *, replies: int = REPLIES, recovery: float = 30) -> m.Run:
    run = matrix.run(fault, drive, load=m.Load(matrix, tag, matrix.per_run, replies))
    result = run.result
    print(m.table([result]), *result.notes, sep="\n")
    assert result.accepted == result.sent, result
    assert result.lost == 0, result
    assert result.duplicated == run.expected_window == result.window, result
    assert result.expected and result.seen == result.expected, result
    assert result.recovery <= recovery, result
    assert not matrix.cluster.crashes, matrix.cluster.crashes
    return run


def test_no_fault(matrix):
    _run(matrix, "base", "none", lambda run: (run.end_fault(), run.send()), replies=0)
    matrix.remember_cases()
    assert len(matrix.case_addresses) >= REPLIES


def test_smarthost_451_for_a_while_and_health_says_so(matrix):
    run = _run(matrix, "451", "smarthost 451 for 12 s", m.smarthost_451, recovery=15)
    status, failing = run.health["during the 451s"]
    assert status == 503 and "retrying" in failing


def test_smarthost_550_for_some_recipients(matrix):
    run = _run(matrix, "550", "smarthost 550 for one merchant", m.smarthost_550)
    failed = [row for row in matrix.cluster.state(run.since)["outbox"] if row[3] == "failed"]
    assert failed and all(row[2] == "gone@refuses.test" for row in failed)


def test_smarthost_drops_the_connection_before_its_250(matrix):
    run = _run(matrix, "dropb", "connection dropped before 250 (x4)", m.dropping("drop_before_250", 4))
    assert matrix.cluster.logs().count("one retry at") >= 4  # each is one log line, never an instant resend


def test_smarthost_drops_the_connection_after_its_250(matrix):
    _run(matrix, "dropa", "connection dropped after 250 (x4)", m.dropping("drop_after_250", 4))


def test_the_smtp_window_gets_one_delayed_logged_retry_with_the_same_message_id(matrix):
    run = _run(matrix, "window", "250 lost after storing (x3)", m.smtp_window(3))
    twice = [key for key, n in matrix.smarthost.copies().items() if n == 2]
    assert len(twice) == 3 and all(message_id for message_id, _ in twice)
    logs = matrix.cluster.logs()
    assert all(logs.count(message_id) >= 2 for message_id, _ in twice)  # the retry, then the resend, name it


def test_a_hanging_smarthost_never_holds_up_intake(matrix):
    run = _run(matrix, "hang", "smarthost hangs 8 s", m.smarthost_hangs)
    assert any("every message processed" in note for note in run.notes)


def test_duplicate_mta_delivery_with_and_without_message_id(matrix):
    run = _run(matrix, "dup", "MTA delivers each twice", m.mta_duplicates, replies=0)
    assert run.result.accepted == 2 * PER_RUN


def test_worker_killed_between_the_250_and_its_commit(matrix):
    _run(matrix, "kill250", "kill -9 after 250, before commit (x2)", m.kill_after_250(2))


def test_worker_killed_during_a_delivery(matrix):
    _run(matrix, "killsend", "kill -9 during DATA", m.kill_mid_send)


def test_workers_killed_while_processing(matrix):
    _run(matrix, "killproc", "kill -9 both workers mid-processing", m.kill_mid_processing)


def test_redis_flushall(matrix):
    _run(matrix, "flush", "Redis FLUSHALL", m.redis_flushall, recovery=20)


def test_postgres_fast_restart(matrix):
    _run(matrix, "pgfast", "PostgreSQL restart -m fast", m.postgres_restart("fast"))


def test_postgres_immediate_restart(matrix):
    _run(matrix, "pgimm", "PostgreSQL restart -m immediate", m.postgres_restart("immediate"))


def test_postgres_stopped_30_seconds_with_a_worker_killed_meanwhile(matrix):
    run = _run(matrix, "pgstop", "PostgreSQL stopped 30 s + kill -9", m.postgres_stopped(30))
    status, failing = run.health["with the database down"]
    assert status == 503 and "database" in failing
