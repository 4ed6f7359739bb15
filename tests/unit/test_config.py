"""Settings from TOML: every mistake is one ConfigError line naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError

REPO = Path(__file__).resolve().parent.parent.parent
KEY = "a-secret-key-of-32-characters-00"

GATEWAY = f"""
[gateway]
domain = "disputes.test"
secret_keys = ["{KEY}"]
staff_addresses = ["staff@ops.test"]
"""
OUTBOUND = """
[outbound]
maildir = "outbox"
"""
MINIMAL = GATEWAY + OUTBOUND


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    return config.load(_write(tmp_path, text), environ=environ or {})


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text, environ)
    return str(error.value)


def test_minimal_file_loads_with_defaults(tmp_path):
    settings = _load(tmp_path, MINIMAL)
    assert settings.gateway.domain == "disputes.test"
    assert settings.gateway.secret_keys == (KEY,)
    assert settings.gateway.staff_addresses == ("staff@ops.test",)
    assert settings.gateway.default_locale == "en"
    assert settings.smtp_ingress.port == 2525
    assert settings.outbound.maildir == (tmp_path / "outbox").resolve()  # relative to the file
    assert settings.outbound.smtp is None
    assert settings.broker.embedded
    assert settings.source == str(tmp_path / "gateway.toml")


def test_example_config_loads(tmp_path):
    settings = config.load(REPO / "config.example.toml", environ={})
    assert settings.gateway.domain == "disputes.example.org"
    assert settings.gateway.templates_dir.is_dir()
    assert settings.outbound.maildir is not None


def test_example_config_with_smarthost_uncommented_loads(tmp_path):
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("# [outbound.smtp]")
    end = text.index("\n\n", start)
    block = "\n".join(line[2:] if line.startswith("# ") else line for line in text[start:end].splitlines())
    settings = _load(tmp_path, text[:start] + block + text[end:])
    assert settings.outbound.smtp is not None
    assert settings.outbound.smtp.host == "127.0.0.1"
    assert settings.outbound.maildir is None  # the smarthost replaces the maildir


def test_domain_is_lower_cased(tmp_path):
    assert _load(tmp_path, MINIMAL.replace("disputes.test", "Disputes.TEST")).gateway.domain == "disputes.test"


# (file text, key the message must name)
BROKEN = [
    # missing
    pytest.param(MINIMAL.replace('domain = "disputes.test"\n', ""), "domain", id="missing-domain"),
    pytest.param(MINIMAL.replace(f'secret_keys = ["{KEY}"]\n', ""), "secret_keys", id="missing-secret-keys"),
    pytest.param(MINIMAL.replace('staff_addresses = ["staff@ops.test"]\n', ""), "staff_addresses",
                 id="missing-staff"),
    pytest.param(OUTBOUND, "gateway", id="missing-gateway-table"),
    pytest.param(MINIMAL + '[outbound.smtp]\nport = 25\n', "host", id="missing-smtp-host"),
    # bad types
    pytest.param(MINIMAL.replace('"disputes.test"', "5"), "domain", id="domain-int"),
    pytest.param(MINIMAL.replace(f'["{KEY}"]', f'"{KEY}"'), "secret_keys", id="keys-string"),
    pytest.param(MINIMAL.replace(f'["{KEY}"]', "[1234567890123456789]"), "secret_keys", id="keys-int-list"),
    pytest.param(MINIMAL.replace('["staff@ops.test"]', '"staff@ops.test"'), "staff_addresses", id="staff-string"),
    pytest.param(MINIMAL + '[ingress.smtp]\nport = "2525"\n', "port", id="port-string"),
    pytest.param(MINIMAL + "[ingress.smtp]\nport = true\n", "port", id="port-bool"),
    pytest.param(MINIMAL + "[ingress.smtp]\nport = 25.5\n", "port", id="port-float"),
    pytest.param(MINIMAL + '[outbound.smtp]\nhost = "h"\nstarttls = "yes"\n', "starttls", id="starttls-string"),
    pytest.param(MINIMAL + "[workers]\nthreads = 1.5\n", "threads", id="threads-float"),
    pytest.param(MINIMAL + '[workers]\nthreads = "4"\n', "threads", id="threads-string"),
    pytest.param('gateway = "x"\n' + OUTBOUND, "gateway", id="gateway-not-a-table"),
    pytest.param(MINIMAL + "[ingress]\nsmtp = 5\n", "smtp", id="ingress-smtp-not-a-table"),
    # bad values
    pytest.param(MINIMAL.replace('"disputes.test"', '"not a domain"'), "domain", id="domain-with-spaces"),
    pytest.param(MINIMAL.replace('"disputes.test"', '"localhost"'), "domain", id="domain-without-dot"),
    pytest.param(MINIMAL.replace('"staff@ops.test"', '"nobody"'), "staff_addresses", id="staff-not-an-address"),
    pytest.param(MINIMAL.replace('["staff@ops.test"]', "[]"), "staff_addresses", id="staff-empty"),
    pytest.param(MINIMAL.replace("[gateway]", '[gateway]\ndefault_locale = "de"'), "default_locale", id="locale"),
    pytest.param(MINIMAL + '[gateway.sender_policy]\ncustomer = "lax"\n', "customer", id="sender-policy"),
    pytest.param(MINIMAL.replace("[gateway]", '[gateway]\ntemplates_dir = "no-such-folder"'), "templates_dir",
                 id="templates-dir"),
    pytest.param(MINIMAL + '[database]\nurl = "mysql://x"\n', "url", id="database-url"),
    pytest.param(MINIMAL + '[broker]\nurl = "amqp://x"\n', "url", id="broker-url"),
    pytest.param(MINIMAL + "[workers]\nthreads = 0\n", "threads", id="threads-zero"),
    pytest.param(MINIMAL + "[workers]\nlease_seconds = 5\n", "lease_seconds", id="lease-short"),
    pytest.param(MINIMAL.replace('maildir = "outbox"', 'maildir = "outbox"\nretry_base_seconds = 100\n'
                                 "retry_max_seconds = 10"), "retry_max_seconds", id="retry-ceiling"),
    pytest.param(MINIMAL.replace('maildir = "outbox"', 'maildir = "outbox"\nmax_attempts = 0'), "max_attempts",
                 id="max-attempts"),
    pytest.param(MINIMAL + '[outbound.smtp]\nhost = "h"\nstarttls = true\nssl = true\n', "starttls",
                 id="starttls-and-ssl"),
    pytest.param(MINIMAL + "[ingress.smtp]\nmax_message_bytes = 10\n", "max_message_bytes", id="max-message-small"),
    # timers
    pytest.param(MINIMAL + "[timers]\nstaff_followup_business_days = [true, 3]\n", "staff_followup_business_days",
                 id="followup-bool"),
    pytest.param(MINIMAL + "[timers]\nstaff_followup_business_days = [5, 2]\n", "staff_followup_business_days",
                 id="followup-decreasing"),
    pytest.param(MINIMAL + "[timers]\nstaff_request_reminder_business_days = [0]\n",
                 "staff_request_reminder_business_days", id="request-zero"),
    pytest.param(MINIMAL + "[timers]\nmerchant_reminder_business_days = [true]\n", "merchant_reminder_business_days",
                 id="merchant-reminder-bool"),
    pytest.param(MINIMAL + "[timers]\npayment_answer_business_days = 40\n", "payment_answer_max_business_days",
                 id="payment-answer-over-max"),
    pytest.param(MINIMAL + "[timers]\npayment_answer_warning_business_days = 15\n",
                 "payment_answer_warning_business_days", id="payment-warning-too-early"),
    pytest.param(MINIMAL + "[timers]\npayment_answer_warning_business_days = 0\n",
                 "payment_answer_warning_business_days", id="payment-warning-on-the-deadline"),
    # bad ports
    pytest.param(MINIMAL + "[ingress.smtp]\nport = 70000\n", "port", id="ingress-port-too-big"),
    pytest.param(MINIMAL + "[ingress.smtp]\nport = 65536\n", "port", id="ingress-port-65536"),
    pytest.param(MINIMAL + "[ingress.smtp]\nport = -1\n", "port", id="ingress-port-negative"),
    pytest.param(MINIMAL + '[outbound.smtp]\nhost = "h"\nport = 0\n', "port", id="outbound-port-zero"),
    pytest.param(MINIMAL + '[outbound.smtp]\nhost = "h"\nport = 65536\n', "port", id="outbound-port-too-big"),
    # short or missing secret keys
    pytest.param(MINIMAL.replace(KEY, "short"), "secret_keys", id="short-key"),
    pytest.param(MINIMAL.replace(KEY, "x" * 15), "secret_keys", id="fifteen-characters"),
    pytest.param(MINIMAL.replace(f'"{KEY}"', f'"{KEY}", "short"'), "secret_keys", id="one-short-key-of-two"),
    pytest.param(MINIMAL.replace(f'["{KEY}"]', "[]"), "secret_keys", id="no-keys"),
    pytest.param(MINIMAL.replace(f'["{KEY}"]', '[""]'), "secret_keys", id="empty-key"),
    # unknown keys, at every level
    pytest.param(MINIMAL.replace("[gateway]", '[gateway]\ncolour = "red"'), "colour", id="unknown-gateway-key"),
    pytest.param('colour = "red"\n' + MINIMAL, "colour", id="unknown-top-level-key"),
    pytest.param(MINIMAL + "[workers]\nthread = 4\n", "thread", id="unknown-workers-key"),
    pytest.param(MINIMAL + "[ingress.smtp]\nportt = 25\n", "portt", id="unknown-ingress-smtp-key"),
    pytest.param(MINIMAL + "[ingress.smtpp]\nport = 25\n", "smtpp", id="unknown-ingress-table"),
    pytest.param(MINIMAL + '[outbound.smtp]\nhost = "h"\npasword = "x"\n', "pasword", id="unknown-smtp-key"),
    pytest.param(MINIMAL + '[gateway.sender_policy]\nvisitor = "strict"\n', "visitor", id="unknown-policy-key"),
    pytest.param(MINIMAL + '[database]\nurl = "sqlite:///x.db"\npool = 5\n', "pool", id="unknown-database-key"),
    pytest.param(MINIMAL + "[smtp]\nport = 25\n", "smtp", id="unknown-table"),
    # case exports
    pytest.param(MINIMAL + "[export]\npdf_max_pages = 0\n", "pdf_max_pages", id="export-no-pages"),
    pytest.param(MINIMAL + "[export]\nmax_attachment_bytes = 10\n", "max_attachment_bytes", id="export-tiny-mail"),
    pytest.param(MINIMAL + '[export]\ndirectory = ""\n', "directory", id="export-no-directory"),
    pytest.param(MINIMAL + '[export]\npdf_font = "nowhere.ttf"\n', "pdf_font", id="export-missing-font"),
    pytest.param(MINIMAL + '[export]\nfolder = "x"\n', "folder", id="export-unknown-key"),
]


@pytest.mark.parametrize("text, key", BROKEN)
def test_error_is_one_line_naming_the_key_and_the_file(tmp_path, text, key):
    message = _error(tmp_path, text)
    assert "\n" not in message
    assert str(tmp_path / "gateway.toml") in message
    assert key in message


@pytest.mark.parametrize("text, key", BROKEN)
def test_from_dict_names_the_source(text, key):
    import tomllib

    with pytest.raises(ConfigError) as error:
        config.from_dict(tomllib.loads(text), source="my-source.toml", environ={}, base_dir=REPO)
    assert str(error.value).startswith("my-source.toml: ")
    assert key in str(error.value)


def test_missing_outbound_names_the_file(tmp_path):
    message = _error(tmp_path, GATEWAY)
    assert str(tmp_path / "gateway.toml") in message and "outbound" in message


def test_outbound_without_smarthost_or_maildir(tmp_path):
    message = _error(tmp_path, GATEWAY + "[outbound]\nmax_attempts = 3\n")
    assert "\n" not in message and str(tmp_path / "gateway.toml") in message and "maildir" in message


@pytest.mark.parametrize("text, problem", [
    ("[gateway\n", "not valid TOML"),
    ('[gateway]\ndomain = \n', "not valid TOML"),
    ('[gateway]\ndomain = "a"\ndomain = "b"\n', "not valid TOML"),
])
def test_invalid_toml(tmp_path, text, problem):
    message = _error(tmp_path, text)
    assert "\n" not in message and str(tmp_path / "gateway.toml") in message and problem in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found") as error:
        config.load(tmp_path / "nope.toml", environ={})
    assert str(tmp_path / "nope.toml") in str(error.value)


# ---------------------------------------------------------------- environment


@pytest.mark.parametrize("text", [
    pytest.param(MINIMAL, id="file-has-keys"),
    pytest.param(MINIMAL.replace(f'secret_keys = ["{KEY}"]\n', ""), id="file-has-no-keys"),
    pytest.param(MINIMAL.replace(KEY, "short"), id="file-has-a-short-key"),
])
def test_secret_keys_from_the_environment_replace_the_file(tmp_path, text):
    environ = {"DISPUTE_GATEWAY_SECRET_KEYS": " new-key-from-the-environment , older-key-from-the-env ,"}
    settings = _load(tmp_path, text, environ)
    assert settings.gateway.secret_keys == ("new-key-from-the-environment", "older-key-from-the-env")


def test_short_secret_key_from_the_environment_is_refused(tmp_path):
    message = _error(tmp_path, MINIMAL, {"DISPUTE_GATEWAY_SECRET_KEYS": "short"})
    assert "secret_keys" in message and "16" in message


def test_empty_environment_variable_does_not_override(tmp_path):
    assert _load(tmp_path, MINIMAL, {"DISPUTE_GATEWAY_SECRET_KEYS": ""}).gateway.secret_keys == (KEY,)


def test_load_reads_the_process_environment_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPUTE_GATEWAY_SECRET_KEYS", "key-from-os-environ-0001")
    monkeypatch.delenv("DISPUTE_GATEWAY_DATABASE_URL", raising=False)
    settings = config.load(_write(tmp_path, MINIMAL))
    assert settings.gateway.secret_keys == ("key-from-os-environ-0001",)


@pytest.mark.parametrize("text", [MINIMAL, MINIMAL + '[database]\nurl = "sqlite:///file.db"\n'])
def test_database_url_from_the_environment(tmp_path, text):
    environ = {"DISPUTE_GATEWAY_DATABASE_URL": "postgresql+psycopg://gw@db/gw"}
    assert _load(tmp_path, text, environ).database.url == "postgresql+psycopg://gw@db/gw"


def test_smtp_password_from_the_file(tmp_path):
    text = MINIMAL + '[outbound.smtp]\nhost = "smtp.test"\nstarttls = true\nusername = "gw"\npassword = "in-file"\n'
    assert _load(tmp_path, text).outbound.smtp.password == "in-file"


def test_smtp_password_from_the_environment_without_one_in_the_file(tmp_path):
    text = MINIMAL + '[outbound.smtp]\nhost = "smtp.test"\nstarttls = true\nusername = "gw"\n'
    assert _load(tmp_path, text, {"DISPUTE_GATEWAY_SMTP_PASSWORD": "from-env"}).outbound.smtp.password == "from-env"


def test_smtp_password_from_the_environment_replaces_the_file(tmp_path):
    text = MINIMAL + '[outbound.smtp]\nhost = "smtp.test"\nstarttls = true\nusername = "gw"\npassword = "in-file"\n'
    assert _load(tmp_path, text, {"DISPUTE_GATEWAY_SMTP_PASSWORD": "from-env"}).outbound.smtp.password == "from-env"


def test_timer_settings_read_from_the_file(tmp_path):
    settings = _load(tmp_path, MINIMAL + "[timers]\nstaff_followup_business_days = [1, 3]\n"
                     "staff_request_reminder_business_days = [1, 2]\npayment_answer_business_days = 0\n")
    assert settings.timers.staff_followup_business_days == (1, 3)
    assert settings.timers.staff_request_reminder_business_days == (1, 2)
    assert settings.timers.payment_answer_business_days == 0  # the warnings are off


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///gw.db", "sqlite:///{dir}/gw.db"),  # relative to the configuration file, not the current folder
    ("sqlite:///data/gw.db?timeout=5", "sqlite:///{dir}/data/gw.db?timeout=5"),
    ("sqlite:////var/lib/gw.db", "sqlite:////var/lib/gw.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite:///file:gw.db?mode=ro&uri=true", "sqlite:///file:gw.db?mode=ro&uri=true"),  # a SQLite URI: as given
    ("postgresql+psycopg://gw@db/gw", "postgresql+psycopg://gw@db/gw"),
])
def test_a_relative_sqlite_path_is_relative_to_the_configuration_file(tmp_path, monkeypatch, url, expected):
    monkeypatch.chdir("/")
    settings = _load(tmp_path, MINIMAL + f'[database]\nurl = "{url}"\n')
    assert settings.database.url == expected.format(dir=tmp_path.resolve())
    assert _load(tmp_path, MINIMAL).database.url == f"sqlite:///{tmp_path.resolve()}/dispute-gateway.db"


IMAP = '[ingress.imap]\nhost = "{host}"\nusername = "u"\npassword = "p"\nsecurity = "plain"\n'
SMARTHOST = '[outbound.smtp]\nhost = "{host}"\nusername = "gw"\npassword = "p"\n'


@pytest.mark.parametrize("template", [IMAP, SMARTHOST])
def test_clear_text_passwords_are_refused_beyond_loopback(tmp_path, template):
    assert "clear text" in _error(tmp_path, MINIMAL + template.format(host="imap.example.org"))
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "localhost.", "ip6-localhost", "::1", "[::1]",
                 "::ffff:127.0.0.1"):
        _load(tmp_path, MINIMAL + template.format(host=host))
    _load(tmp_path, MINIMAL + SMARTHOST.format(host="smtp.example.org") + "starttls = true\n")



def test_a_database_left_in_the_working_directory_is_named_at_start_but_never_refuses(tmp_path, monkeypatch):
    config_dir, work_dir = tmp_path / "etc", tmp_path / "var"
    config_dir.mkdir(), work_dir.mkdir()
    (work_dir / "gw.db").write_bytes(b"")  # an older version's database, or another instance's (a quick start)
    monkeypatch.chdir(work_dir)
    settings = _load(config_dir, MINIMAL + '[database]\nurl = "sqlite:///gw.db"\n')
    assert settings.database.url == f"sqlite:///{config_dir / 'gw.db'}"  # the instance's own, beside its file
    note = settings.database.note
    assert str(work_dir / "gw.db") in note and "relative to the configuration file" in note
    assert f'sqlite:///{work_dir / "gw.db"}' not in note  # never suggests using another instance's database
    (config_dir / "gw.db").write_bytes(b"")  # once it exists beside the configuration, nothing is said
    assert _load(config_dir, MINIMAL + '[database]\nurl = "sqlite:///gw.db"\n').database.note is None


def test_a_relative_database_url_from_the_environment_is_used_as_given(tmp_path):
    environ = {"DISPUTE_GATEWAY_DATABASE_URL": "sqlite:///from-env.db"}
    assert _load(tmp_path, MINIMAL, environ).database.url == "sqlite:///from-env.db"


# --- exactly once: leases, heartbeats, the sent journal, health (issue 10) --------------

SMTP30 = '[outbound.smtp]\nhost = "127.0.0.1"\ntimeout_seconds = 30\n'


@pytest.mark.parametrize("extra, key", [
    pytest.param(SMTP30 + "[workers]\nlease_seconds = 10\n", "lease_seconds", id="lease-shorter-than-smtp-timeout"),
    pytest.param(SMTP30 + "[workers]\nlease_seconds = 59\n", "lease_seconds", id="lease-under-twice-the-timeout"),
    pytest.param("[workers]\nheartbeat_seconds = 40\nlease_seconds = 100\n", "heartbeat_seconds",
                 id="under-three-heartbeats-per-lease"),
    pytest.param("[workers]\nheartbeat_seconds = 10\n[health]\nworker_stale_seconds = 15\n", "worker_stale_seconds",
                 id="live-workers-would-look-dead"),
    pytest.param("[workers]\nsweep_interval_seconds = 60\n[health]\nscheduler_stale_seconds = 100\n",
                 "scheduler_stale_seconds", id="running-scheduler-would-look-stopped"),
    pytest.param("[workers]\nheartbeat_seconds = 60\n", "uncertain_retry_seconds", id="retry-before-the-250-is-recorded"),
])
def test_impossible_combinations_are_refused_in_one_line(tmp_path, extra, key):
    text = MINIMAL.replace('maildir = "outbox"', 'maildir = "outbox"\nuncertain_retry_seconds = 100')
    message = _error(tmp_path, text + extra)
    assert key in message and "\n" not in message


def test_the_lease_error_says_what_to_set(tmp_path):
    message = _error(tmp_path, MINIMAL + SMTP30 + "[workers]\nlease_seconds = 10\n")
    assert "timeout_seconds (30)" in message and "at least 60" in message and "sent twice" in message


def test_staleness_limits_follow_the_intervals_they_watch(tmp_path):
    settings = _load(tmp_path, MINIMAL + "[workers]\nsweep_interval_seconds = 3600\nheartbeat_seconds = 40\n"
                     "lease_seconds = 600\n")
    assert settings.health.scheduler_stale_seconds == 3 * 3600
    assert settings.health.worker_stale_seconds == 120


def test_every_queue_has_its_own_threads(tmp_path):
    workers = _load(tmp_path, MINIMAL + "[workers]\nthreads = 2\ndelivery_threads = 6\ntimer_threads = 2\n"
                    "large_messages_at_once = 1\n").workers
    assert (workers.threads, workers.delivery_threads, workers.timer_threads, workers.large_messages_at_once) == (
        2, 6, 2, 1)
    assert "delivery_threads" in _error(tmp_path, MINIMAL + "[workers]\ndelivery_threads = 0\n")


def test_the_sent_journal_lives_beside_an_sqlite_database_or_in_the_state_directory(tmp_path):
    beside = _load(tmp_path, MINIMAL + '[database]\nurl = "sqlite:///data/gw.db"\n')
    assert beside.outbound.journal_dir == tmp_path / "data" / "sent-journal"
    postgres = MINIMAL + '[database]\nurl = "postgresql+psycopg://gw@db/gw"\n'
    assert _load(tmp_path, postgres, {"STATE_DIRECTORY": "/var/lib/dispute-gateway"}).outbound.journal_dir == (
        Path("/var/lib/dispute-gateway/sent-journal"))
    assert _load(tmp_path, postgres, {"HOME": "/home/gw"}).outbound.journal_dir == (
        Path("/home/gw/.local/state/dispute-gateway/sent-journal"))
    explicit = postgres.replace('maildir = "outbox"', 'maildir = "outbox"\njournal_dir = "journal"')
    assert _load(tmp_path, explicit).outbound.journal_dir == tmp_path / "journal"  # relative to the file

def test_export_settings(tmp_path):
    assert _load(tmp_path, MINIMAL).export.directory == (tmp_path / "exports").resolve()
    font = tmp_path / "fonts" / "Body.ttf"
    font.parent.mkdir()
    font.write_bytes(b"\0")
    settings = _load(tmp_path, MINIMAL + '[export]\ndirectory = "/var/x"\npdf_max_pages = 40\n'
                     'pdf_font = "fonts/Body.ttf"\nmax_attachment_bytes = 5000000\n').export
    assert (settings.directory, settings.pdf_max_pages, settings.pdf_font) == (Path("/var/x"), 40, font)
    assert settings.pdf_font_bold is None and settings.max_attachment_bytes == 5_000_000
@pytest.mark.parametrize("table, key", [
    ("retry_after_minutes = [0]", "retry_after_minutes"),
    ('retry_after_minutes = ["1h"]', "retry_after_minutes"),
    ("unreachable_after_hours = 0", "unreachable_after_hours"),
    ("unreachable_after_reports = true", "unreachable_after_reports"),
    ("notify_staff_every_hours = -1", "notify_staff_every_hours"),
    ("retry_after = [60]", "retry_after"),
])
def test_bounces_table_is_validated(tmp_path, table, key):
    message = _error(tmp_path, MINIMAL + f"\n[bounces]\n{table}\n")
    assert "[bounces]" in message and key in message


def test_bounces_table_reads_the_schedule(tmp_path):
    settings = _load(tmp_path, MINIMAL + "\n[bounces]\nretry_after_minutes = []\nunreachable_after_reports = 2\n")
    assert settings.bounces.retry_after_minutes == () and settings.bounces.unreachable_after_reports == 2
    assert settings.bounces.unreachable_after_hours == 24
