"""Bounces in other formats (Exchange, qmail, Exim, Yahoo, old MTAs) through GNU Mailman's
flufl.bounce detectors, which name the failed addresses; the reason for each is read from
the report's words next to it. Run only on messages that already look like bounces, and
with its exceptions contained: a detector that trips on a strange message finds nothing."""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

from gateway.mail.bounces import textual
from gateway.mail.bounces.base import Failure, Verdict, failure

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback for every detector that trips on an odd message and then
# carries on with the next one; those are expected here, so keep them out of the logs.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


def detect(message: Message, text: str) -> Verdict:
    try:
        temporary, permanent = all_failures(message)
    except Exception as error:  # flufl.bounce's detectors are regex heavy and old; never let one stop a message
        # expected on odd input (a stranger can send thousands): one line, the traceback only at debug
        log.info("flufl.bounce could not read a message (%s: %s); treated as no failures", type(error).__name__,
                 str(error)[:200])
        log.debug("flufl.bounce traceback", exc_info=True)
        return Verdict.none("flufl.bounce")
    hard = [a for a in (_text(x) for x in sorted(permanent)) if "@" in a]
    soft = [a for a in (_text(x) for x in sorted(temporary - permanent)) if "@" in a and a not in hard]
    failures: list[Failure] = list(textual.failures_for(hard, text)) if hard else []
    for address in soft:  # flufl.bounce's warning detectors: the message is still queued
        failures.append(failure(address, None, textual.window(text, address)[:1000], gave_up=False))
    return Verdict(tuple(failures), "flufl.bounce")


def _text(address: bytes | str) -> str:
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
    return text.strip().strip("<>").lower()
