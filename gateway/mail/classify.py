"""What kind of message this is: our own mail coming back, a bounce, an auto-reply, list
mail, or a human message. Runs DETECTORS in order, cheap and certain checks first. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Sequence

from gateway.mail.bounces import arf, ses
from gateway.mail.compose import LOOP_HEADER, loop_header_valid
from gateway.mail.headers import REPLY_PREFIX_RE
from gateway.mail.parse import ParsedMessage


class Kind(str, Enum):
    HUMAN = "human"
    LOOP = "loop"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    LIST = "list"


@dataclass(frozen=True)
class Classification:
    kind: Kind
    reason: str

    @property
    def automatic(self) -> bool:
        """Mail that must never get an automatic answer."""
        return self.kind is not Kind.HUMAN


@dataclass(frozen=True)
class Signals:
    """Everything a detector may look at besides the message."""

    mail_from: str  # envelope sender; '' or '<>' is the null sender
    keys: Sequence[str]


_NULL_SENDERS = {"", "<>"}
_DAEMON_RE = re.compile(
    r"^(mailer-daemon|mailer_daemon|post_?master|mail-daemon|mailerdaemon|mdaemon|mail\.delivery\.system|ndr|"
    r"bounces?|nobody-bounce)(@|$)", re.IGNORECASE)
_DAEMON_NAME_RE = re.compile(
    r"mail delivery|delivery subsystem|postmaster|mailer|system administrator|mail administrator|"
    r"mail ?server|antivirus", re.IGNORECASE)
_BOUNCE_SUBJECT_RE = re.compile(
    r"(undeliver|not (been )?delivered|could not be delivered|delivery (status )?(notification|failure|report|problem)|"
    r"delivery (has )?failed|mail delivery|returned mail|return(ing|ed) (mail|message|to sender)|failure notice|"
    r"failed mail|mail failure|mail error|non[- ]?delivery|delayed mail|message delayed|delivery warning|"
    r"warning: message|processing error|automatically rejected|permanent delivery|failure delivery|"
    r"non remis|non distribuable|échec de (la )?(remise|distribution)|impossible de remettre|"
    r"unzustellbar|nicht zustellbar|no se puede entregar|no entregado|mancata consegna|non recapitat|"
    r"error (while )?sending (your )?(mail|message)|could not be sent|unable to deliver|"
    # Japanese carriers and MTAs (au one net/KDDI: "mail error notice"; "undelivered", "delivery error")
    r"メールエラー|配信エラー|配送エラー|送信エラー|不達|未達|配信不能|配信できません|送信できません)",
    re.IGNORECASE,
)
WEAK_BOUNCE_REASON = "a bounce subject on a message that answers nothing"
# Carriers that send their failure notices from a no-reply address under a plain subject
# ("Mail"): au by KDDI writes them from no-reply@<host>.dion.ne.jp, replies going to
# no-reply@app.auone-net.jp. With the null sender, that address is the report's mark.
_CARRIER_REPORT_FROM_RE = re.compile(r"^no-reply@([\w-]+\.)*dion\.ne\.jp$", re.IGNORECASE)
_CARRIER_REPORT_REPLY_TO_RE = re.compile(r"\bno-reply@app\.auone-net\.jp\b", re.IGNORECASE)
_OOO_PREFIX = (
    r"auto(matic)?[ -]?(reply|response|antwort|answer)|autoreply|out of (the )?office( auto ?reply)?|out-of-office|"
    r"ooo|auto|ticket re[çc]u|ticket received|request received|demande re[çc]ue|"
    r"[^:]{0,40}autom[aā]tisk[aā] atbilde|"
    r"absence|absent|away|on vacation|vacation( reply)?|r[ée]ponse automatique|message d'absence|"
    r"abwesenheit(snotiz)?|automatische antwort|fuera de la oficina|respuesta autom[áa]tica|ausencia|"
    r"fuori sede|risposta automatica|assente|fuori ufficio|congés|en congé"
)
_OOO_SUBJECT_RE = re.compile(rf"^\s*(\[?({_OOO_PREFIX})\]?)\s*(:|-|$)", re.IGNORECASE)
_OOO_ANYWHERE_RE = re.compile(
    r"(automatic reply|auto[- ]?reply|out of (the )?office|away from (my )?(mail|e-?mail|desk)|"
    r"r[ée]ponse automatique|abwesenheitsnotiz|respuesta autom[áa]tica|risposta automatica)", re.IGNORECASE)


def _loop(message: ParsedMessage, signals: Signals) -> Classification | None:
    for value in message.headers.get(LOOP_HEADER.lower(), ()):
        if loop_header_valid(value, signals.keys):
            return Classification(Kind.LOOP, f"carries our own {LOOP_HEADER} header")
    return None


def looks_like_bounce(message: ParsedMessage, mail_from: str) -> str | None:
    """Why the message looks like a bounce, or None. Gates the bounce detectors (flufl.bounce
    guesses; it must only see messages that are bounces by their envelope, sender or subject)."""
    if message.content_type == "multipart/report":
        report_type = (message.header("content-type") or "").lower()
        if "disposition-notification" not in report_type:
            return "multipart/report"
    if message.has_header("x-failed-recipients"):
        return "X-Failed-Recipients header"
    if ses.is_notice(message.text or ""):
        return "Amazon SES bounce notification"
    if arf.JMRP_FROM_RE.match(message.from_address) and arf.JMRP_SUBJECT_RE.match(message.subject):
        return "Hotmail complaint (JMRP) report"
    null_sender = mail_from.strip() in _NULL_SENDERS
    daemon = bool(_DAEMON_RE.match(message.from_address)) or bool(_DAEMON_NAME_RE.search(message.from_name)) \
        or not message.from_address
    subject = message.subject
    bounce_subject = bool(_BOUNCE_SUBJECT_RE.search(subject)) and not REPLY_PREFIX_RE.match(subject)
    if (null_sender or daemon) and (bounce_subject or not subject.strip()):
        return "null sender or mailer-daemon with a bounce subject"
    if null_sender and (_CARRIER_REPORT_FROM_RE.match(message.from_address)
                        or _CARRIER_REPORT_REPLY_TO_RE.search(message.header("reply-to") or "")):
        return "null sender from a carrier's failure-notice address"
    if bounce_subject and not message.in_reply_to and not message.references:
        return WEAK_BOUNCE_REASON
    if daemon and _DAEMON_RE.match(message.from_address):
        return "sent by a mailer-daemon address"
    return None


def _bounce(message: ParsedMessage, signals: Signals) -> Classification | None:
    reason = looks_like_bounce(message, signals.mail_from)
    return Classification(Kind.BOUNCE, reason) if reason else None


def _auto_reply(message: ParsedMessage, signals: Signals) -> Classification | None:
    auto = (message.header("auto-submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return Classification(Kind.AUTO_REPLY, f"Auto-Submitted: {auto}")
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated", "x-autoresponse"):
        if message.has_header(name):
            return Classification(Kind.AUTO_REPLY, f"{name} header")
    if (message.header("x-auto-response-suppress") or "").strip() and _OOO_ANYWHERE_RE.search(message.subject):
        return Classification(Kind.AUTO_REPLY, "X-Auto-Response-Suppress with an out-of-office subject")
    precedence = (message.header("precedence") or "").strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        return Classification(Kind.AUTO_REPLY, f"Precedence: {precedence}")
    if _OOO_SUBJECT_RE.search(message.subject):
        return Classification(Kind.AUTO_REPLY, "out-of-office subject")
    if precedence in ("bulk", "junk") and _OOO_ANYWHERE_RE.search(message.subject):
        return Classification(Kind.AUTO_REPLY, f"Precedence: {precedence} with an out-of-office subject")
    if message.has_header("x-ms-exchange-inbox-rules-loop") and _OOO_ANYWHERE_RE.search(message.subject):
        return Classification(Kind.AUTO_REPLY, "Exchange inbox rule with an out-of-office subject")
    if signals.mail_from.strip() in _NULL_SENDERS:
        return Classification(Kind.AUTO_REPLY, "null envelope sender")
    return None


def _list(message: ParsedMessage, signals: Signals) -> Classification | None:
    precedence = (message.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return Classification(Kind.LIST, f"Precedence: {precedence}")
    if message.has_header("list-id") or message.has_header("list-unsubscribe"):
        return Classification(Kind.LIST, "mailing-list headers")
    return None


DETECTORS: tuple[Callable[[ParsedMessage, Signals], Classification | None], ...] = (_loop, _bounce, _auto_reply, _list)


def classify(message: ParsedMessage, signals: Signals) -> Classification:
    """The first detector that recognises the message wins; otherwise it is human mail."""
    for detector in DETECTORS:
        verdict = detector(message, signals)
        if verdict is not None:
            return verdict
    return Classification(Kind.HUMAN, "no automatic-mail signal")
