"""Sisimai, the field's reference bounce analyser (libsisimai-perl), as a long-lived helper
process: the optional second reading of a delivery report ([bounces] analyser).

One Perl process per gateway process, started on first use and kept: a report costs a
few milliseconds instead of the 76 ms of a process start. Messages go over its stdin
framed by their length, one JSON line comes back per message. Every failure (Perl or
the module missing, a crash, a report that takes longer than `timeout_seconds`) gives
`None`, which the caller reads as "our own detectors alone"; the process is then
killed, and started again on a later report, not before `restart_after_seconds`.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import threading
import time
from typing import Callable

from gateway.config import BounceSettings, ConfigError
from gateway.mail.bounces import normalised
from gateway.mail.bounces.reference import Entry

log = logging.getLogger(__name__)

# Sisimai 4.25 reads LF (or CRLF) mail: the caller hands over line ends already normalised.
_SCRIPT = r"""
use strict; use warnings; use Sisimai; use JSON::PP;
binmode STDIN; binmode STDOUT; $| = 1;
my $json = JSON::PP->new->canonical->ascii;
print $json->encode({ ready => 1, version => "$Sisimai::VERSION" }), "\n";
while (defined(my $line = <STDIN>)) {
    my ($size) = $line =~ /^(\d+)\s*$/ or last;
    my $data = '';
    while (length($data) < $size) {
        my $got = read(STDIN, $data, $size - length($data), length($data));
        exit 0 unless $got;
    }
    my $found = eval { Sisimai->make(\$data, delivered => 1) } || [];
    my $error = $@ ? "$@" : '';
    my @entries = map { {
        recipient => lc($_->recipient->address // ''), reason => $_->reason // '',
        status => $_->deliverystatus // '', soft => $_->softbounce // -1, action => $_->action // '',
        diagnostic => $_->diagnosticcode // '', rhost => $_->rhost // '', agent => $_->smtpagent // '',
        command => $_->smtpcommand // '',
    } } @$found;
    print $json->encode({ error => $error, entries => \@entries }), "\n";
}
"""

DEFAULT_TIMEOUT_SECONDS = 10.0
READ_AT_MOST_BYTES = 1024 * 1024  # a report says what failed at its start; the rest is the original


def installed(perl: str = "perl") -> str | None:
    """Sisimai's version when Perl and the module are there, else None."""
    if shutil.which(perl) is None:
        return None
    try:
        done = subprocess.run([perl, "-MSisimai", "-e", "print $Sisimai::VERSION"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().lstrip("v") or None if done.returncode == 0 else None


def analyser_for(settings: BounceSettings, *, perl: str = "perl") -> "Sisimai | None":
    """The analyser [bounces] analyser asks for ("none": None). Nothing is started here."""
    if settings.analyser == "none":
        return None
    return Sisimai(perl=perl, timeout_seconds=settings.analyser_timeout_seconds,
                   required=settings.analyser == "sisimai")


def describe(analyser: "Sisimai | None", source: str = "config") -> str:
    """What reads delivery reports in this process, for the start-up log; a required Sisimai
    that is not installed is a configuration error."""
    if analyser is None:
        return "our own detectors"
    version = analyser.available()
    if version is None and analyser.required:
        raise ConfigError(f"{source}: [bounces] analyser = \"sisimai\": Sisimai is not installed for {analyser.perl} "
                          "(Debian: apt-get install libsisimai-perl), or set analyser = \"auto\" or \"none\"")
    if version is None:
        return "our own detectors (analyser = \"auto\": Sisimai is not installed)"
    return f"Sisimai {version} joined with our own detectors"


class Sisimai:
    """A Sisimai helper process, shared by the threads of one process (one report at a time).
    `required=False` ("auto"): where Sisimai is not installed, our detectors read alone and
    that is said once, not as a fault."""

    def __init__(self, *, perl: str = "perl", timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 restart_after_seconds: float = 60.0, required: bool = True,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`monotonic` times the wait before a failed process is started again."""
        self.perl = perl
        self.required = required
        self._installed: str | None | bool = False  # False: not looked yet
        self.timeout_seconds = timeout_seconds
        self.restart_after_seconds = restart_after_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner_pid: int | None = None
        self._buffer = b""
        self._down_until = 0.0
        self.version: str | None = None

    def read(self, raw: bytes) -> list[Entry] | None:
        """Sisimai's entries for one report ([] when it reads no failure in it), or None when
        it could not answer (then the caller's own reading stands)."""
        data = _for_sisimai(raw)
        with self._lock:
            if not self._ensure_started():
                return None
            try:
                self._process.stdin.write(b"%d\n" % len(data) + data)
                self._process.stdin.flush()
                answer = self._answer()
            except (OSError, ValueError, TimeoutError) as error:
                log.warning("Sisimai gave no answer (%s); the report is read by our own detectors alone", error)
                self._stop(failed=True)
                return None
        if answer.get("error"):
            log.warning("Sisimai failed on a report (%s); it is read by our own detectors alone",
                        answer["error"].strip()[:300])
            return None
        return [Entry.from_sisimai(entry) for entry in answer.get("entries", ())]

    def available(self) -> str | None:
        """Sisimai's version, or None when Perl or the module is missing (looked up once)."""
        if self._installed is False:
            self._installed = installed(self.perl)
        return self._installed

    def close(self) -> None:
        with self._lock:
            self._stop(failed=False)

    # --- the helper process ------------------------------------------------------------

    def _ensure_started(self) -> bool:
        if self._process is not None and self._owner_pid == os.getpid() and self._process.poll() is None:
            return True
        if self._process is not None and self._owner_pid != os.getpid():  # inherited across fork: not ours
            self._process = None
        if self._monotonic() < self._down_until:
            return False
        if self.available() is None:
            if self.required:
                log.error("Sisimai is not installed for %s ([bounces] analyser = \"sisimai\"): delivery reports "
                          "are read by our own detectors alone", self.perl)
                self._down_until = self._monotonic() + self.restart_after_seconds
            else:
                self._down_until = float("inf")
            self._installed = False  # looked up again when the process is next due
            return False
        try:
            self._process = subprocess.Popen([self.perl, "-e", _SCRIPT], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
            self._owner_pid = os.getpid()
            self._buffer = b""
            hello = self._answer()
        except (OSError, ValueError, TimeoutError) as error:
            log.warning("Sisimai could not be started (%s); delivery reports are read by our own detectors "
                        "alone for %.0f s", error, self.restart_after_seconds)
            self._stop(failed=True)
            return False
        self.version = str(hello.get("version", "")).lstrip("v") or None
        return True

    def _answer(self) -> dict:
        """The next JSON line from the process, within the timeout (real time: it bounds how
        long a worker thread waits on another process)."""
        deadline = time.monotonic() + self.timeout_seconds
        stdout = self._process.stdout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer within {self.timeout_seconds:g} s")
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    raise OSError("the Sisimai process ended")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _stop(self, *, failed: bool) -> None:
        process, self._process = self._process, None
        if failed:
            self._down_until = self._monotonic() + self.restart_after_seconds
        if process is None or self._owner_pid != os.getpid():
            return
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        process.kill()
        process.wait()


def _for_sisimai(raw: bytes) -> bytes:
    """What Sisimai is handed: LF line ends, at most READ_AT_MOST_BYTES, and no mbox "From "
    line first (Sisimai would split the message at every line starting "From ")."""
    data = normalised(raw[:READ_AT_MOST_BYTES])
    if data.startswith(b"From "):
        data = data.partition(b"\n")[2]
    return data
