"""deploy/ and the README agree: the systemd units run commands and options the program
has, with the user, paths and files the README installs; the scripts use those paths;
the logs the units write are the ones logrotate rotates, and are reopened after it."""

from __future__ import annotations

import configparser
import logging
import logging.handlers
import re
import shlex
from pathlib import Path

import pytest

from gateway.cli import build_parser, command_tree
from gateway.cli.common import CONFIG_ENV

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
README = (REPO / "README.md").read_text()
USER = "dispute-gateway"
BINARY = "/opt/dispute-gateway/.venv/bin/dispute-gateway"
CONFIG = "/etc/dispute-gateway/config.toml"
ENVIRONMENT = "/etc/dispute-gateway/environment"
STATE = "/var/lib/dispute-gateway"
LOGS = "/var/log/dispute-gateway"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
COMMAND_OF_UNIT = {"embedded": ["run"], "db-upgrade": ["db", "upgrade"]}


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def test_the_units_are_the_ones_the_readme_names():
    names = {p.name for p in (DEPLOY / "systemd").iterdir()}
    assert names == {"dispute-gateway.target", *(f"dispute-gateway-{n}.service" for n in
                     ("serve-smtp", "serve-http", "worker", "scheduler", "poll-imap", "embedded", "db-upgrade"))}
    for name in names:
        assert name.removesuffix(".service").removesuffix(".target") in README, name
    wanted = _unit(DEPLOY / "systemd" / "dispute-gateway.target")["Unit"]["Wants"].split()
    assert all((DEPLOY / "systemd" / unit).is_file() for unit in wanted)


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_runs_a_real_command_as_the_service_user_with_the_documented_files(path):
    service = _unit(path)["Service"]
    assert service["User"] == service["Group"] == USER
    assert service["EnvironmentFile"] == ENVIRONMENT and service["WorkingDirectory"] == STATE
    assert service["StateDirectory"] == service["LogsDirectory"] == "dispute-gateway"
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == BINARY
    args = build_parser().parse_args(argv[1:])  # every option and the command exist
    assert args.config == CONFIG
    name = path.name.removeprefix("dispute-gateway-").removesuffix(".service")
    assert argv[-len(COMMAND_OF_UNIT.get(name, [name])):] == COMMAND_OF_UNIT.get(name, [name])
    if service["Type"] != "oneshot":
        assert args.log_format == "json" and args.log_file == f"{LOGS}/{name}.log"


def test_the_readme_installs_what_the_units_expect():
    for text in (f"--shell /usr/sbin/nologin {USER}", f"--home-dir {STATE}", "python3 -m venv /opt/dispute-gateway/.venv",
                 f"-o {USER} -g {USER} -m 0600 /opt/dispute-gateway/deploy/environment.example {ENVIRONMENT}",
                 f"/opt/dispute-gateway/config.example.toml {CONFIG}", "deploy/systemd/* /etc/systemd/system/",
                 "deploy/logrotate/dispute-gateway /etc/logrotate.d/", "deploy/dispute-gateway-admin /usr/local/sbin/",
                 "systemctl start dispute-gateway-db-upgrade.service", "systemctl enable --now dispute-gateway.target"):
        assert text in README, text


def test_every_dispute_gateway_command_in_the_readme_exists():
    parser = build_parser()
    names = {name for path, _ in command_tree(parser) for name in path[:1]}
    found = re.findall(r"(?:`|\s|/)dispute-gateway(?:-admin)? ((?:--config \S+ )?([a-z][a-z-]*)[^\n`|#(]*)", README)
    commands = [command for command, first in found if first in names]
    firsts = {first for _, first in found if first in names}
    assert len(commands) >= 20 and firsts >= {"run", "dkim", "dns-records", "health", "cases", "import"}, firsts
    for command in commands:
        if command.rstrip().endswith("\\"):  # alternatives in a table (`list\|show ID`), a continued line
            continue
        argv = shlex.split(re.sub(r"\[[^]]*\]", "", command).rstrip(" \\"))  # optional parts left out
        argv = ["c.toml" if w == "F" else w for w in argv if not w.startswith("<")]
        try:
            parser.parse_args(argv if "--config" in argv else ["--config", "c.toml", *argv])
        except SystemExit as stop:
            if stop.code:
                raise AssertionError(f"README command does not parse: dispute-gateway {command}") from None


def test_the_admin_wrapper_runs_as_the_units_do():
    wrapper = (DEPLOY / "dispute-gateway-admin").read_text()
    for text in (f"--uid={USER}", f"EnvironmentFile={ENVIRONMENT}", f"--working-directory={STATE}",
                 f"{CONFIG_ENV}={CONFIG}", f'{BINARY} "$@"'):
        assert text in wrapper, text
    assert (DEPLOY / "dispute-gateway-admin").stat().st_mode & 0o111


def test_the_environment_file_holds_the_variables_the_configuration_reads():
    from gateway import config

    example = (DEPLOY / "environment.example").read_text()
    names = set(re.findall(r"^#?(DISPUTE_GATEWAY_[A-Z_]+)=", example, re.M))
    documented = set(re.findall(r"DISPUTE_GATEWAY_[A-Z_]+", config.__doc__))
    assert names == documented == {"DISPUTE_GATEWAY_SECRET_KEYS", "DISPUTE_GATEWAY_DATABASE_URL",
                                   "DISPUTE_GATEWAY_SMTP_PASSWORD", "DISPUTE_GATEWAY_IMAP_PASSWORD",
                                   "DISPUTE_GATEWAY_API_TOKENS", "DISPUTE_GATEWAY_WEBHOOK_SECRETS"}


def test_logrotate_rotates_the_files_the_units_write_and_the_gateway_reopens_them(tmp_path):
    rotate = (DEPLOY / "logrotate" / "dispute-gateway").read_text()
    assert f"{LOGS}/*.log {{" in rotate and "copytruncate" not in rotate.split("{", 1)[1] and f"su {USER} {USER}" in rotate
    # what logrotate does without copytruncate: move the file away; the next line goes to a new one
    path = tmp_path / "worker.log"
    logger = logging.getLogger("test.deploy.rotation")
    handler = logging.handlers.WatchedFileHandler(path)
    logger.addHandler(handler)
    try:
        logger.warning("before")
        path.rename(tmp_path / "worker.log.1")
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "worker.log.1").read_text() == "before\n" and path.read_text() == "after\n"


def test_the_postfix_recipe_uses_stock_map_types_only():
    for path in (DEPLOY / "postfix").iterdir():
        text = path.read_text()
        assert "pcre:" not in text and "lmdb:" not in text, path.name
