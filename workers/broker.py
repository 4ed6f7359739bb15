"""Builds the Dramatiq broker named in Settings: in-memory (embedded) or Redis."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from gateway.config import BrokerSettings


def build_broker(settings: BrokerSettings, *, namespace: str = "dispute-gateway") -> dramatiq.Broker:
    """A broker for `settings.url`; set as Dramatiq's global broker too."""
    if settings.embedded:
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
    else:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=settings.url, namespace=namespace)
    dramatiq.set_broker(broker)
    return broker


def ping(broker: dramatiq.Broker) -> None:
    """Raise unless the broker's backing service answers."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
