"""Long-running processes: run (embedded), serve-smtp, worker, scheduler, poll-imap."""

from __future__ import annotations

import logging
import threading

from gateway import config as config_module
from gateway.cli.common import (
    load_settings,
    wait_for_signal,
    upgrade_if_sqlite,
    require_shared_broker,
)

log = logging.getLogger(__name__)


def cmd_run(args) -> int:
    """Embedded all-in-one: SMTP ingress, in-process workers and the scheduler."""
    from gateway.ingress import smtp
    from workers import scheduler
    from workers.runtime import Runtime

    settings = load_settings(args)
    _warn_example_secret(settings)
    upgrade_if_sqlite(settings)
    runtime = Runtime(settings, clock=args.clock)
    worker = runtime.start_worker()
    controller = smtp.start(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    metrics_server = _serve_metrics(runtime)
    stop = threading.Event()
    sweeper = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), name="scheduler", daemon=True)
    sweeper.start()
    pollers = _start_pollers(runtime, stop)
    where = settings.outbound.smtp and f"smarthost {settings.outbound.smtp.host}:{settings.outbound.smtp.port}"
    print(f"dispute-gateway running: SMTP on {settings.smtp_ingress.host}:{settings.smtp_ingress.port}, "
          f"database {settings.database.url}, outbound to {where or settings.outbound.maildir}. Ctrl-C stops.",
          flush=True)
    try:
        wait_for_signal()
    finally:
        controller.stop()
        stop.set()
        for poller in pollers:
            poller.join(timeout=5)
        worker.stop()
        if metrics_server:
            metrics_server.shutdown()
        runtime.close()
    return 0


EXAMPLE_SECRET = "change-me-to-a-long-random-secret"  # config.example.toml's


def _warn_example_secret(settings) -> None:
    if EXAMPLE_SECRET in settings.gateway.secret_keys:
        log.warning("[gateway] secret_keys still holds the example key from config.example.toml: anyone who "
                    "has read it can forge case addresses. Set your own before going live.")


def _start_pollers(runtime, stop: threading.Event) -> list[threading.Thread]:
    """One IMAP poller thread per configured mailbox."""
    from gateway.ingress import imap

    store = imap.make_store(runtime.settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    threads = []
    for mailbox in runtime.settings.imap:
        poller = imap.ImapPoller(mailbox, store=store, clock=runtime.clock, stop=stop,
                                 max_message_bytes=runtime.settings.smtp_ingress.max_message_bytes,
                                 report_too_large=imap.make_too_large_reporter(runtime))
        thread = threading.Thread(target=poller.run, name=f"imap-{mailbox.username}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def cmd_poll_imap(args) -> int:
    """Read the [ingress.imap] mailboxes: once (--once) or for ever (IDLE or polling)."""
    from gateway.ingress import imap
    from workers.runtime import Runtime

    settings = load_settings(args)
    if not settings.imap:
        raise config_module.ConfigError(f"{settings.source}: [ingress.imap]: missing: no mailbox to read")
    upgrade_if_sqlite(settings)
    runtime = Runtime(settings, clock=args.clock, inline=settings.broker.embedded)
    try:
        if args.once:
            store = imap.make_store(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
            stop = threading.Event()
            report = imap.make_too_large_reporter(runtime)
            total = sum(imap.ImapPoller(m, store=store, clock=runtime.clock, stop=stop,
                                        max_message_bytes=settings.smtp_ingress.max_message_bytes,
                                        report_too_large=report).poll_once()
                        for m in settings.imap)
            print(f"{total} message(s) stored from {len(settings.imap)} mailbox(es)")
            return 0
        require_shared_broker(settings, "poll-imap")
        stop = threading.Event()
        _serve_metrics(runtime, required=False)
        threads = _start_pollers(runtime, stop)
        print(f"reading {len(threads)} IMAP mailbox(es)", flush=True)
        try:
            wait_for_signal()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
        return 0
    finally:
        runtime.close()


def _serve_metrics(runtime, *, required: bool = True):
    """/metrics and /healthz for this process. The figures read from the database are the
    same from every process; only the ingress counters are per process. A process for
    which metrics are optional (poll-imap beside serve-smtp on one host) warns and goes on
    when the port is taken."""
    from gateway import metrics

    try:
        return metrics.serve(runtime)
    except OSError as error:
        settings = runtime.settings.metrics
        message = f"[metrics] port: cannot listen on {settings.host}:{settings.port}: {error}"
        if required:
            raise config_module.ConfigError(f"{runtime.settings.source}: {message}")
        logging.getLogger("gateway").warning("%s; this process serves no metrics", message)
        return None


def cmd_serve_smtp(args) -> int:
    from gateway.ingress import smtp
    from workers.runtime import Runtime

    settings = load_settings(args)
    _warn_example_secret(settings)
    require_shared_broker(settings, "serve-smtp")
    runtime = Runtime(settings, clock=args.clock)
    controller = smtp.start(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    _serve_metrics(runtime)
    print(f"SMTP ingress on {settings.smtp_ingress.host}:{settings.smtp_ingress.port}", flush=True)
    try:
        wait_for_signal()
    finally:
        controller.stop()
        runtime.close()
    return 0


def cmd_worker(args) -> int:
    from workers.runtime import Runtime

    settings = load_settings(args)
    require_shared_broker(settings, "worker")
    runtime = Runtime(settings, clock=args.clock)
    worker = runtime.start_worker(args.threads)
    print(f"worker running with {args.threads or settings.workers.threads} threads on {settings.broker.url}", flush=True)
    try:
        wait_for_signal()
    finally:
        worker.stop()
        runtime.close()
    return 0


def cmd_scheduler(args) -> int:
    from workers import scheduler
    from workers.runtime import Runtime

    settings = load_settings(args)
    upgrade_if_sqlite(settings)
    runtime = Runtime(settings, clock=args.clock, inline=settings.broker.embedded)
    if args.once:
        scheduler.reschedule(runtime)
        report = scheduler.sweep(runtime)
        print(f"re-enqueued {report.inbound} inbound, {report.outbox} outbox; {report.timers} case timers due")
        runtime.close()
        return 0
    require_shared_broker(settings, "scheduler")
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), daemon=True)
    thread.start()
    try:
        wait_for_signal()
    finally:
        stop.set()
        runtime.close()
    return 0
