"""The API on PostgreSQL and Redis (production's set-up): two calls racing with one
Idempotency-Key open one case and get one answer; the webhook rows commit with the case."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from gateway.models import Case, Outbox
from tests.conftest import _postgres_backend
from tests.http.conftest import API_TOKEN, WEBHOOK_SECRET, running_api

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def pg_api(tmp_path_factory):
    backend = _postgres_backend()
    try:
        yield from running_api(tmp_path_factory.mktemp("http-pg"), backend, {
            "api_tokens": {"account-page": API_TOKEN},
            "webhooks": [{"name": "provider", "secret": WEBHOOK_SECRET}]})
    finally:
        backend.cleanup()


def test_racing_retries_with_one_key_open_one_case(pg_api):
    call = {"reference": "TX-1001", "category": "delivery", "text": "Where is my parcel?"}
    answers = []

    def post():
        with pg_api.client() as http:
            answers.append(http.post("/v1/cases", json=call, headers={"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4
    assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers]
    bodies = [a.json() for a in answers if a.status_code == 201]
    assert bodies and all(b == bodies[0] for b in bodies)
    with pg_api.gateway.runtime.database.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Case)) == 1
        assert db.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == "webhook")) >= 1
    receiver = pg_api.receiver
    receiver.wait(lambda: receiver.events("case.opened", bodies[0]["reference"]), what="case.opened")
