"""The facts a chargeback answer needs, read from the text of one message or attachment.
Pure: text (and the day it was received) in, facts out.

What is recognised (English and French):
- tracking numbers, with their carrier (see `carriers`), and links to tracking pages;
- carriers named in the text;
- refund or credit references, and refund dates (done or promised);
- delivery dates (actual, or promised/expected);
- return authorisations (RMA numbers) and return offers;
- mentions of documents (proof of delivery, product description, order confirmation or
  invoice) when the message carries an attachment or a link; attachments are also judged
  by their name and type (`attachment_facts`): photos, proofs of delivery, invoices.

A phrase under a negation ("never delivered", "pas de preuve de livraison") proves nothing
and is skipped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl, urlsplit

from gateway.evidence import carriers
from gateway.evidence.dates import find_dates

TRACKING_NUMBER = "tracking_number"
CARRIER = "carrier"
REFUND_REFERENCE = "refund_reference"
REFUND_DATE = "refund_date"
DELIVERY_DATE = "delivery_date"
RETURN_AUTHORISATION = "return_authorisation"
RETURN_OFFER = "return_offer"
PROOF_OF_DELIVERY = "proof_of_delivery"
PHOTO = "photo"
PRODUCT_DESCRIPTION = "product_description"
ORDER_RECORD = "order_record"
KINDS = (TRACKING_NUMBER, CARRIER, REFUND_REFERENCE, REFUND_DATE, DELIVERY_DATE, RETURN_AUTHORISATION,
         RETURN_OFFER, PROOF_OF_DELIVERY, PHOTO, PRODUCT_DESCRIPTION, ORDER_RECORD)

PROMISED = "promised"
ACTUAL = "actual"

CONTEXT_CHARS = 160  # how far from a bare number its carrier's name may stand
MIN_PHOTO_BYTES = 30_000  # smaller images are logos and signature icons, not photos
MAX_TEXT_CHARS = 100_000


@dataclass(frozen=True)
class Fact:
    kind: str
    value: str  # the number or reference as written (spaces removed), an ISO date, or a phrase
    carrier: str | None = None  # the carrier's name, for tracking numbers and carrier mentions
    qualifier: str | None = None  # dates: "actual" or "promised"
    excerpt: str = ""  # the words it was read from


def fold(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes straightened, one character for
    one character (so positions in the folded text are positions in `text`)."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFKD", char)[:1] or char
        lower = base.lower()
        out.append(lower if len(lower) == 1 else char)
    return "".join(out).replace("\u2019", "'").replace("\u2018", "'")


def _excerpt(text: str, start: int, end: int, around: int = 60) -> str:
    left = max(0, start - around)
    right = min(len(text), end + around)
    snippet = " ".join(text[left:right].split())
    return ("…" if left else "") + snippet + ("…" if right < len(text) else "")


_NEGATION_RE = re.compile(r"\b(?:not|never|no|without|nor|pas|jamais|aucune?|sans|ni)\b|n't\b|\bn'(?:a|ai|avons|est|ont)\b")


def _negated(folded: str, start: int, window: int = 40) -> bool:
    """Whether a negation stands in the same clause shortly before `start`."""
    before = folded[max(0, start - window):start]
    before = re.split(r"[.!?;\n]|\bmais\b|\bbut\b", before)[-1]
    return bool(_NEGATION_RE.search(before))


# --- tracking numbers ----------------------------------------------------------------------
_URL_RE = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_DIGITS_RE = re.compile(r"(?<![\w/-])(?<!\d[.,])\d{8,22}(?![\w/-]|[.,]\d)")
_TRACKING_WORDS_RE = re.compile(
    r"(?:tracking|track(?:ing)? (?:number|no|code|id)|suivi|parcel (?:number|no|id)|consignment (?:number|no)|"
    r"waybill|numero (?:de |d')(?:suivi|colis|tracking|envoi|l'envoi|expedition)|n° (?:de )?(?:suivi|colis)|"
    r"colis (?:n°|numero|no))\s*(?:number|no|n°|numero|#|id)?\s*[:#]?\s*$")
_KEYED_TOKEN_RE = re.compile(r"[A-Za-z0-9]{8,30}")
_PHONE_RE = re.compile(r"\b(?:tel|phone|telephone|fax|mobile|portable|appel\w*|call|joindre|whatsapp)\b[^\n]{0,15}$")
_FRENCH_PHONE_RE = re.compile(r"0[1-9]\d{8}")  # 10 digits from 01 to 09: a French phone number


def _mentions(folded: str) -> list[tuple[int, carriers.Carrier]]:
    return sorted(((m.start(), c) for c in carriers.CARRIERS for m in c.mention.finditer(folded)),
                  key=lambda item: item[0])


def _nearest(mentions, start: int, end: int, fits=lambda c: True) -> carriers.Carrier | None:
    best = None
    for position, carrier in mentions:
        distance = start - position if position < start else position - end
        if distance <= CONTEXT_CHARS and fits(carrier) and (best is None or distance < best[0]):
            best = (distance, carrier)
    return best[1] if best else None


def tracking_facts(text: str, folded: str) -> list[Fact]:
    """Tracking numbers (with their carrier) and carrier mentions in `text`."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []
    mentions = _mentions(folded)

    def free(start: int, end: int) -> bool:
        return not any(start < e and s < end for s, e in taken)

    def add(start: int, end: int, number: str, name: str | None) -> None:
        taken.append((start, end))
        facts.append(Fact(TRACKING_NUMBER, number, carrier=name, excerpt=_excerpt(text, start, end)))

    for match in _URL_RE.finditer(text):
        taken.append(match.span())  # numbers inside any link are never read as bare numbers
        parts = urlsplit(match.group(0))
        carrier = carriers.carrier_for_host(parts.hostname or "")
        if carrier is None:
            continue
        values = [v for _, v in parse_qsl(parts.query)] + [p for p in parts.path.split("/") if p]
        number = next((v.upper() for v in reversed(values) if re.fullmatch(r"[A-Za-z0-9]{8,35}", v)
                       and any(ch.isdigit() for ch in v)), None)
        if number:
            facts.append(Fact(TRACKING_NUMBER, number, carrier=carrier.name, excerpt=_excerpt(text, *match.span())))
    for pattern, key in carriers.STANDALONE:
        for match in pattern.finditer(text):
            number = match.group(0).replace(" ", "").upper()
            if not free(*match.span()) or not carriers.standalone_valid(number, key):
                continue
            named = _nearest(mentions, *match.span())
            if key == carriers.POST:
                key, name = carriers.carrier_of_s10(number, named.key if named else None)
            else:
                name = carriers.BY_KEY[key].name
            add(match.start(), match.end(), number, name)
    for match in _DIGITS_RE.finditer(text):
        start, end = match.span()
        number = match.group(0)
        if not free(start, end) or _PHONE_RE.search(folded[max(0, start - 30):start]):
            continue
        keyed = bool(_TRACKING_WORDS_RE.search(folded[max(0, start - 45):start]))
        carrier = _nearest(mentions, start, end, lambda c: len(number) in c.digit_lengths)
        if carrier is not None and (keyed or not _FRENCH_PHONE_RE.fullmatch(number)):
            add(start, end, number, carrier.name)
        elif keyed:
            add(start, end, number, _only_carrier(mentions))
    for match in _KEYED_TOKEN_RE.finditer(text):  # "tracking number: AB12CD34EF"
        start, end = match.span()
        token = match.group(0)
        if free(start, end) and any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token) \
                and _TRACKING_WORDS_RE.search(folded[max(0, start - 45):start]):
            add(start, end, token.upper(), _only_carrier(mentions))
    seen = set()
    for position, carrier in mentions:
        if carrier.key not in seen:
            seen.add(carrier.key)
            facts.append(Fact(CARRIER, carrier.name, carrier=carrier.name,
                              excerpt=_excerpt(text, position, position + 12)))
    return facts


def _only_carrier(mentions) -> str | None:
    names = {carrier.name for _, carrier in mentions}
    return names.pop() if len(names) == 1 else None


# --- references ----------------------------------------------------------------------------
_REF = r"(?P<value>[a-z0-9][a-z0-9_/-]{2,39})"
_NUMBER_WORD = r"(?:reference|ref|number|no|n°|numero|num|id|transaction id|#)\.?"
_REFUND_REF_RES = (
    re.compile(rf"\b(?:refund|reimbursement|credit note|credit memo|remboursement|avoir)\b[^\n.!?]{{0,40}}?"
               rf"\b{_NUMBER_WORD}\s*(?:is|est|was|:|#|=)?\s*{_REF}"),
    re.compile(rf"\b(?:reference|ref|n°|numero)\.?\s*(?:of the |du |de |de l'|d')?(?:refund|remboursement|avoir)"
               rf"\s*[:#]?\s*{_REF}"),
    re.compile(r"\b(?:credit note|avoir)\s*(?:n°|no\.?|#|:)?\s*(?P<value>[a-z]{0,5}[-_/]?\d[a-z0-9_/-]{2,38})"),
)
_RMA_RES = (
    re.compile(rf"\b(?:rma|return (?:merchandise )?authori[sz]ation|return (?:number|reference|code|id)|"
               rf"(?:numero|n°|reference|code) (?:de |du |d')?retour|autorisation de retour|accord de retour)"
               rf"\s*(?:number|no\.?|n°|numero|#)?\s*[:#]?\s*{_REF}"),
)


def _reference_facts(text: str, folded: str, patterns, kind: str) -> list[Fact]:
    facts = []
    for pattern in patterns:
        for match in pattern.finditer(folded):
            start, end = match.span("value")
            value = text[start:end].rstrip("-_/")
            if any(ch.isdigit() for ch in value) and not _negated(folded, match.start()):
                facts.append(Fact(kind, value, excerpt=_excerpt(text, match.start(), end)))
    return facts


# --- dates ---------------------------------------------------------------------------------
_DELIVERY_PROMISED = re.compile(
    r"(?:will|should|shall|would) (?:be )?(?:deliver|arriv|reach)|expected|estimated|scheduled|arrive (?:by|on|before)|"
    r"delivery (?:is )?(?:planned|date)|(?:deliver|ship)(?:ed)? by|"
    r"livraison (?:prevue|estimee|programmee|attendue)|date de livraison|sera (?:livre|remis|distribue)|"
    r"devrait (?:etre livre|arriver|etre remis)|arrivera|livre (?:avant|d'ici)|prevue?s? (?:pour|le)|d'ici (?:le|au)")
_DELIVERY_ACTUAL = re.compile(
    r"\bdelivered\b|\bdelivery (?:was )?(?:made|completed)\b|\bsigned for\b|\breceived by\b|"
    r"\bete livree?s?\b|\blivree?s?\s+#|\blivree?s? (?:le|a|au|chez|en)\b|\bremise? (?:le|en main)\b|\bdistribuee?s?\b|"
    r"\bdeposee?s? (?:le|en|au|dans)\b|\blivraison (?:effectuee|realisee)\b|\ba ete remis\b")
_REFUND_PROMISED = re.compile(
    r"will (?:be )?(?:refund|reimburs|credit)|refund (?:will|should)|(?:refund|reimburse) you (?:by|before|on)|"
    r"remboursement (?:sera|interviendra|devrait)|sera (?:rembourse|credite|vire)|rembourserons|vous rembourser|"
    r"d'ici (?:le|au)")
_REFUND_DONE = re.compile(
    r"\brefunded\b|\breimbursed\b|\brefund (?:was |has been )?(?:issued|made|processed|sent|completed)\b|"
    r"\bcredited\b|\brembourse(?:e|s|es)?\b|\bremboursement (?:a ete )?(?:effectue|emis|realise|fait|envoye|traite)|"
    r"\bcredite\b|\bvirement\b|\bvire\b")
_REFUND_WORDS = re.compile(r"refund|reimburs|credit|rembours|virement|avoir")
_CLAUSE_END = re.compile(r"[.!?;\n]")


def _clause(folded: str, start: int, end: int) -> tuple[str, str]:
    """The words before and after a date, within its sentence."""
    before = folded[max(0, start - 90):start]
    before = _CLAUSE_END.split(before)[-1]
    after = _CLAUSE_END.split(folded[end:end + 60])[0]
    return before, after


def date_facts(text: str, folded: str, today: date) -> list[Fact]:
    """Delivery and refund dates, actual or promised."""
    facts = []
    for found in find_dates(folded, today):
        before, after = _clause(folded, found.start, found.end)
        near = before + " # " + after
        if _negated(before + " ", len(before) + 1, window=60):
            continue
        excerpt = _excerpt(text, found.start, found.end)
        value = found.value.isoformat()
        if _REFUND_WORDS.search(near):
            if _REFUND_PROMISED.search(near):
                facts.append(Fact(REFUND_DATE, value, qualifier=PROMISED, excerpt=excerpt))
            elif _REFUND_DONE.search(near):
                facts.append(Fact(REFUND_DATE, value, qualifier=ACTUAL, excerpt=excerpt))
            continue
        if _DELIVERY_PROMISED.search(near) and re.search(r"deliver|arriv|livr|recei|recev|remis|distrib|colis|parcel|"
                                                          r"package|order|commande", near):
            facts.append(Fact(DELIVERY_DATE, value, qualifier=PROMISED, excerpt=excerpt))
        elif _DELIVERY_ACTUAL.search(near):
            facts.append(Fact(DELIVERY_DATE, value, qualifier=ACTUAL, excerpt=excerpt))
    return facts


# --- offers and documents ------------------------------------------------------------------
_RETURN_OFFER_RE = re.compile(
    r"\b(?:you (?:can|may) (?:return|send (?:it|them) back)|please (?:return|send (?:it|them) back)|"
    r"return label|prepaid (?:return|label)|free return|we (?:offer|propose|can offer) (?:you )?(?:a |to )?"
    r"(?:return|replacement|exchange|refund|repair)|(?:replacement|exchange) (?:is|will be) (?:sent|shipped)|"
    r"vous pouvez (?:nous )?(?:le |la |les )?(?:retourner|renvoyer)|merci de (?:nous )?(?:le |la |les )?"
    r"(?:retourner|renvoyer)|etiquette (?:de )?retour|retour (?:gratuit|offert|pris en charge)|"
    r"nous vous proposons (?:un |une |le |la )?(?:retour|echange|remplacement|remboursement|reparation)|"
    r"(?:echange|remplacement) (?:sera|est) (?:envoye|expedie))")
_DOCUMENTS: tuple[tuple[str, re.Pattern], ...] = (
    (PROOF_OF_DELIVERY, re.compile(
        r"\b(?:proof of delivery|pod|delivery (?:confirmation|receipt|record)|signed (?:for )?by|"
        r"preuve de (?:livraison|distribution|depot|remise)|bon de livraison signe|avis de reception|"
        r"accuse de reception|remis en main propre|signe par)\b")),
    (PRODUCT_DESCRIPTION, re.compile(
        r"\b(?:product (?:description|page|sheet|listing)|item (?:description|listing)|description of the "
        r"(?:product|item)|as (?:described|shown|advertised) on|fiche (?:produit|article)|description (?:du|de l') ?"
        r"(?:produit|article)|page (?:du )?produit|l'annonce|notre annonce|votre annonce)\b")),
    (ORDER_RECORD, re.compile(
        r"\b(?:order confirmation|invoice|proof of (?:purchase|order)|bon de commande|confirmation de (?:la )?"
        r"commande|facture|recapitulatif de (?:la )?commande|justificatif d'achat)\b")),
)


def document_facts(text: str, folded: str, *, documents: bool) -> list[Fact]:
    """Return offers, and the documents a message says it carries (only when it carries an
    attachment or a link: "see the attached proof of delivery")."""
    facts = []
    for match in _RETURN_OFFER_RE.finditer(folded):
        if not _negated(folded, match.start()):
            facts.append(Fact(RETURN_OFFER, " ".join(text[match.start():match.end()].split()),
                              excerpt=_excerpt(text, *match.span())))
    if documents:
        for kind, pattern in _DOCUMENTS:
            for match in pattern.finditer(folded):
                if not _negated(folded, match.start()):
                    facts.append(Fact(kind, " ".join(text[match.start():match.end()].split()),
                                      excerpt=_excerpt(text, *match.span())))
    return facts


def recognise(text: str, *, today: date, documents: bool = False) -> list[Fact]:
    """Every fact in `text` (a message's new text, or an attachment's text), once each.

    `today` is the day the message was received (relative dates and dates without a year
    are read against it); `documents`: the message carries an attachment or a link, so a
    phrase naming a document (an invoice, a proof of delivery) counts.
    """
    text = text[:MAX_TEXT_CHARS]
    folded = fold(text)
    documents = documents or bool(_URL_RE.search(text))
    facts = (tracking_facts(text, folded) + _reference_facts(text, folded, _REFUND_REF_RES, REFUND_REFERENCE)
             + _reference_facts(text, folded, _RMA_RES, RETURN_AUTHORISATION) + date_facts(text, folded, today)
             + document_facts(text, folded, documents=documents))
    return unique(facts)


def unique(facts: list[Fact]) -> list[Fact]:
    """Facts without repeats (same kind, value and qualifier), first one kept."""
    seen: set[tuple[str, str, str | None]] = set()
    kept = []
    for fact in facts:
        key = (fact.kind, fact.value.upper() if fact.kind != RETURN_OFFER else fold(fact.value), fact.qualifier)
        if key not in seen:
            seen.add(key)
            kept.append(fact)
    return kept


_NAME_FACTS: tuple[tuple[str, re.Pattern], ...] = (
    (PROOF_OF_DELIVERY, re.compile(r"(?:^|[^a-z])(?:pod|proof|preuve|signature|signed|signe|avis.?de.?reception|"
                                   r"accuse)(?:[^a-z]|$)")),
    (ORDER_RECORD, re.compile(r"(?:^|[^a-z])(?:invoice|facture|receipt|recu|order|commande|bon.?de.?commande)")),
    (PRODUCT_DESCRIPTION, re.compile(r"(?:^|[^a-z])(?:product|produit|description|fiche|listing|annonce)")),
    (RETURN_OFFER, re.compile(r"(?:^|[^a-z])(?:return.?label|etiquette.?(?:de.?)?retour|rma)(?:[^a-z]|$)")),
)


def attachment_facts(filename: str, content_type: str, size: int) -> list[Fact]:
    """What an attachment is, from its name and type: a photo (an image of some size), a
    proof of delivery, an invoice, a product description, a return label."""
    name = fold(filename)
    facts = []
    if content_type.startswith("image/") and size >= MIN_PHOTO_BYTES:
        facts.append(Fact(PHOTO, filename, excerpt=f"attachment {filename}"))
    for kind, pattern in _NAME_FACTS:
        if pattern.search(name):
            facts.append(Fact(kind, filename, excerpt=f"attachment {filename}"))
    return facts
