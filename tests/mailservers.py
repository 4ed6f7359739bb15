"""The real Postfix and Dovecot some integration tests run against, started by
scripts/start-postfix.sh and scripts/start-dovecot.sh on ports free at the start of this
test run, in a scratch folder of this run's own, and stopped when the run ends.

Ports and the folder are chosen when this module is imported, so a module can build its
constants (an `ImapMailbox`, the Postfix address) from them; the servers start only
when a test asks for the `dovecot` or `postfix` fixture.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"

IMAP_PORT = free_port()
POSTFIX_PORT = free_port()
GATEWAY_PORT = free_port()  # where Postfix hands *@disputes.test (the gateway under test listens here)
# Not under pytest's tmp_path: Dovecot and Postfix's delivery agent run as `nobody`, and
# pytest's base folder is private to root.
MAILTEST_DIR = Path(tempfile.mkdtemp(prefix="dg-mailtest-"))
os.chmod(MAILTEST_DIR, 0o755)
POSTFIX_CONFIG_DIR = MAILTEST_DIR / "postfix" / "etc"
DOVECOT_CONFIG = MAILTEST_DIR / "dovecot" / "dovecot.conf"

_started: set[str] = set()
_lock = threading.Lock()


def environment(**extra: str) -> dict[str, str]:
    """The environment the start scripts are run with: this run's ports and folder."""
    return {**os.environ, "MAILTEST_DIR": str(MAILTEST_DIR), "IMAP_PORT": str(IMAP_PORT),
            "POSTFIX_PORT": str(POSTFIX_PORT), "GATEWAY_PORT": str(GATEWAY_PORT), **extra}


def run_script(name: str, *args: str, **extra: str) -> None:
    """Run scripts/start-<name>.sh with this run's ports (start, restart or stop)."""
    subprocess.run(["bash", str(SCRIPTS / f"start-{name}.sh"), *args], check=True, capture_output=True,
                   timeout=300, env=environment(**extra))


def start(name: str, **extra: str) -> None:
    """Start (or restart with fresh configuration) `name`; it is stopped when the run ends."""
    run_script(name, **extra)
    with _lock:
        _started.add(name)


def stop_all() -> None:
    """Stop what this run started and remove its scratch folder (safe to call twice)."""
    with _lock:
        names = sorted(_started, reverse=True)  # postfix before dovecot
        _started.clear()
    for name in names:
        try:
            run_script(name, "stop")
        except (subprocess.SubprocessError, OSError):
            pass  # already gone
    shutil.rmtree(MAILTEST_DIR, ignore_errors=True)


atexit.register(stop_all)  # also when the session ends without its fixtures' teardown
