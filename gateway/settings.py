"""Settings: the frozen objects the rest of the gateway receives.

`gateway.config.load(path)` reads and validates them from TOML; config.example.toml
documents every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


SENDER_POLICIES = ("strict", "domain")
LOCALES = ("en", "fr")
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# Domains where anyone can open an address: the `domain` policy never vouches for them.
SHARED_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "outlook.fr", "hotmail.com", "hotmail.fr", "hotmail.co.uk",
    "hotmail.de", "hotmail.it", "hotmail.es", "live.com", "live.fr", "live.co.uk", "msn.com", "yahoo.com",
    "yahoo.fr", "yahoo.co.uk", "yahoo.de", "yahoo.it", "yahoo.es", "ymail.com", "rocketmail.com", "icloud.com",
    "me.com", "mac.com", "aol.com", "aol.fr", "gmx.com", "gmx.de", "gmx.net", "gmx.fr", "gmx.at", "web.de",
    "mail.com", "email.com", "protonmail.com", "protonmail.ch", "proton.me", "pm.me", "zoho.com", "zohomail.eu",
    "yandex.ru", "yandex.com", "mail.ru", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net",
    "bbox.fr", "numericable.fr", "aliceadsl.fr", "club-internet.fr", "t-online.de", "freenet.de", "libero.it",
    "virgilio.it", "tiscali.it", "alice.it", "qq.com", "163.com", "126.com", "fastmail.com", "fastmail.fm",
    "hey.com", "tutanota.com", "tuta.io", "seznam.cz", "wp.pl", "o2.pl", "interia.pl", "onet.pl", "btinternet.com",
    "sky.com", "comcast.net", "verizon.net", "att.net", "mailbox.org", "posteo.de", "telenet.be", "skynet.be",
})


@dataclass(frozen=True)
class Limits:
    max_header_fields: int = 1_000  # per header block (the message's and each part's)
    max_header_bytes: int = 256 * 1024  # per header block
    max_header_field_bytes: int = 32 * 1024  # one field, folded lines included
    max_parts: int = 500  # MIME parts, nested ones included
    max_depth: int = 20  # multiparts and attached messages inside each other


INTAKE_CHECKS = ("envelope", "confirm")


@dataclass(frozen=True)
class SenderPolicy:
    """Who may write as a party (gateway/mail/senders.py; README: Sender trust)."""

    customer: str = "strict"
    merchant: str = "domain"
    staff: str = "strict"
    # intake: "envelope": a new case opens when From and envelope sender are the customer's
    # (or authentication vouches for the From); anything else asks her to confirm from her
    # own mailbox. "confirm": every intake message that authentication does not vouch for asks.
    intake: str = "envelope"
    shared_domains: frozenset[str] = SHARED_DOMAINS  # never vouched for by the `domain` policy

    def for_party(self, party: str) -> str:
        return {"c": self.customer, "m": self.merchant, "s": self.staff}[party]


@dataclass(frozen=True)
class GatewaySettings:
    domain: str
    secret_keys: tuple[str, ...]
    staff_addresses: tuple[str, ...]
    default_locale: str = "en"
    display_name: str = "Disputes"
    sender_policy: SenderPolicy = field(default_factory=SenderPolicy)
    templates_dir: Path = DEFAULT_TEMPLATES_DIR

    @property
    def intake_local_parts(self) -> dict[str, str | None]:
        """Intake local part -> category it sets (None: ask the customer)."""
        return {"disputes": None, "delivery": "delivery", "payment": "payment"}


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///dispute-gateway.db"
    # Set when a relative SQLite path also names a file in the working directory (where
    # versions before 0.2 looked): said to the administrator at start, never acted on.
    note: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BrokerSettings:
    url: str = "memory://"

    @property
    def embedded(self) -> bool:
        return self.url == "memory://"


@dataclass(frozen=True)
class SmtpIngressSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "localhost"
    max_message_bytes: int = 26_214_400


@dataclass(frozen=True)
class ImapMailbox:
    """One mailbox the IMAP ingress reads."""

    host: str
    username: str
    password: str
    port: int = 993
    security: str = "tls"  # tls | starttls | plain
    folder: str = "INBOX"
    processed_folder: str | None = "Processed"  # None: flag \\Seen instead of moving
    verify_certificates: bool = True
    batch_size: int = 100
    poll_interval_seconds: float = 60.0
    idle_timeout_seconds: float = 300.0


@dataclass(frozen=True)
class SmtpOutboundSettings:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0
    helo_hostname: str | None = None


@dataclass(frozen=True)
class DkimKey:
    """One DKIM key: its selector (the DNS name `<selector>._domainkey.<domain>`) and the
    PEM file of its RSA private key."""

    selector: str
    key_file: Path


@dataclass(frozen=True)
class DkimSettings:
    """[outbound.dkim]: outgoing mail is signed with every key in `keys` (d=`domain`, the
    gateway's domain). `configured` is False when the table is absent; `enabled` False when
    the administrator turned our signing off (the MTA signs instead)."""

    domain: str = ""
    keys: tuple[DkimKey, ...] = ()
    enabled: bool = False
    configured: bool = False

    @property
    def signing(self) -> bool:
        return self.enabled and bool(self.keys)


@dataclass(frozen=True)
class OutboundSettings:
    smtp: SmtpOutboundSettings | None = None
    maildir: Path | None = None
    max_attempts: int = 48  # with the default backoff, more than the 24 hours a soft bounce is given
    retry_base_seconds: int = 60
    retry_max_seconds: int = 3600
    dkim: DkimSettings = field(default_factory=DkimSettings)
    # Where each process journals (fsync'd) the smarthost's 250s until the database has them.
    journal_dir: Path | None = None
    # An attempt whose outcome is unknown (connection lost after the data, sender stopped
    # mid-delivery) is retried once after this long, with the same Message-ID.
    uncertain_retry_seconds: int = 120


@dataclass(frozen=True)
class WorkerSettings:
    threads: int = 4  # inbound processing (queue "inbound")
    delivery_threads: int = 4  # deliveries to the smarthost (queue "outbound")
    timer_threads: int = 1  # case timers (queue "timers")
    # A claim (a delivery being sent) is renewed every heartbeat_seconds by its process; one
    # not renewed for lease_seconds belongs to a process that stopped.
    heartbeat_seconds: int = 5
    lease_seconds: int = 300
    sweep_interval_seconds: int = 30
    # Parsing and re-composing a message costs several times its size in memory for a
    # moment; messages over large_message_bytes are processed and sent on their own queue
    # ("large") by this many threads per process.
    large_messages_at_once: int = 1
    large_message_bytes: int = 2_097_152
    # A message whose processing fails (or runs past the time limit, or whose worker dies)
    # is tried this many times in all, retry_seconds apart and doubling, then quarantined.
    inbound_max_attempts: int = 3
    inbound_retry_seconds: int = 30
    processing_time_limit_seconds: int = 120
    # Staff hear of a quarantined or unplaced message at once, then at most once per this
    # many minutes in one digest of the others.
    quarantine_digest_minutes: int = 60


@dataclass(frozen=True)
class TimerSettings:
    """Case timers ([timers]; README "How mail flows"). Business days are Monday to Friday minus the
    public holidays of `country`, in `timezone`."""

    timezone: str = "Europe/Paris"
    country: str = "FR"
    merchant_reminder_business_days: tuple[int, ...] = (2, 5)
    escalation_business_days: int = 7
    payment_cutoff: str = "15:00"  # payment cases opened later are due the next business day
    business_day_end: str = "17:00"  # when a payment case without a staff answer is reminded
    payment_staff_reminders: int = 2
    # A case that reached staff otherwise (escalated, dead merchant address, unanswered
    # category question) and that no staff member has written on since: staff reminders.
    staff_followup_business_days: tuple[int, ...] = (2, 5)
    # Staff asked the merchant with `#to merchant` on a case they own (payment, escalated)
    # and it has not answered: merchant reminders after these business days.
    staff_request_reminder_business_days: tuple[int, ...] = (1,)
    # Open payment cases: staff are warned `payment_answer_warning_business_days` before the
    # written-answer deadline (PSD2 Art. 101(2), CMF L133-45: 15 business days, 35 at most
    # after a holding reply), where the provider is the PSP complained about.
    payment_answer_business_days: int = 15
    payment_answer_max_business_days: int = 35
    payment_answer_warning_business_days: int = 3
    customer_reminder_days: tuple[int, ...] = (7, 14)
    card_window_warning_days: int = 100
    preclose_notice_days: int = 170
    autoclose_days: int = 180
    autoclose_quiet_days: int = 14

    @staticmethod
    def hour_minute(value: str) -> tuple[int, int]:
        hour, minute = value.split(":")
        return int(hour), int(minute)


@dataclass(frozen=True)
class HygieneSettings:
    """Loop protection, sender trust and content safety (README: Mail hygiene)."""

    notices_per_address_per_hour: int = 5
    notices_per_address_per_day: int = 20
    freeze_after_messages: int = 30  # messages into one case within freeze_window_minutes
    freeze_window_minutes: int = 10
    soft_bounce_hard_after_hours: int = 24
    authserv_id: str | None = None  # Authentication-Results are trusted only from this id
    # The gateway's own checks (gateway/authentication.py), used when no trusted
    # Authentication-Results are present: DKIM signatures, SPF of the envelope sender for the
    # connecting client (not for trusted_relays: the MTA in front of us), the DMARC record.
    check_dkim: bool = False
    check_spf: bool = False
    dns_timeout_seconds: float = 5.0
    dns_servers: tuple[str, ...] = ()  # empty: the system's resolver
    trusted_relays: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    block_remote_images: bool = True
    max_attachments: int = 20
    max_attachment_bytes: int = 20 * 1024 * 1024
    blocked_extensions: tuple[str, ...] | None = None  # None: the built-in list
    # Bounded work per message (gateway.mail.limits): what is past these is not processed.
    max_header_fields: int = Limits.max_header_fields
    max_header_bytes: int = Limits.max_header_bytes
    max_header_field_bytes: int = Limits.max_header_field_bytes
    max_mime_parts: int = Limits.max_parts
    max_mime_depth: int = Limits.max_depth

    @property
    def limits(self) -> Limits:
        return Limits(max_header_fields=self.max_header_fields, max_header_bytes=self.max_header_bytes,
                      max_header_field_bytes=self.max_header_field_bytes, max_parts=self.max_mime_parts,
                      max_depth=self.max_mime_depth)


@dataclass(frozen=True)
class BounceSettings:
    """What delivery reports lead to (README: Delivery reports and their consequences)."""

    # A message refused for a temporary reason (full mailbox, block, system error) is sent
    # again after each of these delays in turn, then left failed.
    retry_after_minutes: tuple[int, ...] = (60, 240, 720)
    # The merchant counts as unreachable (its open cases escalate) once its trouble has
    # lasted this long, or after this many trouble reports, whichever comes first.
    unreachable_after_hours: int = 24
    unreachable_after_reports: int = 5
    # Staff hear of a merchant's (or a case's customer's) delivery trouble at most this often.
    notify_staff_every_hours: int = 24
    # Who reads a report beside our own detectors: "sisimai" (libsisimai-perl, required),
    # "auto" (Sisimai where it is installed), "none" (our detectors alone). README: Delivery reports.
    analyser: str = "none"
    analyser_timeout_seconds: float = 10.0  # past this, the report is read by our detectors alone


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics and the health endpoint, on loopback by default."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464
    outbox_stuck_seconds: int = 900  # health fails when a due delivery waits longer than this


@dataclass(frozen=True)
class HealthSettings:
    """When /healthz and `dispute-gateway health` fail (besides the database and broker
    being unreachable and [metrics] outbox_stuck_seconds)."""

    inbound_wait_seconds: int = 300  # a received message still unprocessed after this long
    delivery_retry_seconds: int = 1800  # a delivery still being retried this long after its first failure
    worker_stale_seconds: int = 60  # no worker heartbeat newer than this
    scheduler_stale_seconds: int = 300  # no scheduler sweep newer than this


@dataclass(frozen=True)
class ExportSettings:
    """Case exports (`cases export`, `#export`): where bundles are written and how the
    transcript PDF is sized (README: Evidence bundles)."""

    directory: Path = Path("exports")
    max_attachment_bytes: int = 10_000_000  # #export mails the bundle up to this size, else says where it is
    pdf_max_pages: int = 19  # Mastercard: 19 pages of documentation per chargeback
    pdf_max_bytes: int = 2_000_000  # Visa Resolve Online: 2 MB per PDF
    pdf_font: Path | None = None  # a TrueType font; None: DejaVu Sans when installed, else Bitstream Vera
    pdf_font_bold: Path | None = None


# --- [http]: the JSON API, webhooks and status pages (gateway/http/) ----------------------
API_SCOPES = ("cases:write", "cases:read", "transactions:write", "merchants:write")
WEBHOOK_EVENTS = ("case.opened", "case.answered", "case.escalated", "case.closed", "case.merchant_unreachable")


@dataclass(frozen=True)
class ApiToken:
    name: str  # logged with every call
    token: str
    scopes: tuple[str, ...] = API_SCOPES


@dataclass(frozen=True)
class WebhookEndpoint:
    name: str
    url: str
    secret: str  # signs every delivery (HMAC-SHA256, Standard Webhooks)
    events: tuple[str, ...] = WEBHOOK_EVENTS
    old_secrets: tuple[str, ...] = ()  # still signed with, while receivers move to `secret`


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP server (README: HTTP API); off when the configuration has no [http] table."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"  # status links in notices start with it
    status_link_days: int = 60  # a status link works this long after the notice that carries it
    api_tokens: tuple[ApiToken, ...] = ()
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webhook_timeout_seconds: float = 10.0
    idempotency_hours: int = 24  # an Idempotency-Key's answer is replayed this long, then forgotten


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    smtp_ingress: SmtpIngressSettings = field(default_factory=SmtpIngressSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    timers: TimerSettings = field(default_factory=TimerSettings)
    imap: tuple[ImapMailbox, ...] = ()
    hygiene: HygieneSettings = field(default_factory=HygieneSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    source: str = "<defaults>"
