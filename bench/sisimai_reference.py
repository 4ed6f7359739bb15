"""The reference analyser: Sisimai (libsisimai-perl) run on corpus files, when installed.

    .venv/bin/python bench/sisimai_reference.py FILE.eml...   # prints JSON

Sisimai 4.25 reads LF (and CRLF) files only, so each file is handed over with its line
ends normalised to LF (our reader is given the original bytes). The tests never need it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_SCRIPT = r"""
use strict; use warnings; use Sisimai; use JSON::PP;
my %out;
for my $f (@ARGV) {
  my $v = Sisimai->make($f, delivered => 1, vacation => 1) || [];
  $out{$f} = [ map { { recipient => lc($_->recipient->address), reason => $_->reason, status => $_->deliverystatus,
                       soft => $_->softbounce, action => $_->action, lhost => $_->smtpagent } } @$v ];
}
print JSON::PP->new->canonical->encode(\%out);
"""


def available() -> bool:
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True).returncode == 0


def version() -> str:
    done = subprocess.run(["perl", "-MSisimai", "-e", "print $Sisimai::VERSION"], capture_output=True, text=True)
    return done.stdout.strip()


def analyse(paths: list[Path]) -> dict[str, list[dict]]:
    """Sisimai's reading of each file: {file name relative to its corpus: [entries]}."""
    with tempfile.TemporaryDirectory() as scratch:
        copies = {}
        for i, path in enumerate(paths):
            copy = Path(scratch) / f"{i:05d}.eml"
            copy.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
            copies[str(copy)] = path
        done = subprocess.run(["perl", "-e", _SCRIPT, *copies], capture_output=True, check=True)
        raw = json.loads(done.stdout)
    return {str(copies[name]): entries for name, entries in raw.items()}


if __name__ == "__main__":
    print(json.dumps(analyse([Path(p) for p in sys.argv[1:]]), indent=1))
