"""Configuration: read the TOML file into Settings (gateway/settings.py), validated at start.

Every key is documented in config.example.toml. A missing or wrong key raises
ConfigError with a one-line message naming the key and the file.
Secrets may come from the environment: DISPUTE_GATEWAY_SECRET_KEYS (comma separated)
replaces `gateway.secret_keys`, DISPUTE_GATEWAY_DATABASE_URL replaces `database.url`,
DISPUTE_GATEWAY_SMTP_PASSWORD replaces `outbound.smtp.password`, DISPUTE_GATEWAY_IMAP_PASSWORD the
IMAP password (one mailbox), DISPUTE_GATEWAY_API_TOKENS (`name=token,name=token`) replaces
`[http.api_tokens]`, DISPUTE_GATEWAY_WEBHOOK_SECRETS (`name=secret,...`) gives the secrets of
the `[[http.webhooks]]` endpoints of those names.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from gateway.mail import dkim
from gateway.settings import (  # noqa: F401 - re-exported: callers import them from here
    SENDER_POLICIES,
    LOCALES,
    DEFAULT_TEMPLATES_DIR,
    SenderPolicy,
    INTAKE_CHECKS,
    GatewaySettings,
    DatabaseSettings,
    BrokerSettings,
    SmtpIngressSettings,
    ImapMailbox,
    SmtpOutboundSettings,
    DkimKey,
    DkimSettings,
    OutboundSettings,
    WorkerSettings,
    TimerSettings,
    HygieneSettings,
    BounceSettings,
    MetricsSettings,
    HealthSettings,
    ExportSettings,
    Settings,
    API_SCOPES,
    WEBHOOK_EVENTS,
    ApiToken,
    WebhookEndpoint,
    HttpSettings,
)

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_ADDRESS_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(Exception):
    """A configuration problem, with a message fit for one line of output."""


class _Reader:
    """Typed access to one TOML table, with errors that name the key and the file."""

    def __init__(self, data: dict[str, Any], prefix: str, source: str) -> None:
        self._data = data
        self._prefix = prefix
        self._source = source
        self._used: set[str] = set()

    def _fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self._source}: [{self._prefix}] {key}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = False) -> Any:
        self._used.add(key)
        if key not in self._data:
            if required or default is ...:
                raise self._fail(key, "missing (required)")
            return default
        value = self._data[key]
        if isinstance(value, bool) and kind in (int, float):
            raise self._fail(key, f"expected {kind.__name__}, got a boolean")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self._fail(key, f"expected {expected}, got {type(value).__name__}")
        return value

    def strings(self, key: str, default: Any = ..., *, required: bool = False) -> tuple[str, ...]:
        value = self.get(key, list, default, required=required)
        if not all(isinstance(item, str) and item for item in value):
            raise self._fail(key, "expected a list of non-empty strings")
        return tuple(value)

    def check(self, key: str, ok: bool, problem: str) -> None:
        if not ok:
            raise self._fail(key, problem)

    def table(self, key: str) -> "_Reader | None":
        self._used.add(key)
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, "expected a table")
        prefix = f"{self._prefix}.{key}" if self._prefix else key
        return _Reader(value, prefix, self._source)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise self._fail(unknown[0], "unknown key")


def load(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the TOML file at `path`."""
    environ = os.environ if environ is None else environ
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    return from_dict(data, source=source, environ=environ, base_dir=Path(path).resolve().parent)


def from_dict(
    data: dict[str, Any],
    *,
    source: str = "<dict>",
    environ: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Validate an already-parsed configuration mapping."""
    environ = {} if environ is None else environ
    base_dir = base_dir or Path.cwd()
    root = _Reader(data, "", source)
    gateway = _gateway(root.table("gateway") or _missing_table(source, "gateway"), environ, base_dir)
    database = _database(root.table("database"), environ, base_dir)
    broker = _broker(root.table("broker"))
    ingress = root.table("ingress")
    smtp_ingress = _smtp_ingress(ingress.table("smtp") if ingress else None)
    imap: tuple[ImapMailbox, ...] = ()
    if ingress:
        imap = _imap(ingress, environ)
        ingress.reject_unknown()
    outbound = _outbound(root.table("outbound"), environ, base_dir, source, domain=gateway.domain)
    outbound = _with_journal_dir(outbound, database, environ)
    workers = _workers(root.table("workers"))
    timers = _timers(root.table("timers"))
    hygiene = _hygiene(root.table("hygiene"))
    bounce_settings = _bounces(root.table("bounces"))
    metrics = _metrics(root.table("metrics"))
    health = _health(root.table("health"), workers)
    export = _export(root.table("export"), base_dir)
    http = _http(root.table("http"), environ)
    root.reject_unknown()
    _check_combinations(source, outbound, workers, health)
    return Settings(
        gateway=gateway,
        database=database,
        broker=broker,
        smtp_ingress=smtp_ingress,
        outbound=outbound,
        workers=workers,
        timers=timers,
        imap=imap,
        hygiene=hygiene,
        bounces=bounce_settings,
        metrics=metrics,
        health=health,
        export=export,
        http=http,
        source=source,
    )


def _secret(from_environment: str | None, from_file: str | None) -> str | None:
    """The environment wins over the file (both are read, so neither is an unknown key)."""
    return from_environment or from_file


def _missing_table(source: str, name: str) -> _Reader:
    raise ConfigError(f"{source}: [{name}]: missing (required)")


def _gateway(table: _Reader, environ: dict[str, str], base_dir: Path) -> GatewaySettings:
    domain = table.get("domain", str, required=True).strip().lower()
    table.check("domain", bool(_DOMAIN_RE.match(domain)), f"not a domain name: {domain!r}")
    if environ.get("DISPUTE_GATEWAY_SECRET_KEYS"):
        table.get("secret_keys", list, [])
        keys = tuple(k.strip() for k in environ["DISPUTE_GATEWAY_SECRET_KEYS"].split(",") if k.strip())
    else:
        keys = table.strings("secret_keys", required=True)
    table.check("secret_keys", len(keys) > 0, "at least one key is needed (the first one signs)")
    table.check("secret_keys", all(len(k) >= 16 for k in keys), "each key needs at least 16 characters")
    staff = tuple(a.strip().lower() for a in table.strings("staff_addresses", required=True))
    table.check("staff_addresses", len(staff) > 0, "at least one staff address is needed")
    for address in staff:
        table.check("staff_addresses", bool(_ADDRESS_RE.match(address)), f"not an address: {address!r}")
    locale = table.get("default_locale", str, "en")
    table.check("default_locale", locale in LOCALES, f"must be one of {', '.join(LOCALES)}")
    display_name = table.get("display_name", str, "Disputes")
    policy_table = table.table("sender_policy")
    policy = SenderPolicy()
    if policy_table:
        values: dict = {}
        for party in ("customer", "merchant", "staff"):
            value = policy_table.get(party, str, getattr(policy, party))
            policy_table.check(party, value in SENDER_POLICIES, f"must be one of {', '.join(SENDER_POLICIES)}")
            values[party] = value
        intake = policy_table.get("intake", str, policy.intake)
        policy_table.check("intake", intake in INTAKE_CHECKS, f"must be one of {', '.join(INTAKE_CHECKS)}")
        shared = policy_table.get("shared_domains", list, None)
        if shared is not None:
            policy_table.check("shared_domains", all(isinstance(d, str) and "." in d for d in shared),
                               "a list of domain names")
            values["shared_domains"] = frozenset(d.strip().lower() for d in shared)
        extra = policy_table.get("extra_shared_domains", list, [])
        policy_table.check("extra_shared_domains", all(isinstance(d, str) and "." in d for d in extra),
                           "a list of domain names")
        if extra:
            values["shared_domains"] = values.get("shared_domains", policy.shared_domains) | frozenset(
                d.strip().lower() for d in extra)
        policy_table.reject_unknown()
        policy = SenderPolicy(intake=intake, **values)
    templates = table.get("templates_dir", str, "")
    templates_dir = (base_dir / templates).resolve() if templates else DEFAULT_TEMPLATES_DIR
    table.check("templates_dir", templates_dir.is_dir(), f"no such folder: {templates_dir}")
    table.reject_unknown()
    return GatewaySettings(
        domain=domain,
        secret_keys=keys,
        staff_addresses=staff,
        default_locale=locale,
        display_name=display_name,
        sender_policy=policy,
        templates_dir=templates_dir,
    )


def _database(table: _Reader | None, environ: dict[str, str], base_dir: Path) -> DatabaseSettings:
    from_environment = environ.get("DISPUTE_GATEWAY_DATABASE_URL")
    url = DatabaseSettings.url
    if table is not None:
        url = table.get("url", str, DatabaseSettings.url)
        table.check("url", (from_environment or url).startswith(("sqlite:", "postgresql")),
                    "must be a sqlite:/// or postgresql:// URL")
        table.reject_unknown()
    if from_environment:  # as given: an environment variable is read where the process runs
        return DatabaseSettings(url=from_environment)
    resolved = sqlite_url_from(url, base_dir)
    return DatabaseSettings(url=resolved, note=_older_location_note(url, resolved))


def sqlite_url_from(url: str, base_dir: Path) -> str:
    """A relative SQLite path is relative to the configuration file's folder (like `maildir`
    and `templates_dir`), so every command finds the same database wherever it is run from."""
    relative = _relative_sqlite_path(url)
    if relative is None:
        return url
    _, _, query = url[len("sqlite:///"):].partition("?")
    return f"sqlite:///{(base_dir / relative).resolve()}" + (f"?{query}" if query else "")


def _relative_sqlite_path(url: str) -> str | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path, _, query = url[len(prefix):].partition("?")
    if not path or path == ":memory:" or path.startswith(("/", "file:")) or "uri=true" in query:
        return None
    return path


def _older_location_note(url: str, resolved: str) -> str | None:
    """Versions before 0.2 read a relative SQLite path from the working directory. When a
    file of that name is there and none beside the configuration, say so once at start.

    Never a refusal: the file may as well be another instance's database (a quick start
    run in the same folder), and which it is cannot be told from here."""
    relative = _relative_sqlite_path(url)
    if relative is None:
        return None
    here = Path(resolved[len("sqlite:///"):].partition("?")[0])
    old = (Path.cwd() / relative).resolve()
    if here.exists() or not old.exists() or old == here:
        return None
    return (f"[database] url {url!r} is relative to the configuration file: this instance uses {here}. "
            f"A file {old} exists in the working directory; if it is this instance's database from a "
            f"version before 0.2 (which read relative paths from the working directory), stop the "
            f"gateway and move it to {here}")


def _broker(table: _Reader | None) -> BrokerSettings:
    if table is None:
        return BrokerSettings()
    url = table.get("url", str, "memory://")
    table.check("url", url == "memory://" or url.startswith(("redis://", "rediss://")), "must be memory:// or redis://…")
    table.reject_unknown()
    return BrokerSettings(url=url)


def _smtp_ingress(table: _Reader | None) -> SmtpIngressSettings:
    if table is None:
        return SmtpIngressSettings()
    host = table.get("host", str, SmtpIngressSettings.host)
    port = table.get("port", int, SmtpIngressSettings.port)
    table.check("port", 0 < port < 65536, "must be a TCP port")
    hostname = table.get("hostname", str, SmtpIngressSettings.hostname)
    limit = table.get("max_message_bytes", int, SmtpIngressSettings.max_message_bytes)
    table.check("max_message_bytes", 1024 <= limit <= 32 * 1024 * 1024, "must be between 1024 and 33554432 (32 MiB)")
    table.reject_unknown()
    return SmtpIngressSettings(host=host, port=port, hostname=hostname, max_message_bytes=limit)


def _outbound(table: _Reader | None, environ: dict[str, str], base_dir: Path, source: str, *,
              domain: str) -> OutboundSettings:
    if table is None:
        raise ConfigError(f"{source}: [outbound]: missing: set [outbound.smtp] (a smarthost) or [outbound] maildir")
    smtp_table = table.table("smtp")
    smtp = None
    if smtp_table is not None:
        port = smtp_table.get("port", int, 25)
        smtp_table.check("port", 0 < port < 65536, "must be a TCP port")
        smtp = SmtpOutboundSettings(
            host=smtp_table.get("host", str, required=True),
            port=port,
            starttls=smtp_table.get("starttls", bool, False),
            ssl=smtp_table.get("ssl", bool, False),
            username=smtp_table.get("username", str, None),
            password=_secret(environ.get("DISPUTE_GATEWAY_SMTP_PASSWORD"), smtp_table.get("password", str, None)),
            timeout_seconds=smtp_table.get("timeout_seconds", float, 30.0),
            helo_hostname=smtp_table.get("helo_hostname", str, None),
        )
        smtp_table.check("starttls", not (smtp.starttls and smtp.ssl), "starttls and ssl exclude each other")
        smtp_table.check("username", not smtp.username or smtp.starttls or smtp.ssl or _loopback(smtp.host),
                         f"a password would cross the network in clear text to {smtp.host}: "
                         "set starttls = true or ssl = true")
        smtp_table.reject_unknown()
    maildir_value = table.get("maildir", str, "")
    maildir = (base_dir / maildir_value).resolve() if maildir_value else None
    if smtp is None and maildir is None:
        raise ConfigError(f"{table._source}: [outbound]: set [outbound.smtp] (a smarthost) or maildir")
    attempts = table.get("max_attempts", int, OutboundSettings.max_attempts)
    table.check("max_attempts", attempts >= 1, "must be at least 1")
    base = table.get("retry_base_seconds", int, 60)
    table.check("retry_base_seconds", base >= 1, "must be at least 1")
    ceiling = table.get("retry_max_seconds", int, 3600)
    table.check("retry_max_seconds", ceiling >= base, "must be at least retry_base_seconds")
    dkim_settings = _dkim(table.table("dkim"), base_dir, domain)
    journal = table.get("journal_dir", str, "")
    table.check("journal_dir", not journal or journal.strip() == journal, "no leading or trailing spaces")
    uncertain = table.get("uncertain_retry_seconds", int, OutboundSettings.uncertain_retry_seconds)
    table.check("uncertain_retry_seconds", uncertain >= 1, "must be at least 1")
    table.reject_unknown()
    return OutboundSettings(
        smtp=smtp,
        maildir=None if smtp else maildir,
        max_attempts=attempts,
        retry_base_seconds=base,
        retry_max_seconds=ceiling,
        dkim=dkim_settings,
        journal_dir=(base_dir / journal).resolve() if journal else None,
        uncertain_retry_seconds=uncertain,
    )


def _dkim(table: _Reader | None, base_dir: Path, domain: str) -> DkimSettings:
    """[outbound.dkim]: selector and key_file (the key that signs), and during a rotation
    [[outbound.dkim.extra_keys]] tables (each also signs every message)."""
    if table is None:
        return DkimSettings(domain=domain)
    enabled = table.get("enabled", bool, True)
    keys = [_dkim_key(table, base_dir, enabled, required=enabled)]
    extra = table._data.get("extra_keys", [])
    table._used.add("extra_keys")
    table.check("extra_keys", isinstance(extra, list) and all(isinstance(t, dict) for t in extra),
                "expected [[outbound.dkim.extra_keys]] tables")
    for number, data in enumerate(extra, start=1):
        extra_table = _Reader(data, f"outbound.dkim.extra_keys #{number}", table._source)
        keys.append(_dkim_key(extra_table, base_dir, enabled, required=True))
        extra_table.reject_unknown()
    table.reject_unknown()
    found = tuple(key for key in keys if key is not None)
    selectors = [key.selector for key in found]
    table.check("selector", len(selectors) == len(set(selectors)), "each key needs its own selector")
    return DkimSettings(domain=domain, keys=found, enabled=enabled, configured=True)


def _dkim_key(table: _Reader, base_dir: Path, check_file: bool, *, required: bool) -> DkimKey | None:
    selector = table.get("selector", str, None, required=required)
    key_file = table.get("key_file", str, None, required=required)
    if selector is None and key_file is None:
        return None
    table.check("selector", selector is not None, "missing (required with key_file)")
    table.check("key_file", key_file is not None, "missing (required with selector)")
    selector = selector.strip().lower()
    table.check("selector", dkim.is_selector(selector),
                f"not a DNS label (letters, digits and '-', at most 63): {selector!r}")
    path = (base_dir / key_file).resolve()
    if check_file:
        try:
            dkim.read_private_key(path)
        except dkim.KeyProblem as problem:
            table.check("key_file", False, str(problem))
    return DkimKey(selector=selector, key_file=path)


JOURNAL_FOLDER = "sent-journal"


def _with_journal_dir(outbound: OutboundSettings, database: DatabaseSettings,
                      environ: dict[str, str]) -> OutboundSettings:
    """The sent journal's folder when `journal_dir` is not set: beside an SQLite database;
    else systemd's state directory ($STATE_DIRECTORY, from StateDirectory=); else the
    user's state folder ($XDG_STATE_HOME or ~/.local/state, under dispute-gateway/). It must
    be a local disk that survives a reboot, the same for every process of one host."""
    from dataclasses import replace

    if outbound.journal_dir is not None:
        return outbound
    sqlite_path = _sqlite_file(database.url)
    if sqlite_path is not None:
        folder = sqlite_path.parent / JOURNAL_FOLDER
    elif environ.get("STATE_DIRECTORY"):
        folder = Path(environ["STATE_DIRECTORY"].split(":")[0]) / JOURNAL_FOLDER
    else:
        state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
        folder = Path(state) / "dispute-gateway" / JOURNAL_FOLDER
    return replace(outbound, journal_dir=folder)


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path, _, query = url[len(prefix):].partition("?")
    if not path or path == ":memory:" or path.startswith("file:") or "uri=true" in query:
        return None
    return Path(path)


def _workers(table: _Reader | None) -> WorkerSettings:
    if table is None:
        return WorkerSettings()
    d = WorkerSettings()
    threads = {}
    for key in ("threads", "delivery_threads", "timer_threads"):
        threads[key] = table.get(key, int, getattr(d, key))
        table.check(key, 1 <= threads[key] <= 64, "must be between 1 and 64")
    heartbeat = table.get("heartbeat_seconds", int, d.heartbeat_seconds)
    table.check("heartbeat_seconds", heartbeat >= 1, "must be at least 1")
    lease = table.get("lease_seconds", int, 300)
    table.check("lease_seconds", lease >= 10, "must be at least 10")
    sweep = table.get("sweep_interval_seconds", int, 30)
    table.check("sweep_interval_seconds", sweep >= 1, "must be at least 1")
    at_once = table.get("large_messages_at_once", int, WorkerSettings.large_messages_at_once)
    table.check("large_messages_at_once", 1 <= at_once <= 64, "must be between 1 and 64")
    large = table.get("large_message_bytes", int, WorkerSettings.large_message_bytes)
    table.check("large_message_bytes", large >= 1024, "must be at least 1024")
    retries = {}
    for key, minimum in (("inbound_max_attempts", 1), ("inbound_retry_seconds", 1),
                         ("processing_time_limit_seconds", 5), ("quarantine_digest_minutes", 1)):
        retries[key] = table.get(key, int, getattr(WorkerSettings, key))
        table.check(key, retries[key] >= minimum, f"must be at least {minimum}")
    table.reject_unknown()
    return WorkerSettings(**threads, heartbeat_seconds=heartbeat, lease_seconds=lease, sweep_interval_seconds=sweep,
                          large_messages_at_once=at_once, large_message_bytes=large, **retries)


def _health(table: _Reader | None, workers: WorkerSettings) -> HealthSettings:
    """[health]; the staleness limits not given follow the intervals they watch."""
    d = HealthSettings()
    derived = {"worker_stale_seconds": max(d.worker_stale_seconds, 3 * workers.heartbeat_seconds),
               "scheduler_stale_seconds": max(d.scheduler_stale_seconds, 3 * workers.sweep_interval_seconds)}
    values = {}
    for key in ("inbound_wait_seconds", "delivery_retry_seconds", "worker_stale_seconds", "scheduler_stale_seconds"):
        values[key] = table.get(key, int, derived.get(key, getattr(d, key))) if table else derived.get(key, getattr(d, key))
        if table:
            table.check(key, values[key] >= 10, "must be at least 10")
    if table:
        table.reject_unknown()
    return HealthSettings(**values)


def _check_combinations(source: str, outbound: OutboundSettings, workers: WorkerSettings,
                        health: HealthSettings) -> None:
    """Settings that are each fine but impossible together, refused with one line."""
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {problem}")

    smtp = outbound.smtp
    if smtp is not None and workers.lease_seconds < 2 * smtp.timeout_seconds:
        # one delivery can wait timeout_seconds for the connection and again for each answer:
        # a claim that ran out meanwhile would be taken for a dead sender's and sent twice
        raise fail("[workers] lease_seconds", f"{workers.lease_seconds} is shorter than twice [outbound.smtp] "
                   f"timeout_seconds ({smtp.timeout_seconds:g}): a slow delivery would be sent twice; "
                   f"set lease_seconds to at least {int(2 * smtp.timeout_seconds + 0.999)}")
    if 3 * workers.heartbeat_seconds > workers.lease_seconds:
        raise fail("[workers] heartbeat_seconds", f"{workers.heartbeat_seconds} leaves fewer than 3 heartbeats per "
                   f"lease_seconds ({workers.lease_seconds}): one late heartbeat would lose a live claim")
    if outbound.uncertain_retry_seconds < 2 * workers.heartbeat_seconds:
        raise fail("[outbound] uncertain_retry_seconds", f"{outbound.uncertain_retry_seconds} is shorter than two "
                   f"[workers] heartbeat_seconds ({workers.heartbeat_seconds}): a sender that got its 250 would "
                   "not have the time to record it before the retry")
    if health.worker_stale_seconds < 2 * workers.heartbeat_seconds:
        raise fail("[health] worker_stale_seconds", f"{health.worker_stale_seconds} is shorter than two "
                   f"[workers] heartbeat_seconds ({workers.heartbeat_seconds}): live workers would be reported dead")
    if health.scheduler_stale_seconds < 2 * workers.sweep_interval_seconds:
        raise fail("[health] scheduler_stale_seconds", f"{health.scheduler_stale_seconds} is shorter than two "
                   f"[workers] sweep_interval_seconds ({workers.sweep_interval_seconds}): a running scheduler "
                   "would be reported stopped")


_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _loopback(host: str) -> bool:
    """Whether `host` names this machine (where clear text never leaves it)."""
    import ipaddress

    name = host.strip().strip("[]").rstrip(".").lower()
    if name in ("localhost", "localhost.localdomain", "localhost6", "ip6-localhost", "ip6-loopback"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timers(table: _Reader | None) -> TimerSettings:
    if table is None:
        return TimerSettings()
    d = TimerSettings()
    tz = table.get("timezone", str, d.timezone)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:
        table.check("timezone", False, f"unknown time zone {tz!r}")
    country = table.get("country", str, d.country)
    try:
        import holidays

        holidays.country_holidays(country)
    except Exception:
        table.check("country", False, f"no public-holiday calendar for {country!r}")
    reminders = tuple(table.get("merchant_reminder_business_days", list, list(d.merchant_reminder_business_days)))
    escalation = table.get("escalation_business_days", int, d.escalation_business_days)
    table.check("merchant_reminder_business_days", all(_whole(n) and 0 < n < escalation for n in reminders)
                and list(reminders) == sorted(reminders), "increasing whole numbers below escalation_business_days")
    followup = tuple(table.get("staff_followup_business_days", list, list(d.staff_followup_business_days)))
    table.check("staff_followup_business_days", all(_whole(n) and n > 0 for n in followup)
                and list(followup) == sorted(set(followup)), "increasing positive whole numbers")
    request = tuple(table.get("staff_request_reminder_business_days", list, list(d.staff_request_reminder_business_days)))
    table.check("staff_request_reminder_business_days", all(_whole(n) and n > 0 for n in request)
                and list(request) == sorted(set(request)), "increasing positive whole numbers")
    customer = tuple(table.get("customer_reminder_days", list, list(d.customer_reminder_days)))
    table.check("customer_reminder_days", all(_whole(n) and n > 0 for n in customer), "positive whole numbers")
    values = {}
    for key in ("payment_cutoff", "business_day_end"):
        values[key] = table.get(key, str, getattr(d, key))
        table.check(key, bool(_TIME_RE.match(values[key])), "expected HH:MM")
    ints = {}
    for key in ("payment_staff_reminders", "card_window_warning_days", "preclose_notice_days", "autoclose_days",
                "autoclose_quiet_days", "payment_answer_business_days", "payment_answer_max_business_days",
                "payment_answer_warning_business_days"):
        ints[key] = table.get(key, int, getattr(d, key))
        table.check(key, ints[key] >= 0, "must not be negative")
    table.check("preclose_notice_days", ints["preclose_notice_days"] < ints["autoclose_days"], "must be below autoclose_days")
    table.check("payment_answer_max_business_days",
                ints["payment_answer_business_days"] <= ints["payment_answer_max_business_days"],
                "must not be below payment_answer_business_days")
    table.check("payment_answer_warning_business_days",
                not ints["payment_answer_business_days"]
                or 1 <= ints["payment_answer_warning_business_days"] < ints["payment_answer_business_days"],
                "must be at least 1 and below payment_answer_business_days")
    table.reject_unknown()
    return TimerSettings(timezone=tz, country=country, merchant_reminder_business_days=reminders,
                         escalation_business_days=escalation, customer_reminder_days=customer,
                         staff_followup_business_days=followup, staff_request_reminder_business_days=request, **values, **ints)


def _imap(ingress: _Reader, environ: dict[str, str]) -> tuple[ImapMailbox, ...]:
    """[[ingress.imap]] tables (or one [ingress.imap] table): the mailboxes to read."""
    ingress._used.add("imap")
    raw = ingress._data.get("imap")
    if raw is None:
        return ()
    tables = [raw] if isinstance(raw, dict) else raw
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        ingress.check("imap", False, "expected a table or an array of tables")
    mailboxes = []
    for number, data in enumerate(tables, start=1):
        table = _Reader(data, f"ingress.imap #{number}" if len(tables) > 1 else "ingress.imap", ingress._source)
        security = table.get("security", str, "tls")
        table.check("security", security in ("tls", "starttls", "plain"), "must be tls, starttls or plain")
        port = table.get("port", int, 993 if security == "tls" else 143)
        table.check("port", 0 < port < 65536, "must be a TCP port")
        username = table.get("username", str, required=True)
        password = environ.get("DISPUTE_GATEWAY_IMAP_PASSWORD") if len(tables) == 1 else None
        password = _secret(password, table.get("password", str, None))
        table.check("password", bool(password), "missing (or set DISPUTE_GATEWAY_IMAP_PASSWORD)")
        processed = table.get("processed_folder", str, "Processed")
        batch = table.get("batch_size", int, 100)
        table.check("batch_size", 1 <= batch <= 5000, "must be between 1 and 5000")
        host = table.get("host", str, required=True)
        table.check("security", security != "plain" or _loopback(host),
                    f"plain would send the password in clear text to {host}: plain is for loopback only")
        mailboxes.append(ImapMailbox(
            host=host, username=username, password=password, port=port,
            security=security, folder=table.get("folder", str, "INBOX"), processed_folder=processed or None,
            verify_certificates=table.get("verify_certificates", bool, True), batch_size=batch,
            poll_interval_seconds=table.get("poll_interval_seconds", float, 60.0),
            idle_timeout_seconds=table.get("idle_timeout_seconds", float, 300.0),
        ))
        table.reject_unknown()
    return tuple(mailboxes)


def _hygiene(table: _Reader | None) -> HygieneSettings:
    if table is None:
        return HygieneSettings()
    d = HygieneSettings()
    ints = {}
    for key in ("notices_per_address_per_hour", "notices_per_address_per_day", "freeze_after_messages",
                "freeze_window_minutes", "soft_bounce_hard_after_hours", "max_attachments", "max_attachment_bytes",
                "max_header_fields", "max_header_bytes", "max_header_field_bytes", "max_mime_parts", "max_mime_depth"):
        ints[key] = table.get(key, int, getattr(d, key))
        table.check(key, ints[key] >= 1, "must be at least 1")
    table.check("max_header_field_bytes", ints["max_header_field_bytes"] >= 998,
                "must be at least 998 (one header line)")
    table.check("max_mime_depth", ints["max_mime_depth"] <= 100,
                "must be at most 100 (the email parser recurses once per level)")
    authserv = table.get("authserv_id", str, "") or None
    extensions = table.get("blocked_extensions", list, None)
    if extensions is not None:
        table.check("blocked_extensions", all(isinstance(e, str) and e for e in extensions), "a list of extensions")
        extensions = tuple(e.lower().lstrip(".") for e in extensions)
    block = table.get("block_remote_images", bool, True)
    checks = {"check_dkim": table.get("check_dkim", bool, False), "check_spf": table.get("check_spf", bool, False)}
    timeout = table.get("dns_timeout_seconds", float, d.dns_timeout_seconds)
    table.check("dns_timeout_seconds", 0 < timeout <= 60, "must be between 0 and 60 seconds")
    servers = table.strings("dns_servers", ())
    relays = table.strings("trusted_relays", d.trusted_relays)
    for network in relays:
        table.check("trusted_relays", _network(network), f"not an IP network: {network!r}")
    table.reject_unknown()
    return HygieneSettings(authserv_id=authserv, blocked_extensions=extensions, block_remote_images=block,
                           dns_timeout_seconds=timeout, dns_servers=servers, trusted_relays=relays,
                           **checks, **ints)


def _network(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return False


ANALYSERS = ("none", "auto", "sisimai")


def _bounces(table: _Reader | None) -> BounceSettings:
    if table is None:
        return BounceSettings()
    d = BounceSettings()
    delays = table.get("retry_after_minutes", list, list(d.retry_after_minutes))
    table.check("retry_after_minutes", all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in delays)
                and len(delays) <= 20, "a list of at most 20 whole numbers of minutes, each at least 1 ([] for no retry)")
    ints = {}
    for key in ("unreachable_after_hours", "unreachable_after_reports", "notify_staff_every_hours"):
        ints[key] = table.get(key, int, getattr(d, key))
        table.check(key, ints[key] >= 1, "must be at least 1")
    analyser = table.get("analyser", str, d.analyser)
    table.check("analyser", analyser in ANALYSERS, "one of " + ", ".join(f'"{a}"' for a in ANALYSERS))
    timeout = table.get("analyser_timeout_seconds", float, d.analyser_timeout_seconds)
    table.check("analyser_timeout_seconds", 0 < timeout <= 300, "seconds, more than 0 and at most 300")
    table.reject_unknown()
    return BounceSettings(retry_after_minutes=tuple(delays), **ints, analyser=analyser,
                          analyser_timeout_seconds=float(timeout))


def _metrics(table: _Reader | None) -> MetricsSettings:
    if table is None:
        return MetricsSettings()
    port = table.get("port", int, 9464)
    table.check("port", 0 < port < 65536, "must be a TCP port")
    stuck = table.get("outbox_stuck_seconds", int, 900)
    table.check("outbox_stuck_seconds", stuck >= 60, "must be at least 60")
    settings = MetricsSettings(enabled=table.get("enabled", bool, True), host=table.get("host", str, "127.0.0.1"),
                               port=port, outbox_stuck_seconds=stuck)
    table.reject_unknown()
    return settings


def _export(table: _Reader | None, base_dir: Path) -> ExportSettings:
    d = ExportSettings()
    if table is None:
        return ExportSettings(directory=(base_dir / d.directory).resolve())
    directory = table.get("directory", str, str(d.directory))
    table.check("directory", bool(directory.strip()), "must name a folder")
    ints = {}
    for key, least in (("max_attachment_bytes", 1024), ("pdf_max_pages", 1), ("pdf_max_bytes", 100_000)):
        ints[key] = table.get(key, int, getattr(d, key))
        table.check(key, ints[key] >= least, f"must be at least {least}")
    fonts = {}
    for key in ("pdf_font", "pdf_font_bold"):
        value = table.get(key, str, "")
        path = (base_dir / value).resolve() if value else None
        table.check(key, path is None or (path.is_file() and path.suffix.lower() == ".ttf"),
                    f"no TrueType font file {path}")
        fonts[key] = path
    table.reject_unknown()
    return ExportSettings(directory=(base_dir / directory).resolve(), **ints, **fonts)


MIN_TOKEN_CHARS = 24


def _http(table: _Reader | None, environ: dict[str, str]) -> HttpSettings:
    """[http]: the API server, its tokens and scopes, webhook endpoints, status links."""
    if table is None:
        return HttpSettings()
    d = HttpSettings()
    host = table.get("host", str, d.host)
    port = table.get("port", int, d.port)
    table.check("port", 0 < port < 65536, "must be a TCP port")
    public_url = table.get("public_url", str, f"http://{host}:{port}").rstrip("/")
    table.check("public_url", public_url.startswith(("http://", "https://")), "must start with http:// or https://")
    days = table.get("status_link_days", int, d.status_link_days)
    table.check("status_link_days", 1 <= days <= 3650, "must be from 1 to 3650")
    timeout = table.get("webhook_timeout_seconds", float, d.webhook_timeout_seconds)
    table.check("webhook_timeout_seconds", 0 < timeout <= 60, "must be more than 0 and at most 60")
    idempotency_hours = table.get("idempotency_hours", int, d.idempotency_hours)
    table.check("idempotency_hours", 1 <= idempotency_hours <= 24 * 90, "must be from 1 to 2160 (90 days)")
    tokens_table = table.table("api_tokens")
    scopes_table = table.table("scopes")
    named: dict[str, str] = {}
    if tokens_table is not None:
        for name in list(tokens_table._data):
            named[name] = tokens_table.get(name, str)
    if environ.get("DISPUTE_GATEWAY_API_TOKENS"):
        named = {}
        for item in environ["DISPUTE_GATEWAY_API_TOKENS"].split(","):
            name, sep, token = item.strip().partition("=")
            if not item.strip():
                continue
            table.check("api_tokens", bool(sep and name.strip()),
                        "DISPUTE_GATEWAY_API_TOKENS: expected name=token, comma separated")
            named[name.strip()] = token.strip()
    tokens = []
    for name, token in named.items():
        table.check("api_tokens", bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)),
                    f"token name {name!r}: letters, digits, _ . - only")
        table.check("api_tokens", len(token) >= MIN_TOKEN_CHARS,
                    f"token {name!r}: at least {MIN_TOKEN_CHARS} characters")
        scopes = scopes_table.strings(name) if scopes_table is not None and name in scopes_table._data else API_SCOPES
        bad = [s for s in scopes if s not in API_SCOPES]
        table.check("scopes", not bad, f"{name}: unknown scope {bad[0] if bad else ''!r} "
                                       f"(known: {', '.join(API_SCOPES)})")
        tokens.append(ApiToken(name, token, tuple(scopes)))
    table.check("api_tokens", len({t.token for t in tokens}) == len(tokens), "two names share one token")
    if scopes_table is not None:
        for name in list(scopes_table._data):
            scopes_table.check(name, name in named, "no API token has this name")
    hooks = []
    secrets_from_env: dict[str, list[str]] = {}  # name=new,name=old: the first signs, all are signed with
    for item in environ.get("DISPUTE_GATEWAY_WEBHOOK_SECRETS", "").split(","):
        name, sep, secret = item.strip().partition("=")
        if sep and name.strip():
            secrets_from_env.setdefault(name.strip(), []).append(secret.strip())
    for index, item in enumerate(table.get("webhooks", list, [])):
        table.check("webhooks", isinstance(item, dict), "expected [[http.webhooks]] tables")
        hook = _Reader(item, f"http.webhooks.{index}", table._source)
        url = hook.get("url", str, required=True)
        hook.check("url", url.startswith(("http://", "https://")), "must start with http:// or https://")
        name = hook.get("name", str, f"webhook{index}")
        hook.check("name", bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)), "letters, digits, _ . - only")
        if name in secrets_from_env:
            secret, *old_secrets = secrets_from_env[name]
        else:
            secret, old_secrets = hook.get("secret", str, ""), hook.strings("old_secrets", [])
        hook.check("secret", len(secret) >= MIN_TOKEN_CHARS, f"at least {MIN_TOKEN_CHARS} characters "
                                                               "(or DISPUTE_GATEWAY_WEBHOOK_SECRETS name=secret)")
        hook.check("old_secrets", all(len(old) >= MIN_TOKEN_CHARS for old in old_secrets),
                   f"each at least {MIN_TOKEN_CHARS} characters")
        events = hook.strings("events", WEBHOOK_EVENTS)
        bad = [e for e in events if e not in WEBHOOK_EVENTS]
        hook.check("events", not bad, f"unknown event {bad[0] if bad else ''!r} (known: {', '.join(WEBHOOK_EVENTS)})")
        hook.reject_unknown()
        hooks.append(WebhookEndpoint(name, url, secret, tuple(events), tuple(old_secrets)))
    table.check("webhooks", len({h.name for h in hooks}) == len(hooks), "two endpoints share one name")
    settings = HttpSettings(enabled=table.get("enabled", bool, True), host=host, port=port, public_url=public_url,
                            status_link_days=days, api_tokens=tuple(tokens), webhooks=tuple(hooks),
                            webhook_timeout_seconds=timeout, idempotency_hours=idempotency_hours)
    table.reject_unknown()
    return settings
