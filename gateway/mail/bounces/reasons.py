"""Why a delivery report was sent: a fixed taxonomy of reasons, and how to read one. Pure.

The reason names are Sisimai's (the reference bounce analyser, libsisimai-perl 4.25), plus
`authfailure` (Sisimai 5's name for SPF/DKIM/DMARC refusals), `expanded` and `challenge`.
Each reason has one consequence (`FailureKind`): only an address that does not exist is
dead; a full mailbox, a block, an expiry or a system error is trouble with a working
address; a refused size or content is a problem with one message; reports that are not
failures (delivered, feedback, auto-replies) are evidence, never bounces.

`reason_of` reads a reason from the enhanced status code and the remote server's words:
an unambiguous status code in the diagnostic first (a 5.0.0 report whose text quotes
5.2.2 is a full mailbox), then the words, then the status code's class.
"""

from __future__ import annotations

import re
from enum import Enum

from gateway.mail.bounces.sisimai_phrases import TABLES


class Reason(str, Enum):
    # the address does not exist
    USER_UNKNOWN = "userunknown"
    HOST_UNKNOWN = "hostunknown"  # no such domain, no MX
    HAS_MOVED = "hasmoved"  # the account was closed and replaced
    NOT_ACCEPT = "notaccept"  # the domain accepts no mail (null MX)
    # trouble with an address that exists
    SUSPEND = "suspend"  # account suspended or disabled
    MAILBOX_FULL = "mailboxfull"
    EXPIRED = "expired"  # the sending MTA gave up after retrying
    BLOCKED = "blocked"  # refused for the sending IP or host (blocklist, reputation, rDNS)
    AUTH_FAILURE = "authfailure"  # SPF, DKIM or DMARC
    SECURITY_ERROR = "securityerror"  # other security refusal (TLS required, auth needed)
    POLICY = "policyviolation"
    FILTERED = "filtered"  # refused by the recipient's own filter
    REJECTED = "rejected"  # our envelope sender was refused
    NO_RELAYING = "norelaying"
    SYSTEM_ERROR = "systemerror"
    SYSTEM_FULL = "systemfull"
    NETWORK_ERROR = "networkerror"
    TOO_MANY_CONN = "toomanyconn"
    MAILER_ERROR = "mailererror"
    SYNTAX_ERROR = "syntaxerror"
    UNDEFINED = "undefined"  # failed, no reason given
    # a problem with this one message
    MESSAGE_TOO_BIG = "mesgtoobig"
    EXCEED_LIMIT = "exceedlimit"
    SPAM = "spamdetected"
    VIRUS = "virusdetected"
    CONTENT_ERROR = "contenterror"
    # reports that are not failures
    DELAYED = "delayed"  # a warning: the message is still queued
    DELIVERED = "delivered"  # success DSN: delivered or relayed
    EXPANDED = "expanded"  # success DSN: delivered to a list or alias
    FEEDBACK = "feedback"  # an abuse complaint (ARF, RFC 5965)
    VACATION = "vacation"  # an auto-reply that went to the envelope sender
    CHALLENGE = "challenge"  # a challenge-response system asks us to prove we are human


class FailureKind(str, Enum):
    """What a report means for the address and the message (one consequence each)."""

    DEAD = "dead"  # the address does not exist: flag it
    TROUBLE = "trouble"  # the address exists but mail does not get through now: retry, count
    MESSAGE = "message"  # this message was refused (size, content): not the address's fault
    DELAYED = "delayed"  # a warning only
    REPORT = "report"  # not a failure at all (success, complaint, auto-reply)

    @property
    def failed(self) -> bool:
        return self in (FailureKind.DEAD, FailureKind.TROUBLE, FailureKind.MESSAGE)


DEAD_REASONS = frozenset({Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.HAS_MOVED, Reason.NOT_ACCEPT})
MESSAGE_REASONS = frozenset({Reason.MESSAGE_TOO_BIG, Reason.EXCEED_LIMIT, Reason.SPAM, Reason.VIRUS,
                             Reason.CONTENT_ERROR})
REPORT_REASONS = frozenset({Reason.DELIVERED, Reason.EXPANDED, Reason.FEEDBACK, Reason.VACATION, Reason.CHALLENGE})


def kind_of(reason: Reason, *, permanent: bool) -> FailureKind:
    """The consequence of `reason`. An address counts as dead only on a permanent report
    (a 4xx "user unknown" is a directory hiccup until it is final)."""
    if reason in REPORT_REASONS:
        return FailureKind.REPORT
    if reason is Reason.DELAYED:
        return FailureKind.DELAYED
    if reason in DEAD_REASONS:
        return FailureKind.DEAD if permanent else FailureKind.TROUBLE
    if reason in MESSAGE_REASONS:
        return FailureKind.MESSAGE
    return FailureKind.TROUBLE


# Enhanced status codes (RFC 3463) whose meaning does not depend on the words with them.
_CERTAIN_CODES = {
    "1.1": Reason.USER_UNKNOWN, "1.2": Reason.HOST_UNKNOWN, "1.3": Reason.USER_UNKNOWN, "1.6": Reason.HAS_MOVED,
    "2.2": Reason.MAILBOX_FULL, "2.3": Reason.EXCEED_LIMIT, "3.4": Reason.MESSAGE_TOO_BIG,
    "4.7": Reason.EXPIRED, "3.1": Reason.SYSTEM_FULL, "7.23": Reason.AUTH_FAILURE, "7.24": Reason.AUTH_FAILURE,
    "7.25": Reason.BLOCKED, "7.26": Reason.AUTH_FAILURE, "7.27": Reason.AUTH_FAILURE, "7.20": Reason.AUTH_FAILURE,
    "7.21": Reason.AUTH_FAILURE, "7.22": Reason.AUTH_FAILURE,
    # Exchange Online's own three-digit details (Microsoft's list of NDR codes): only it writes them
    "4.312": Reason.NETWORK_ERROR, "4.316": Reason.EXPIRED, "0.350": Reason.CONTENT_ERROR,
    "6.11": Reason.CONTENT_ERROR, "7.124": Reason.REJECTED, "7.133": Reason.REJECTED, "7.134": Reason.REJECTED,
    "7.135": Reason.REJECTED, "7.136": Reason.REJECTED, "7.501": Reason.SPAM, "7.502": Reason.SPAM,
    "7.503": Reason.SPAM, "7.504": Reason.FILTERED, "7.505": Reason.FILTERED, "7.506": Reason.BLOCKED,
    "7.507": Reason.BLOCKED, "7.508": Reason.TOO_MANY_CONN, "7.509": Reason.AUTH_FAILURE,
}
# Codes whose words usually say more (5.7.1 is spam, policy, relaying or a block).
_CLASS_CODES = {
    "1.4": Reason.FILTERED, "1.7": Reason.REJECTED, "1.8": Reason.REJECTED, "2.0": Reason.FILTERED,
    "2.1": Reason.SUSPEND, "2.4": Reason.FILTERED, "3.0": Reason.SYSTEM_ERROR, "3.2": Reason.NOT_ACCEPT,
    "3.3": Reason.SYSTEM_ERROR, "3.5": Reason.SYSTEM_ERROR, "4.0": Reason.NETWORK_ERROR, "4.1": Reason.EXPIRED,
    "4.2": Reason.NETWORK_ERROR, "4.3": Reason.SYSTEM_ERROR, "4.4": Reason.HOST_UNKNOWN, "4.5": Reason.SYSTEM_FULL,
    "4.6": Reason.NETWORK_ERROR, "5.3": Reason.TOO_MANY_CONN, "5.0": Reason.SYNTAX_ERROR,
    "5.2": Reason.SYNTAX_ERROR, "5.4": Reason.SYSTEM_ERROR, "6.0": Reason.CONTENT_ERROR,
    "7.0": Reason.SECURITY_ERROR, "7.1": Reason.BLOCKED, "7.2": Reason.BLOCKED, "7.7": Reason.SECURITY_ERROR,
    # RFC 3463 / 4954 / 3207: security conversion, features, cryptography, credentials, encryption
    "7.3": Reason.SECURITY_ERROR, "7.4": Reason.SECURITY_ERROR, "7.5": Reason.SECURITY_ERROR,
    "7.6": Reason.SECURITY_ERROR, "7.8": Reason.SECURITY_ERROR, "7.9": Reason.SECURITY_ERROR,
    "7.11": Reason.SECURITY_ERROR,
}


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# Words a receiving MTA writes itself about a mailbox it does not have (Lotus Domino,
# Exchange 5.5's IMS, qmail, Gmail, Postfix's local tables): certain whatever the command.
_CERTAIN_USER_UNKNOWN = _words(
    r"not listed in (the )?(domino directory|public name)", r"recipient name is not recognized",
    r"no mailbox here by that name", r"email account that you tried to reach does not exist",
    r"in (the )?(local recipient|virtual (alias|mailbox)|relay recipient) table", r"unknown local[- ]part",
    r"invalid (final )?delivery userid", r"domino ディレクトリには見つかりません",
)
# The remote server's words, most specific first. Field notes: the French lines are
# Orange/Free/SFR/La Poste, "not listed in domino directory" is Lotus Domino, "recipient
# name is not recognized" Exchange 5.5, "no mailbox here by that name" qmail.
_PATTERNS: tuple[tuple[Reason, re.Pattern[str]], ...] = (
    (Reason.MAILBOX_FULL, _words(
        r"mail ?box (is )?(full|over ?quota|exceeded)", r"mailbox size limit", r"over ?quota", r"quota (exceeded|full)",
        r"exceed(ed|s|ing)? (the |its |his |her |their )?(storage|mailbox|disk|quota|allocated)", r"quota violation", r"insufficient (disk )?space",
        r"(not enough|out of) (disk |storage )?space", r"mail ?box space not enough", r"disk quota", r"inbox is full",
        r"(mailbox|account|mailfolder|folder) (is )?(full|filled)", r"full mailbox", r"user (is )?over (the )?quota",
        r"bo[iî]te (aux lettres |mail )?(est )?pleine", r"espace (disque )?insuffisant", r"postfach (ist )?voll",
        r"their mailbox is full", r"storage (limit|quota|space) (exceeded|reached)", r"mailbox has exceeded",
        r"too much mail data",
    )),
    (Reason.NETWORK_ERROR, _words(r"host not found, try again", r"name service error.{0,80}try again",
                                  r"temporary (dns|name service) (error|failure)", r"message looping")),
    (Reason.EXPIRED, _words(r"not been collected after \d+", r"delivery failed \d+ attempts", r"aborted after [\d.]+ hour",
                            r"failed after \d+ (attempts|tries|days|hours)",
                            r"envelope expired")),  # OpenSMTPD's queue: the envelope outlived its lifetime
    (Reason.USER_UNKNOWN, _CERTAIN_USER_UNKNOWN),
    (Reason.USER_UNKNOWN, _words(
        r"user(name)? (is )?(unknown|not known)", r"invalid (final )?delivery userid", r"no matches to nameserver query", r"unknown (user|recipient|mailbox|local[- ]part|or illegal alias|address)",
        r"no such (user|recipient|mailbox|person|address|account)", r"(user|recipient|mailbox|address|account) (was )?not found",
        r"(user|recipient|mailbox|address|account|addressee) (does not|doesn't|did not) exist",
        r"(recipient|address|mailbox|user|destination) (is )?(invalid|unavailable|not valid)",
        r"invalid (recipient|address|mailbox|user)", r"not a valid (mailbox|user|recipient)",
        r"no mailbox here", r"mailbox unavailable", r"not listed in (the )?(domino directory|public name)",
        r"recipient name is not recognized", r"unrouteable address", r"unrouteable", r"address rejected",
        r"recipient (address )?rejected", r"is not a known user", r"no valid recipients?", r"bad destination mailbox",
        r"undeliverable address", r"user (account|mailbox) (is )?(unknown|unavailable)", r"unknown address",
        r"destinataire (invalide|inconnu)", r"utilisateur inconnu", r"adresse (invalide|inconnue)",
        r"empf[aä]nger (unbekannt|ung[uü]ltig)", r"unbekannt", r"email account that you tried to reach does not exist",
        r"this user doesn'?t have a", r"address (is )?unknown", r"no (such|valid) local user", r"user not exist",
        r"recipient unknown", r"the recipient does not", r"mailbox (is )?not (found|available|exist)",
        r"account (has been )?(deleted|removed|closed|terminated|discontinued)", r"no account by that name",
        r"unknown destination", r"rejected by the domain filter", r"address (wasn[’']t|was not) found",
        r"recipientnotfound",
    )),
    (Reason.HOST_UNKNOWN, _words(
        r"host (or domain name )?(is )?(unknown|not found)", r"(domain|host) (name )?(does not|doesn't) exist",
        r"no such (domain|host)", r"(unknown|invalid|unresolvable) (host|domain)", r"domain (is )?(unknown|not found)",
        r"name or service not known", r"nxdomain", r"no (mx|mail exchanger)", r"couldn'?t find any host",
        r"unrouteable mail domain", r"domain (is )?not (configured|resolvable|exist)", r"dns: no such",
        r"host not found", r"mx (record|lookup) (failed|not found)",
    )),
    (Reason.HAS_MOVED, _words(r"has been replaced by", r"address has (moved|changed)", r"no longer (valid|in use|active)")),
    # "does not accept mail from <our IP, our kind of sender>" is a block, not a domain without
    # mail; "not accepting mail with attachments" (AOL) refuses the message's content
    (Reason.POLICY, _words(r"not accept(ing)? (e-?mail|mail|messages) with")),
    (Reason.NOT_ACCEPT, _words(r"null mx", r"does not accept (any )?mail(?! from| with)",
                               r"not accept(ing)? (any )?mail(?! from| with)")),
    (Reason.MESSAGE_TOO_BIG, _words(
        r"message (is |was )?(too (big|large)|exceeds)", r"(message|mail) (file )?size (limit )?(exceed|too)",
        r"size limit", r"exceeds? (the )?(maximum|max|size|allowed|message)", r"message length exceeds",
        r"too big", r"too large", r"message size", r"maximum message size",
    )),
    (Reason.VIRUS, _words(r"virus", r"malware", r"infected", r"eicar", r"trojan", r"worm found", r"dangerous content")),
    (Reason.AUTH_FAILURE, _words(
        r"\bdmarc\b", r"\bspf\b", r"\bdkim\b", r"sender policy framework", r"unauthenticated (e-?mail|mail|sender)",
        r"(authentication|authenticity) (check )?(failed|failure)", r"not (properly )?authenticated",
    )),
    (Reason.EXPIRED, _words(
        r"delivery time expired", r"retry time(out)? (not reached|exceeded)", r"retry timeout", r"(message|delivery) expired",
        r"cannot send (this )?message for \d+ days?", r"could not be delivered (for|within) \d+", r"gave up", r"giving up",
        r"too long in (the )?queue", r"in the queue too long", r"queue (time|lifetime) (expired|exceeded)",
        r"has been delayed for", r"message timed out", r"was not delivered within", r"undelivered for \d+",
        r"expired after", r"lifetime (expired|exceeded)", r"still failing after \d+ hours", r"gave up after \d+ attempts",
    )),
    (Reason.SUSPEND, _words(
        r"(account|mailbox|user|address) (has been |is |was )?(temporarily )?(suspended|disabled|deactivated|inactive|"
        r"locked|blocked|frozen|expired|not active|on hold)", r"suspended", r"disabled or discontinued",
        r"inactive (user|account|mailbox)", r"compte (d[ée]sactiv[ée]|suspendu|bloqu[ée])", r"deactivated",
    )),
    (Reason.NO_RELAYING, _words(r"relay(ing)? (access )?(denied|not (permitted|allowed))", r"unable to relay",
                                r"not permitted to relay", r"we do not relay", r"relaying (is )?(prohibited|denied)",
                                r"relay not permitted")),
    (Reason.REJECTED, _words(
        r"sender (address )?(rejected|denied|refused|blocked|verify failed|not allowed)", r"sender verif",
        r"domain of sender address", r"bad sender", r"mail from .{0,40} (rejected|refused)", r"sender is not allowed",
        r"invalid sender", r"envelope sender",
    )),
    (Reason.TOO_MANY_CONN, _words(r"frequency limit", r"too many (connections|sessions|concurrent)",
                                  r"connection rate", r"sending rate", r"rate[- ]limit")),
    (Reason.BLOCKED, _words(
        r"black ?list", r"block ?list", r"\brbl\b", r"dnsbl", r"spamhaus", r"spamcop", r"sorbs", r"barracudacentral",
        r"listed (at|in|on|by)", r"reputation", r"client host (\[.{0,60}\] )?(rejected|blocked|refused)",
        r"your (ip|host|server|network)", r"ip (address )?(is )?(blocked|blacklisted|listed|rejected|banned)",
        r"reverse (dns|lookup)", r"\bptr\b", r"rdns", r"not allowed to send", r"connection (refused|rejected) (by|from)",
        r"poor reputation", r"temporarily deferred", r"refused by antispam", r"service unavailable.{0,30}client",
        # Orange / La Poste (French): "Adresse IP source bloquee", "ont ete bloques par nos services"
        r"adresse ip (source )?bloqu", r"ont [ée]t[ée] bloqu[ée]s par nos services",
    )),
    (Reason.SPAM, _words(r"spam", r"\bube\b", r"unsolicited", r"junk", r"bulk (e-?mail|mail)", r"content (rejected|refused)",
                         r"message (content )?(was )?rejected", r"scored too high", r"suspicious", r"phish")),
    (Reason.BLOCKED, _words(r"access denied", r"blocked", r"banned")),
    (Reason.POLICY, _words(r"policy", r"prohibited", r"not permitted", r"not allowed", r"violat")),
    (Reason.FILTERED, _words(r"filter(ed)?", r"refused by (the )?recipient", r"recipient (has )?(refused|rejected)")),
    (Reason.SYSTEM_FULL, _words(r"system (is )?full", r"insufficient system storage", r"disk (is )?full")),
    (Reason.TOO_MANY_CONN, _words(r"too many (connections|recipients|messages|sessions|concurrent)", r"rate limit",
                                  r"throttl", r"try (again )?later", r"exceeded the (rate|number)")),
    (Reason.NETWORK_ERROR, _words(
        r"connection (timed out|refused|reset|lost|closed)", r"timed? ?out", r"no route to host", r"network is unreachable",
        r"lost connection", r"could not connect", r"unable to connect", r"(dns|lookup) (error|failure)",
        r"temporary lookup failure", r"routing loop", r"mail loop", r"too many hops", r"loop detected", r"loops back",
    )),
    (Reason.SECURITY_ERROR, _words(r"tls", r"starttls", r"encryption", r"certificate", r"authentication required",
                                   r"must (be )?authenticat")),
    (Reason.MAILER_ERROR, _words(r"mailer error", r"command (died|failed)", r"exit (code|status)", r"pipe to",
                                 r"program (failed|exited)", r"unknown mailer")),
    (Reason.SYSTEM_ERROR, _words(r"system error", r"error while being processed", r"internal (server )?error", r"server error", r"local error",
                                 r"configuration error", r"i/o error", r"temporary (local )?(problem|failure|error)",
                                 r"resources? (temporarily )?unavailable", r"service (not available|unavailable)")),
    (Reason.SYNTAX_ERROR, _words(r"syntax error", r"command unrecognized", r"unrecognized command",
                                 r"malformed (recipient )?address", r"incorrectly constructed")),
    (Reason.CONTENT_ERROR, _words(r"content error", r"conversion", r"8-?bit", r"header (error|too long)", r"mime")),
)
# Sisimai's own phrase tables (sisimai_phrases.py), tried in Sisimai's order for reading a
# diagnostic, before our broader patterns: the field's vocabulary for each reason.
_FIELD_ORDER = ("mailboxfull", "mesgtoobig", "exceedlimit", "suspend", "userunknown", "filtered", "rejected",
                "hostunknown", "spamdetected", "policyviolation", "virusdetected", "toomanyconn", "blocked",
                "securityerror", "systemerror", "networkerror", "expired", "contenterror", "hasmoved",
                "systemfull", "notaccept", "mailererror", "norelaying")


def _field_matcher(entry: dict):
    phrases = tuple(entry.get("index", ()))
    vetoes = tuple(entry.get("isnot", ()))
    regex = None
    if "regex" in entry:
        pattern, verbose = entry["regex"]
        regex = re.compile(pattern, re.VERBOSE if verbose else 0)

    def matches(lowered: str) -> bool:
        if any(v in lowered for v in vetoes):
            return False
        return any(p in lowered for p in phrases) or bool(regex and regex.search(lowered))
    return matches


_FIELD_MATCHERS = tuple((Reason(name), _field_matcher(TABLES[name])) for name in _FIELD_ORDER if name in TABLES)


def field_reason(text: str) -> Reason | None:
    """The reason Sisimai's phrase tables give the remote server's words, if any."""
    lowered = " ".join(text.lower().split())
    for reason, matches in _FIELD_MATCHERS:
        if matches(lowered):
            return reason
    return None


_MAIL_FROM_RE = re.compile(r"after mail from|in reply to mail from|>>> mail from|mail from command", re.IGNORECASE)
# qmail-remote names the step that failed: "Connected to <ip> but sender was rejected." is
# its MAIL command refused, "but my name was rejected" its HELO, "but greeting failed" the
# banner; whatever words the remote server added (often "Access denied"), nothing was said
# about the recipient.
_QMAIL_STEP_RE = re.compile(r"connected to \S+ but (sender was rejected|my name was rejected|greeting failed)",
                            re.IGNORECASE)
_CONNECT_RE = re.compile(r"after initial connection|in reply to (helo|ehlo)|after (helo|ehlo)|>>> (helo|ehlo)|"
                         r"greeting|while connected", re.IGNORECASE)


_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY_RE = re.compile(r"(?<![\d.\-])([245])\d\d(?=[ -])")


def status_codes(text: str) -> list[str]:
    """Enhanced status codes written in `text`, in order."""
    return [".".join(m.groups()) for m in _STATUS_RE.finditer(text or "")]


def reply_class(text: str) -> str | None:
    """The class ("4" or "5") of the first SMTP reply code in `text`, if any."""
    match = _REPLY_RE.search(text or "")
    return match.group(1) if match else None


def _certain(code: str, text: str = "") -> Reason | None:
    if not code or code[0] not in "45":
        return None
    if code.split(".", 1)[1] == "1.10":
        # RFC 7505's null MX; Exchange Online writes 5.1.10 for RecipientNotFound. Anyone
        # else's 5.1.10 (Sendmail's in an alias loop) is no proof either way: the words decide.
        if _NULL_MX_RE.search(text):
            return Reason.NOT_ACCEPT
        return Reason.USER_UNKNOWN if _RECIPIENT_NOT_FOUND_RE.search(text) else None
    return _CERTAIN_CODES.get(code.split(".", 1)[1])


# The remote server says its user's own settings refused the message (Facebook's RCP-P2
# "Refused due to recipient preferences"): a working address that does not want our mail.
_RECIPIENT_CHOICE_RE = re.compile(r"recipient'?s? (own )?(preferences|settings|privacy settings)|"
                                  r"refused by the recipient'?s? (filter|rules)|"
                                  r"\b(they are|(s)?he is|recipient is) not accepting (e-?mail|mail|messages) from",
                                  re.IGNORECASE)
_RECIPIENT_NOT_FOUND_RE = re.compile(r"recipient ?not ?found|resolver\.adr\.", re.IGNORECASE)
_NULL_MX_RE = re.compile(r"null mx|does not accept (any )?mail(?! from| with)|not accept(ing)? (any )?mail(?! from| with)",
                         re.IGNORECASE)
_STATED_NULL_MX_RE = re.compile(r"\bnull mx\b", re.IGNORECASE)  # RFC 7505 named: certain whatever the code


# Reasons about our side of the conversation (our IP, our rate, our sender, our content):
# a remote server that writes one of them next to a 5.1.x code has not said the address
# is missing, whatever code it picked (GoDaddy's "550 5.1.1 ... has sent to too many
# recipients this hour", "553 5.1.3" with a Spamhaus link).
_ABOUT_US = frozenset({Reason.BLOCKED, Reason.TOO_MANY_CONN, Reason.SPAM, Reason.REJECTED, Reason.POLICY,
                       Reason.SECURITY_ERROR, Reason.AUTH_FAILURE, Reason.NO_RELAYING})
# Reasons about a mailbox that exists, or about this one message: next to a 5.1.x code they
# contradict it too (Sendmail's "5.1.1" over "550 [SUSPEND] Mailbox currently suspended", a
# "5.1.1" DSN whose remote server said "max message size exceeded").
_A_WORKING_MAILBOX = frozenset({Reason.MAILBOX_FULL, Reason.SUSPEND, Reason.MESSAGE_TOO_BIG, Reason.EXCEED_LIMIT,
                                Reason.VIRUS})


def _unless_about_us(reason: Reason, text: str) -> Reason:
    """`reason` read from a status code, unless it would call the address dead while the
    remote server's own words name only a cause on our side: a dead verdict flags the
    address for good, so it needs the words not to contradict the code."""
    if reason not in DEAD_REASONS or not text:
        return reason
    said = field_reason(text)
    if said in DEAD_REASONS:
        return reason
    words = words_reason(text)
    contrary = _ABOUT_US | _A_WORKING_MAILBOX
    return words if words in contrary else said if said in contrary and words is None else reason


def words_reason(text: str) -> Reason | None:
    """The reason the remote server's words give, if any."""
    for reason, pattern in _PATTERNS:
        if pattern.search(text):
            return reason
    return None


_AFTER_DATA_RE = re.compile(r"in reply to (end of )?data|>>> data|after (end of )?data|data command|end of data",
                            re.IGNORECASE)
# An SMTP conversation's RCPT step ("after RCPT TO:<a>", "in reply to RCPT TO command",
# ">>> RCPT To:<a>"), not a report's summary of the envelope ("RCPT TO: a", Apache James).
_BEFORE_DATA_RE = re.compile(r"(after|to|>>>|while sending)\s+rcpt\b|\brcpt to:?\s*<|\bsmtp:\s*rcpt\b|\brcpt( to)? (command|generated|response)|"
                             r"in reply to mail|does not like recipient|recipient address rejected", re.IGNORECASE)


def reason_of(status: str | None, text: str | None, *, gave_up: bool = True, context: str = "") -> Reason:
    """The reason of one failed delivery from its enhanced status code and diagnostic text.

    `gave_up` is False for a delay warning (Action: delayed): the message is still queued.
    `context` is the report's text about this recipient, read when the diagnostic itself
    gives no reason (and for the SMTP command the refusal answered). A 4.x.x failure the
    sending MTA gave up on is an expiry. "User unknown" in answer to DATA, or with a
    mailbox-status code (5.2.x), is a recipient filter, not proof the address is dead
    (content filters answer that way too; Sisimai reads it the same).
    """
    text = " ".join((text or "").split())
    context = " ".join((context or "").split())
    if not gave_up:
        return Reason.DELAYED
    if _RECIPIENT_CHOICE_RE.search(text):
        return Reason.FILTERED  # the address exists; its owner's settings refuse us (whatever the code)
    field = status_codes(status or "")[:1]
    codes = field + status_codes(text)
    for code in codes:
        reason = _certain(code, text + " " + context)
        if reason is not None:
            return _unless_about_us(reason, text)
    reason = field_reason(text) or words_reason(text)
    if reason is None and context:  # the diagnostic says nothing: the report's text about the recipient
        for code in status_codes(context):
            if _certain(code, context) is not None:
                return _certain(code, context)
        reason = field_reason(context) or words_reason(context)
    where = text + " " + context
    step = _QMAIL_STEP_RE.search(where)
    if step and reason not in DEAD_REASONS | {Reason.MAILBOX_FULL, Reason.SUSPEND}:
        return Reason.REJECTED if step.group(1).lower().startswith("sender") else Reason.BLOCKED
    if _MAIL_FROM_RE.search(where) and reason in (None, Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.FILTERED,
                                                  Reason.UNDEFINED, Reason.SYSTEM_ERROR):
        return Reason.REJECTED  # our envelope sender was refused: nothing said about the recipient
    if reason is None and _CONNECT_RE.search(where):
        return Reason.BLOCKED  # refused before any address was named: our host
    if (reason is Reason.USER_UNKNOWN and field and field[0][2:].startswith("2.")
            and field_reason(text) is not Reason.USER_UNKNOWN):
        # a mailbox-status code (5.2.x) beside words that only look like a missing mailbox
        # ("Mailbox not available"): the mailbox is there and refuses; Sisimai's own phrases
        # for a missing user ("User Unknown") still name one
        return Reason.FILTERED
    if reason is Reason.USER_UNKNOWN and not _CERTAIN_USER_UNKNOWN.search(text + " " + context):
        # The remote server's own words: proof only in answer to RCPT, before any content
        # was sent; after DATA (or with no command named) a filter may say the same.
        before_data = _BEFORE_DATA_RE.search(text + " " + context)
        if not before_data or _AFTER_DATA_RE.search(text + " " + context):
            return Reason.FILTERED
    if _STATED_NULL_MX_RE.search(text):
        return Reason.NOT_ACCEPT  # RFC 7505: the domain says it takes no mail, whatever the code
    if field and field[0][0] == "4" and reason not in (Reason.MAILBOX_FULL, Reason.USER_UNKNOWN) and not (
            reason is not None and reply_class(text) == "5"):
        # A temporary status the MTA gave up on is an expiry, unless the remote server's own
        # reply was a permanent refusal that names its cause (Postfix writes 4.0.0 for
        # Orange's "550 ... ME Adresse IP source bloquee" when it gave up after retrying).
        return Reason.EXPIRED
    if reason is not None:
        return reason
    codes = codes or status_codes(context)
    for code in codes:
        reason = _CLASS_CODES.get(code.split(".", 1)[1]) if code[0] in "45" else None
        if reason is not None:
            return reason
    first = (codes[0][0] if codes else None) or reply_class(text) or reply_class(context)
    return Reason.EXPIRED if first == "4" else Reason.UNDEFINED


def permanent_of(status: str | None, text: str | None, *, gave_up: bool) -> bool:
    """Whether a failure is final for the address: a 5.x.x status or 5xx reply, or a final
    report that gives no code at all (Domino, Exchange 5.5). A 4.x.x report is final for the
    message (the MTA gave up) but no proof that the address is dead."""
    if not gave_up:
        return False
    codes = status_codes(status or "")[:1] + status_codes(text or "")
    first = (codes[0][0] if codes else None) or reply_class(text or "")
    return first != "4"
