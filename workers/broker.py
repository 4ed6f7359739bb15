"""Builds the Dramatiq broker named in Settings: in-memory (embedded) or Redis.

The Redis broker is Dramatiq's own with two additions the scheduler's sweep needs to find
lost work in seconds rather than after a lease:

- every queue message's Redis id names its job (`deliver:42:<uuid>`), so `live_jobs`
  can say which database rows still have a job somewhere in Redis (queued, delayed, or
  fetched by a worker);
- `recover_dead_consumers` runs Dramatiq's own queue maintenance at once (Dramatiq runs it
  at random, about once every thousand commands), so the messages a killed worker had
  fetched go back on their queue as soon as its broker heartbeat is
  `BROKER_HEARTBEAT_TIMEOUT_MS` old.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Optional

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.message import Message

from gateway.config import BrokerSettings

log = logging.getLogger(__name__)

# A worker process's consumers renew their Redis heartbeat on every fetch (every 100 ms when
# idle). Past this, the messages it fetched are put back on their queue; a live worker that
# was merely busy then sees a second copy of a job, which its claim makes a no-op.
BROKER_HEARTBEAT_TIMEOUT_MS = 15_000
SENTINEL_KEY = "__dispute_gateway_sentinel__"  # gone: the Redis data was flushed


def build_broker(settings: BrokerSettings, *, namespace: str = "dispute-gateway") -> dramatiq.Broker:
    """A broker for `settings.url`; set as Dramatiq's global broker too."""
    if settings.embedded:
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
    else:
        broker = _redis_broker_class()(url=settings.url, namespace=namespace,
                                       heartbeat_timeout=BROKER_HEARTBEAT_TIMEOUT_MS)
    dramatiq.set_broker(broker)
    return broker


def ping(broker: dramatiq.Broker) -> None:
    """Raise unless the broker's backing service answers."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()


def job_id(message: Message) -> str:
    """`<actor>:<first argument>:<uuid>`: the Redis id of one queue message of a job."""
    first = message.args[0] if message.args else ""
    return f"{message.actor_name}:{first}:{uuid.uuid4().hex}"


def _redis_broker_class():
    from dramatiq.brokers.redis import RedisBroker

    class GatewayRedisBroker(RedisBroker):
        _forced = threading.local()

        def enqueue(self, message: Message, *, delay: Optional[int] = None) -> Message:
            # RedisBroker.enqueue (Dramatiq 2.2), with the job named in the Redis message id.
            queue_name = message.queue_name
            message = message.copy(options={"redis_message_id": job_id(message)})
            if delay is not None:
                queue_name = dq_name(queue_name)
                message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
            self.emit_before("enqueue", message, delay)
            self.do_enqueue(queue_name, message.options["redis_message_id"], message.encode())
            self.emit_after("enqueue", message, delay)
            return message

        def _should_do_maintenance(self, command: str) -> int:
            if getattr(self._forced, "now", False):
                return 1
            return super()._should_do_maintenance(command)

    return GatewayRedisBroker


def is_redis(broker: dramatiq.Broker) -> bool:
    return getattr(broker, "client", None) is not None and hasattr(broker, "namespace")


def live_jobs(broker: dramatiq.Broker) -> set[tuple[str, int]] | None:
    """(actor, row id) of every job the broker holds: queued, delayed or fetched by a
    worker and not yet done. None when the broker cannot tell (the in-memory broker, or
    messages enqueued by an older version without named ids)."""
    if not is_redis(broker):
        return None
    jobs: set[tuple[str, int]] = set()
    # Dramatiq's Redis layout (dispatch.lua): every message of queue Q lives in the hash
    # <namespace>:Q.msgs (delayed ones in Q.DQ.msgs) until it is acked.
    for queue in broker.get_declared_queues():
        for name in (queue, dq_name(queue)):
            for key in broker.client.hkeys(f"{broker.namespace}:{name}.msgs"):
                actor, _, rest = key.decode(errors="replace").partition(":")
                row, _, _ = rest.partition(":")
                if not row.isdigit():
                    return None
                jobs.add((actor, int(row)))
    return jobs


def recover_dead_consumers(broker: dramatiq.Broker) -> None:
    """Put back on their queues the messages fetched by workers whose broker heartbeat
    stopped (Dramatiq's maintenance, run now on every queue)."""
    if not is_redis(broker):
        return
    broker._forced.now = True
    try:
        for queue in broker.get_declared_queues():
            broker.do_qsize(queue)
            broker.do_qsize(dq_name(queue))
    finally:
        broker._forced.now = False


def declare_consumer_dead(broker: dramatiq.Broker, broker_id: str) -> None:
    """A worker process known to have stopped (its journal's lock is free): its Redis
    consumer is marked as silent since forever and the maintenance puts the messages it had
    fetched back on their queues now, not `BROKER_HEARTBEAT_TIMEOUT_MS` later."""
    if not is_redis(broker) or not broker_id or broker_id == getattr(broker, "broker_id", None):
        return
    broker.client.zadd(f"{broker.namespace}:__heartbeats__", {broker_id: 0})  # dispatch.lua's heartbeat set
    recover_dead_consumers(broker)


def loss_reason(broker: dramatiq.Broker, seen: dict) -> str | None:
    """Why the broker may have lost messages since the last call (Redis restarted: its
    run_id changed; flushed: our sentinel key is gone), else None. `seen` is the caller's
    memory between calls."""
    if not is_redis(broker):
        return None
    run_id = broker.client.info("server").get("run_id")
    key = f"{broker.namespace}:{SENTINEL_KEY}"
    present = broker.client.exists(key)
    if not present:
        broker.client.set(key, "1")
    previous = seen.get("run_id")
    seen["run_id"] = run_id
    if previous is not None and previous != run_id:
        return "Redis restarted"
    if previous is not None and not present:
        return "Redis data flushed"
    return None
