"""Long-running processes: run (embedded), serve-smtp, worker, scheduler, poll-imap."""

from __future__ import annotations

import errno
import logging
import socket
import threading

from gateway import __version__, config as config_module
from gateway.db import DatabaseUnavailable
from gateway.cli.common import (
    load_settings,
    stop_on_signals,
    wait_for_signal,
    upgrade_if_sqlite,
    require_shared_broker,
)

log = logging.getLogger("gateway")


class PortTaken(Exception):
    """A server's port is in use by another program (one line for stderr)."""


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raise PortTaken at once when (host, port) cannot be listened on, instead of waiting
    for the server thread to give up."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise PortTaken(f"{what}: cannot listen on {host}:{port}: {error.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortTaken(f"{what}: {host}:{port} is in use by another program (another gateway "
                                    "process?): stop it or choose another port") from None
                raise PortTaken(f"{what}: cannot listen on {host}:{port}: {error.strerror}") from None


def _start_smtp(settings, runtime):
    from gateway.ingress import smtp

    ensure_port_free(settings.smtp_ingress.host, settings.smtp_ingress.port, "[ingress.smtp]")
    return smtp.start(settings, runtime.database, runtime.clock, runtime.enqueue_inbound)


def _safe_url(url: str) -> str:
    """A database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: say nothing of it
        return "(the configured database)"


def cmd_run(args) -> int:
    """Embedded all-in-one: SMTP ingress, in-process workers and the scheduler."""
    from workers import scheduler
    from workers.runtime import Runtime

    settings = load_settings(args)
    signalled = stop_on_signals()
    _warn_example_secret(settings)
    _warn_unsigned(settings)
    upgrade_if_sqlite(settings)
    runtime = Runtime(settings, clock=args.clock)
    worker = runtime.start_worker(role="run")
    try:
        controller = _start_smtp(settings, runtime)
    except BaseException:
        worker.stop()
        runtime.close()
        raise
    try:
        http_server = _start_http(runtime)
    except BaseException:
        controller.stop()
        worker.stop()
        runtime.close()
        raise
    metrics_server = _serve_metrics(runtime)
    stop = threading.Event()
    sweeper = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), name="scheduler", daemon=True)
    sweeper.start()
    pollers = _start_pollers(runtime, stop)
    where = settings.outbound.smtp and f"smarthost {settings.outbound.smtp.host}:{settings.outbound.smtp.port}"
    log.info("dispute-gateway running (%s, run): SMTP on %s:%s, database %s, outbound to %s. Ctrl-C stops.",
             __version__, settings.smtp_ingress.host, settings.smtp_ingress.port, _safe_url(settings.database.url),
             where or settings.outbound.maildir)
    try:
        wait_for_signal(signalled)
    finally:
        log.info("stopping: finishing the work in hand")
        if http_server:
            http_server.stop()
        controller.stop()
        stop.set()
        for poller in pollers:
            poller.join(timeout=5)
        worker.stop()
        if metrics_server:
            metrics_server.shutdown()
        runtime.close()
        log.info("dispute-gateway run stopped")
    return 0


EXAMPLE_SECRET = "change-me-to-a-long-random-secret"  # config.example.toml's


def _warn_example_secret(settings) -> None:
    if EXAMPLE_SECRET in settings.gateway.secret_keys:
        log.warning("[gateway] secret_keys still holds the example key from config.example.toml: anyone who "
                    "has read it can forge case addresses. Set your own before going live.")


def _warn_unsigned(settings) -> None:
    """Mail sent through a smarthost without a DKIM signature lands in spam at the large
    mailbox providers; say so unless signing is on or left to the MTA on purpose."""
    if settings.outbound.smtp is not None and not settings.outbound.dkim.configured:
        log.warning("outgoing mail is not DKIM-signed: set [outbound.dkim] selector and key_file "
                    "(`dispute-gateway dkim keygen`), or enabled = false there if your MTA signs it")


def _imap_hand_off(runtime):
    """(store, report_too_large) of the IMAP pollers: the shared acceptor, as SMTP has it."""
    from gateway.ingress import imap
    from gateway.ingress.acceptor import Acceptor

    acceptor = Acceptor(runtime.settings, runtime.database, runtime.clock, runtime.enqueue_inbound)
    return imap.make_store(acceptor), imap.make_too_large_reporter(
        acceptor, renderer=runtime.renderer, enqueue_delivery=runtime.enqueue_delivery)


def _start_pollers(runtime, stop: threading.Event) -> list[threading.Thread]:
    """One IMAP poller thread per configured mailbox."""
    from gateway.ingress import imap

    store, report = _imap_hand_off(runtime)
    threads = []
    for mailbox in runtime.settings.imap:
        poller = imap.ImapPoller(mailbox, store=store, clock=runtime.clock, stop=stop,
                                 max_message_bytes=runtime.settings.smtp_ingress.max_message_bytes,
                                 report_too_large=report)
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
            store, report = _imap_hand_off(runtime)
            stop = threading.Event()
            total = sum(imap.ImapPoller(m, store=store, clock=runtime.clock, stop=stop,
                                        max_message_bytes=settings.smtp_ingress.max_message_bytes,
                                        report_too_large=report).poll_once()
                        for m in settings.imap)
            print(f"{total} message(s) stored from {len(settings.imap)} mailbox(es)")
            return 0
        require_shared_broker(settings, "poll-imap")
        signalled = stop_on_signals()
        stop = threading.Event()
        _serve_metrics(runtime, required=False)
        threads = _start_pollers(runtime, stop)
        log.info("poll-imap started (%s): reading %s IMAP mailbox(es)", __version__, len(threads))
        try:
            wait_for_signal(signalled)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            log.info("poll-imap stopped")
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


def _start_http(runtime, *, required: bool = False):
    """The HTTP API and status pages ([http]); None when the configuration has no [http]."""
    http = runtime.settings.http
    if not http.enabled:
        if required:
            raise config_module.ConfigError(f"{runtime.settings.source}: [http]: missing, or enabled = false "
                                            "(serve-http serves it)")
        return None
    from gateway.http.server import HttpServer

    ensure_port_free(http.host, http.port, "[http]")
    if not http.api_tokens:
        log.warning("[http] has no api_tokens (nor DISPUTE_GATEWAY_API_TOKENS): every API call is refused; "
                    "status pages work")
    return HttpServer(runtime).start()


def cmd_serve_http(args) -> int:
    """The HTTP API and status pages only (production, behind a TLS reverse proxy)."""
    from workers.runtime import Runtime

    settings = load_settings(args)
    _warn_example_secret(settings)
    require_shared_broker(settings, "serve-http")
    signalled = stop_on_signals()
    runtime = Runtime(settings, clock=args.clock)
    try:
        server = _start_http(runtime, required=True)
    except BaseException:
        runtime.close()
        raise
    try:
        log.info("serve-http started (%s): HTTP API on %s:%s", __version__, settings.http.host, settings.http.port)
        wait_for_signal(signalled)
    finally:
        server.stop()
        runtime.close()
        log.info("serve-http stopped")
    return 0


def cmd_serve_smtp(args) -> int:
    from workers.runtime import Runtime

    settings = load_settings(args)
    _warn_example_secret(settings)
    require_shared_broker(settings, "serve-smtp")
    signalled = stop_on_signals()
    runtime = Runtime(settings, clock=args.clock)
    try:
        controller = _start_smtp(settings, runtime)
    except BaseException:
        runtime.close()
        raise
    metrics_server = None
    try:
        metrics_server = _serve_metrics(runtime)
        log.info("serve-smtp started (%s): SMTP ingress on %s:%s", __version__, settings.smtp_ingress.host,
                 settings.smtp_ingress.port)
        wait_for_signal(signalled)
    finally:
        controller.stop()
        if metrics_server:
            metrics_server.shutdown()
        runtime.close()
        log.info("serve-smtp stopped")
    return 0


def cmd_worker(args) -> int:
    from workers.runtime import Runtime

    settings = load_settings(args)
    require_shared_broker(settings, "worker")
    _warn_unsigned(settings)
    signalled = stop_on_signals()
    runtime = Runtime(settings, clock=args.clock)
    try:
        # waits for the database when it does not answer yet: a restarted worker first
        # records what the journals of this host's stopped processes hold, then sends
        worker = runtime.start_worker(args.threads, stop=signalled)
    except Exception:
        runtime.close()
        raise
    workers = settings.workers
    log.info("worker started (%s): %s inbound, %s delivery, %s timer and %s large-message threads on %s",
             __version__, args.threads or workers.threads, workers.delivery_threads, workers.timer_threads,
             workers.large_messages_at_once, _safe_url(settings.broker.url))
    try:
        wait_for_signal(signalled)
    finally:
        log.info("worker stopping: finishing the jobs in hand")
        worker.stop()
        runtime.close()
        log.info("worker stopped")
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
    signalled = stop_on_signals()
    try:
        runtime.sender()  # an unwritable [outbound] journal_dir stops it now, in one line
    except DatabaseUnavailable:
        pass  # each sweep tries again
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(runtime, stop), daemon=True)
    thread.start()
    log.info("scheduler started (%s): a sweep every %s s", __version__, settings.workers.sweep_interval_seconds)
    try:
        wait_for_signal(signalled)
    finally:
        stop.set()
        thread.join(timeout=30)
        runtime.close()
        log.info("scheduler stopped")
    return 0
