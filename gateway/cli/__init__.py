"""dispute-gateway: the email gateway for e-commerce disputes, and its administration.

Every command reads one TOML configuration file: --config FILE (before or after the
command) or the environment variable DISPUTE_GATEWAY_CONFIG. Run a command with --help
to see what it does and its options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway import __version__, config as config_module, process_memory
from gateway.cases.machine import CaseState
from gateway.clock import Clock, SystemClock
from gateway.cli.admin import (
    cmd_health,
    cmd_db_upgrade,
    cmd_import,
    cmd_cases,
    cmd_merchants,
    cmd_timers,
    cmd_trace,
    cmd_quarantine,
    cmd_outbox,
)
from gateway.cli.common import CONFIG_ENV, LOG_LEVELS, CommandError, configure_logging, end_quietly_on_broken_pipe
from gateway.cli.mailsetup import cmd_dkim_keygen, cmd_dns_records
from gateway.cli.serve import (
    cmd_run,
    cmd_poll_imap,
    cmd_serve_smtp,
    cmd_serve_http,
    cmd_worker,
    cmd_scheduler,
    PortTaken,
)
from gateway.importer import MERCHANT_COLUMNS, OPTIONAL_TRANSACTION_COLUMNS, TRANSACTION_COLUMNS

log = logging.getLogger("gateway")

EPILOG = f"""The configuration file: --config FILE, before or after the command, or {CONFIG_ENV}.
config.example.toml documents every key. Exit status: 0 ok, 1 the command failed (said on
stderr), 2 bad usage or configuration, 3 the database is unreachable."""


def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("options of every command")
    group.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help=f"the TOML configuration file (default: ${CONFIG_ENV})")
    group.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=argparse.SUPPRESS,
                       help="the least important messages logged (default: INFO)")
    group.add_argument("--log-format", choices=["text", "json"], default=argparse.SUPPRESS,
                       help="text (default), or json: one JSON object per line, for log collectors")
    group.add_argument("--log-file", metavar="PATH", default=argparse.SUPPRESS,
                       help="log to this file instead of stderr; it is reopened when logrotate moves it")
    return common


class _Commands:
    """Adds subcommands that all take the common options and describe themselves."""

    def __init__(self, parser: argparse.ArgumentParser, common: argparse.ArgumentParser, dest: str) -> None:
        self._common = common
        self._sub = parser.add_subparsers(dest=dest, required=True, metavar="COMMAND",
                                          title="commands")

    def add(self, name: str, help: str, *, description: str | None = None, func=None) -> argparse.ArgumentParser:
        parser = self._sub.add_parser(name, help=help, description=description or _sentence(help),
                                      parents=[self._common], formatter_class=argparse.RawDescriptionHelpFormatter)
        if func is not None:
            parser.set_defaults(func=func)
        return parser

    def nested(self, parser: argparse.ArgumentParser, dest: str = "action") -> "_Commands":
        return _Commands(parser, self._common, dest)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(prog="dispute-gateway", description=__doc__, epilog=EPILOG, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dispute-gateway {__version__}")
    commands = _Commands(parser, common, "command")

    commands.add("run", "embedded all-in-one: SMTP ingress, HTTP API, workers and scheduler in one process", func=cmd_run,
                 description="Serve SMTP ([ingress.smtp]) and, with an [http] table, the HTTP API, run the workers and the scheduler in this one process, "
                             "and read the [ingress.imap] mailboxes, with the in-memory broker: for a first try "
                             "and small sites on SQLite (the database is upgraded at start). Stops on Ctrl-C or "
                             "SIGTERM after the work in hand.")
    commands.add("serve-smtp", "SMTP ingress only (production; needs a shared broker)", func=cmd_serve_smtp,
                 description="Accept mail from the MTA on [ingress.smtp] host:port: check recipients at RCPT, "
                             "store each message and queue it on the [broker] for the workers; also serves "
                             "/metrics and /healthz ([metrics]).")
    commands.add("serve-http", "HTTP API and status pages only (production; needs a shared broker)",
                 func=cmd_serve_http,
                 description="Serve the JSON API (/v1, /openapi.json) and the parties' status pages on [http] "
                             "host:port, behind a reverse proxy that terminates TLS; opened cases and webhook "
                             "deliveries are queued on the [broker] for the workers.")
    poll = commands.add("poll-imap", "IMAP ingress: read the [ingress.imap] mailboxes", func=cmd_poll_imap,
                        description="Read the [ingress.imap] mailboxes (IDLE where the server has it, else polling), "
                                    "store each message like the SMTP ingress and move or flag it only after it "
                                    "is stored.")
    poll.add_argument("--once", action="store_true", help="read every mailbox once, then exit")
    worker = commands.add("worker", "Dramatiq workers on the configured broker", func=cmd_worker,
                          description="Process stored inbound mail, deliver outgoing mail and run timer jobs "
                                      "taken from the [broker]. Run as many as needed, on any machine that "
                                      "reaches the database and the broker.")
    worker.add_argument("--threads", type=_positive_int, metavar="N",
                        help="threads processing received mail, each one message at a time; deliveries, "
                             "timers and large messages have threads of their own ([workers] delivery_threads, "
                             "timer_threads, large_messages_at_once) (default: [workers] threads)")
    sched = commands.add("scheduler", "re-enqueue lost work and run due timers", func=cmd_scheduler,
                         description="Every [workers] sweep_interval_seconds: queue again inbound and outbox "
                                     "rows whose lease ran out (a lost queue, a killed worker) and the case "
                                     "timers that are due. Several schedulers may run at once.")
    sched.add_argument("--once", action="store_true", help="one sweep, then exit")
    dbp = commands.add("db", "database schema", func=cmd_db_upgrade,
                       description="Bring the database in [database] url (or DISPUTE_GATEWAY_DATABASE_URL) to "
                                   "the latest schema (Alembic migrations). Run it before starting production "
                                   "processes after an install or an upgrade.")
    dbp.add_argument("action", choices=["upgrade"], help="upgrade: apply the migrations not yet applied")
    imp = commands.add("import", "import merchants or transactions from CSV (all or nothing)", func=cmd_import,
                       description=_import_description())
    imp.add_argument("kind", choices=["merchants", "transactions"], help="what the file holds")
    imp.add_argument("file", help="a UTF-8 CSV file with a header line")

    cases = commands.add("cases", "list cases or show one case's history")
    cases_sub = commands.nested(cases)
    listing = cases_sub.add("list", "list cases, newest first", func=cmd_cases)
    listing.add_argument("--state", choices=[state.value for state in CaseState], help="only cases in this state")
    listing.add_argument("--json", action="store_true", help="JSON for scripts (times in UTC) instead of a table")
    show = cases_sub.add("show", "one case: its parties, full history, held messages, bounces and timers to come",
                         func=cmd_cases)
    show.add_argument("reference", help="the case reference, as `cases list` shows it")
    show.add_argument("--json", action="store_true", help="JSON for scripts (times in UTC) instead of text")
    export = cases_sub.add("export", "write the case's evidence bundle (a BagIt ZIP)", func=cmd_cases,
                           description="Write one ZIP laid out as a BagIt bag (RFC 8493): summary, transcript (PDF "
                                       "and HTML), every message as received, attachments, the delivery ledger and "
                                       "case.json with its hash chain (README: Evidence bundles).")
    export.add_argument("reference", help="the case reference, as `cases list` shows it")
    export.add_argument("--out", metavar="FILE", help="the ZIP to write (default: a new file in [export] directory)")
    export.add_argument("--redact", action="store_true",
                        help="hide the parties' addresses and leave out raw messages (for sending outside the provider)")
    verify = cases_sub.add("verify-export", "check a bundle: manifests, hash chain, this gateway's history",
                           func=cmd_cases)
    verify.add_argument("file", help="a ZIP written by `cases export`")

    merchants = commands.add("merchants", "show a merchant and its address status, or clear its flags")
    merchants_sub = commands.nested(merchants)
    mshow = merchants_sub.add("show", "a merchant, its address status and open cases", func=cmd_merchants)
    mshow.add_argument("merchant_id", help="the merchant_id of the merchants CSV")
    mshow.add_argument("--json", action="store_true", help="JSON for scripts instead of text")
    mclear = merchants_sub.add("clear", "clear a merchant's invalid-address flag and delivery trouble",
                               func=cmd_merchants)
    mclear.add_argument("merchant_id", help="the merchant_id of the merchants CSV")
    mclear.add_argument("--note", help="why (kept in each open case's history)")

    timers = commands.add("timers", "run due timers (reminders, escalation, auto-close)")
    timers_sub = commands.nested(timers)
    trun = timers_sub.add("run", "run every timer due now (or as of --now) once, and say what was done",
                          func=cmd_timers)
    trun.add_argument("--now", metavar="ISO8601",
                      help="the time to run as (default: the real clock); without an offset, local time in "
                           "[timers] timezone. Mail is really sent and the history is dated then: for "
                           "catching up after downtime, or for looking ahead on a copy of the database")

    commands.add("health", "check database, broker, smarthost and outbox; exit 1 if any fails", func=cmd_health)

    quarantine = commands.add("quarantine", "messages that failed processing or could not be placed")
    q_sub = commands.nested(quarantine)
    q_list = q_sub.add("list", "the quarantined and unplaced messages, newest first, a page at a time",
                       func=cmd_quarantine)
    q_list.add_argument("--page", type=_positive_int, default=1, metavar="N", help="the page to show (default 1)")
    q_list.add_argument("--per-page", type=_positive_int, default=50, metavar="N",
                        help="messages per page (default 50)")
    q_list.add_argument("--json", action="store_true",
                        help='JSON for scripts: {"total", "page", "pages", "per_page", "messages"}')
    for name, text in (("show", "one message: its envelope, error and raw text"),
                       ("retry", "process a quarantined message again (after a fix)")):
        q_one = q_sub.add(name, text, func=cmd_quarantine)
        q_one.add_argument("id", type=int, help="the id `quarantine list` shows")
        q_one.add_argument("--json", action="store_true", help="JSON for scripts instead of text")

    outbox = commands.add("outbox", "outgoing mail: list, retry a failed delivery")
    o_sub = commands.nested(outbox)
    o_list = o_sub.add("list", "outgoing messages per recipient, newest first", func=cmd_outbox)
    o_list.add_argument("--status", choices=["pending", "sending", "sent", "failed", "superseded"],
                        help="only rows in this status")
    o_list.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    o_retry = o_sub.add("retry", "deliver a failed message again", func=cmd_outbox)
    o_retry.add_argument("id", type=int, help="the id `outbox list` shows")

    tr = commands.add("trace", "show what the gateway would do with one message (sends and keeps nothing)",
                      func=cmd_trace)
    tr.add_argument("file", help="a raw message (.eml)")
    tr.add_argument("--rcpt", action="append", metavar="ADDRESS",
                    help="envelope recipient (repeatable); default: our addresses in the headers")
    tr.add_argument("--from", dest="mail_from", metavar="ADDRESS", help="envelope sender; default: Return-Path, else From")

    dkim_parser = commands.add("dkim", "DKIM keys for signing outgoing mail ([outbound.dkim])")
    dkim_sub = commands.nested(dkim_parser)
    keygen = dkim_sub.add("keygen", "write a new DKIM private key and print the DNS record to publish",
                          func=cmd_dkim_keygen,
                          description="Write a new RSA private key (mode 0600; never over an existing file) and "
                                      "print its DNS TXT record and the [outbound.dkim] lines that use it. Publish "
                                      "the record before the key signs. Run it as the user the gateway runs as, "
                                      "so that user owns the key.")
    keygen.add_argument("--selector", help="the selector, the DNS label of the key (default: dg<year><month>)")
    keygen.add_argument("--out", metavar="FILE",
                        help="where to write the key (default: dkim/<selector>.pem beside the configuration)")
    keygen.add_argument("--bits", type=int, default=2048, choices=[1024, 2048, 3072, 4096],
                        help="key size (default 2048; 1024 is the least verifiers accept)")
    records = commands.add("dns-records", "print every DNS record the gateway's domain needs (MX, SPF, DKIM, DMARC)",
                           func=cmd_dns_records,
                           description="Print, in zone-file form, the records for [gateway] domain: MX (where its "
                                       "mail is received), SPF (who may send with its envelope sender), DKIM (one "
                                       "per [outbound.dkim] key) and DMARC, for the configured set-up.")
    records.add_argument("--mx", metavar="HOST", help="the host that receives the domain's mail (the Postfix in "
                                                      "front of the gateway; default: this machine's name)")
    records.add_argument("--sending-host", action="append", metavar="HOST",
                         help="a host whose address sends the gateway's mail (repeatable; default: the MX host when "
                              "[outbound.smtp] is on loopback, else the smarthost)")
    records.add_argument("--dmarc-policy", choices=["none", "quarantine", "reject"], default="quarantine",
                         help="what receivers do with mail that fails DMARC (default: quarantine)")
    records.add_argument("--dmarc-reports", metavar="ADDRESS",
                         help="where receivers send DMARC aggregate reports (default: postmaster@ the domain)")
    records.add_argument("--ttl", type=_positive_int, default=3600, help="the records' TTL in seconds (default 3600)")
    return parser


def command_tree(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (command path, parser) below `parser`, e.g. (("cases", "list"), <parser>)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from command_tree(sub, (*prefix, name))


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _import_description() -> str:
    optional = ", ".join(OPTIONAL_TRANSACTION_COLUMNS)
    return (
        "Insert or update merchants or transactions from a CSV file, all or nothing: every row is checked "
        "first, and if any is bad, each bad row is reported with its line number (up to 50) and nothing of "
        "the file is imported. Rows are matched by merchant_id or reference; a row already there is "
        "updated.\n\n"
        f"merchants columns:     {', '.join(MERCHANT_COLUMNS)}\n"
        "                       (locale: en or fr, the merchant's notice language)\n"
        f"transactions columns:  {', '.join(TRANSACTION_COLUMNS)}\n"
        f"                       optional: {optional} (en or fr)\n"
        "                       (merchant_id must be imported first; amount like 49.90; currency like EUR;\n"
        "                       transaction_date: a date 2026-11-20 or a time with offset 2026-11-20T10:00+01:00)")


def _settle_options(args: argparse.Namespace) -> None:
    """Defaults for the common options, which may be given before or after the command."""
    args.config = getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or None
    args.log_level = getattr(args, "log_level", "INFO")
    args.log_format = getattr(args, "log_format", "text")
    args.log_file = getattr(args, "log_file", None)


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run one command. `clock` is the process's one clock (the system clock unless a
    caller, such as a test driving the CLI beside a running gateway, gives its own)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _settle_options(args)
    if args.config is None:
        parser.error(f"no configuration file: give --config FILE (before or after the command) or set {CONFIG_ENV}")
    args.clock = clock or SystemClock()
    process_memory.return_large_buffers()  # a large message's buffers go back to the system when freed
    try:
        configure_logging(args.log_level, args.log_format, args.log_file)
    except OSError as error:
        print(f"error: --log-file {args.log_file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        status = _run(args)
        sys.stdout.flush()  # a reader that went away (`| head`) is found here, not at exit
        return status
    except BrokenPipeError:
        return end_quietly_on_broken_pipe()


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except config_module.ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except (CommandError, PortTaken) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a one-line error, the traceback only in debug logs
        from sqlalchemy.exc import OperationalError

        from gateway.db import DatabaseUnavailable

        if isinstance(error, (DatabaseUnavailable, OperationalError)):
            print(f"error: database unreachable: {_database_named(args)}{_first_line(error)}", file=sys.stderr)
            return 3
        raise


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0] if text else type(error).__name__


def _database_named(args) -> str:
    """`<url without its password>: `, or nothing when the configuration cannot be read."""
    from sqlalchemy.engine import make_url

    try:
        url = config_module.load(args.config).database.url
        return f"{make_url(url).render_as_string(hide_password=True)}: "
    except Exception:  # the message is about the database; the configuration was read once already
        return ""


if __name__ == "__main__":
    sys.exit(main())
