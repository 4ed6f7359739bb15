"""Commands: `#word [argument]` lines at the top of the new text of a message. Pure.

Only the new text is read (never quoted history), only lines at its top (blank lines
between them allowed), case-insensitively, with English and French words accepted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_COMMAND_RE = re.compile(r"^#\s*([a-zà-ÿ_-]+)\b\s*(.*)$", re.IGNORECASE)
_MISPLACED_RE = re.compile(r"^#([a-zà-ÿ_-]+)\b\s*(.*)$", re.IGNORECASE)  # "#note", not a "# Note" heading

# word -> canonical command name
ALIASES: dict[str, str] = {
    "to": "to", "a": "to", "à": "to", "pour": "to",
    "note": "note",
    "resolved": "resolved", "resolu": "resolved", "résolu": "resolved", "resolue": "resolved", "résolue": "resolved",
    "escalate": "escalate", "escalade": "escalate", "escalader": "escalate",
    "close": "close", "fermer": "close", "clore": "close", "cloturer": "close", "clôturer": "close",
    "reopen": "reopen", "rouvrir": "reopen",
    "type": "type",
    "release": "release", "liberer": "release", "libérer": "release",
    "retry": "retry", "reessayer": "retry", "réessayer": "retry",
    "unfreeze": "unfreeze", "degeler": "unfreeze", "dégeler": "unfreeze",
    "export": "export", "exporter": "export",
}
TO_TARGETS: dict[str, str] = {
    "customer": "c", "client": "c", "cliente": "c",
    "merchant": "m", "marchand": "m", "commercant": "m", "commerçant": "m", "vendeur": "m",
    "both": "both", "all": "both", "tous": "both", "les deux": "both",
}
CUSTOMER_COMMANDS = frozenset({"resolved", "escalate"})
STAFF_COMMANDS = frozenset({"to", "note", "close", "reopen", "type", "release", "retry", "unfreeze", "export"})


@dataclass(frozen=True)
class Command:
    name: str  # canonical name, or the word as written when unknown
    argument: str
    known: bool


@dataclass(frozen=True)
class Commands:
    commands: tuple[Command, ...] = ()
    body: str = ""  # the new text without the command lines
    lines_removed: tuple[str, ...] = field(default=(), repr=False)

    def first(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name and c.known), None)

    @property
    def unknown(self) -> tuple[Command, ...]:
        return tuple(c for c in self.commands if not c.known)


def read(new_text: str) -> Commands:
    """The commands at the top of `new_text` and the text that follows them."""
    lines = unicodedata.normalize("NFC", new_text).replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    removed: list[str] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped:
            index += 1
            continue
        match = _COMMAND_RE.match(stripped)
        if not match:
            break
        word, argument = match.group(1).lower(), match.group(2).strip()
        name = ALIASES.get(word)
        commands.append(Command(name or word, argument, known=name is not None))
        removed.append(lines[index])
        index += 1
    return Commands(tuple(commands), "\n".join(lines[index:]).strip(), tuple(removed))


def to_target(argument: str) -> str | None:
    """'c', 'm' or 'both' from the argument of #to, or None if not understood."""
    return TO_TARGETS.get(" ".join(argument.lower().split()))


def misplaced(body: str) -> str | None:
    """A staff command line found below ordinary text ("Hi,\\n#note ..."), or None.

    Such a line is not read as a command; relaying the message would send it (an internal
    note, a line meant for one party) to everyone, so the caller refuses the message.
    """
    for line in body.splitlines():
        match = _MISPLACED_RE.match(line.strip())
        if match and ALIASES.get(match.group(1).lower()) in STAFF_COMMANDS:
            return line.strip()[:60]
    return None
