"""Dispute types, their labels, keyword inference and the legal deadlines they carry. Pure.

The rights and obligations themselves are in templates/_rights/<locale>/<party>/<type>;
this module only names the types, guesses one from the customer's own words and computes
the one legal deadline that the transaction date alone gives.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

DISPUTE_TYPES: tuple[str, ...] = (
    "not_delivered", "damaged", "not_as_described", "withdrawal_refund",
    "double_charge", "unrecognised_charge", "refund_not_received", "other",
)
TYPE_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "not_delivered": "Not delivered",
        "damaged": "Damaged or defective",
        "not_as_described": "Not as described / wrong item",
        "withdrawal_refund": "Withdrawal refund not received",
        "double_charge": "Charged twice",
        "unrecognised_charge": "Unrecognised charge",
        "refund_not_received": "Refund not received",
        "other": "Other",
    },
    "fr": {
        "not_delivered": "Non livré",
        "damaged": "Endommagé ou défectueux",
        "not_as_described": "Non conforme / mauvais article",
        "withdrawal_refund": "Remboursement après rétractation non reçu",
        "double_charge": "Débité deux fois",
        "unrecognised_charge": "Paiement non reconnu",
        "refund_not_received": "Remboursement non reçu",
        "other": "Autre",
    },
}
# Open cases of these types get the card-dispute window warning (DOMAIN section 8, C2-C6).
CARD_WINDOW_TYPES = frozenset({"not_delivered", "not_as_described", "refund_not_received", "withdrawal_refund"})

NO_TYPE = ""  # a signal that only blanks out its words
DELIVERY_DAYS = 30  # D1: no agreed date -> at the latest 30 calendar days after the contract

# (type, weight, pattern) on folded text (see _fold): lowercase, no accents, straight
# apostrophes, punctuation as spaces. Patterns run in this order and each match is blanked
# out, so that "refund not received" is not read again as "not received" (goods), and
# "charged twice" not again as anything else. Weights: 3 clear phrase, 2 likely, 1 hint.
_T = r"[\w']+"  # one word, with its elisions (n'ai, l'article)
_SIGNALS: tuple[tuple[str, int, str], ...] = (
    # neutral (NO_TYPE): "no answer received" or "waiting for a reply" says nothing of the goods
    (NO_TYPE, 0, r"\b(?:not|never|no|nothing)(?: yet| even| been)* (?:received?|got|gotten|had|get) (?:a |an |any |"
                 r"no |their |your |his |her )?(?:reply|replies|answer|response|email|e mail|mail|message|news|"
                 r"update|confirmation|invoice)s?\b|\bwaiting (?:for|on) (?:a |an |any |their |your |his |her )?"
                 r"(?:reply|answer|response|news|update)\b"),
    (NO_TYPE, 0, r"\b(?:pas|jamais|rien|toujours pas|aucune?) (?:encore )?(?:recu|eu|obtenu) (?:de |d'|aucune |la |"
                 r"une |sa |votre |leur )?(?:reponse|mail|e mail|email|courriel|message|facture|confirmation)s?\b|"
                 r"\b(?:j'attends|attend|attendons|en attente d'une?)(?: toujours| encore)? (?:une |sa |votre |leur |"
                 r"de )?reponse\b"),
    # refund missing (before goods, whose "not received" it contains)
    ("refund_not_received", 3, rf"\brefund(?: {_T}){{0,3}}? (?:not|never)"
                               r"(?: yet| been| even)* (?:received|arrived|come|came|credited|appeared|processed|"
                               r"issued|showed|shown|reached|gone)\b"),
    ("refund_not_received", 3, r"\b(?:not|never|no) (?:yet |even )?(?:been )?(?:received?|get|got|gotten|seen|had) "
                               rf"(?:my|the|a|any|our)(?: {_T})? (?:refund|money back|credit)\b"),
    ("refund_not_received", 3, r"\b(?:not|never) (?:yet |even )?(?:been )?(?:refunded|reimbursed)\b"),
    ("refund_not_received", 3, r"\b(?:still|yet) no refund\b|\bno refund (?:yet|so far|received)\b|"
                               r"\bwhere(?: is|'s) (?:my|the) refund\b|"
                               r"\bwaiting (?:for|on) (?:my|the|a)(?: \w+)? refund\b"),
    ("refund_not_received", 3, r"\bpromised (?:me )?(?:a |to |that they would |they would )?refund"),
    ("refund_not_received", 3, r"\b(?:pas|jamais|rien|toujours pas) (?:encore )?(?:ete )?rembourse"),
    ("refund_not_received", 3, r"\b(?:pas|jamais|toujours pas|rien) (?:encore )?(?:recu|eu|vu|touche|obtenu) "
                               r"(?:mon|le|de|du|aucun|votre|ce|d'un) (?:\w+ )?remboursement"),
    ("refund_not_received", 3, rf"\bremboursement(?: {_T}){{0,3}}? (?:non|pas|jamais)(?: encore| ete| toujours)* "
                               r"(?:recu|arrive|effectue|parvenu|credite|vire|fait|apparu|passe|intervenu)"),
    ("refund_not_received", 3, r"\baucun remboursement\b|\b(?:attends?|attendons|en attente)(?: toujours| encore)? "
                               r"(?:de |du |d'un |mon |le |un )?(?:mon )?remboursement|\bou (?:est|en est) "
                               r"(?:mon|le) remboursement|\bpromis (?:un |le |de me |de nous )?rembours"),
    ("refund_not_received", 1, r"\b(?:sent|send|posted|mailed|shipped) (?:it|them|the(?: \w+){1,2}|everything) back\b|"
                               r"\breturned (?:it|them|the|my)\b|\b(?:renvoye|retourne|reexpedie|rendu)e?s? "
                               r"(?:le|la|les|l'|mon|ma|mes)\b|\bl'ai (?:renvoye|retourne)"),
    # charged twice
    ("double_charge", 3, rf"\b(?:charged|debited|billed|taken|paid|deducted|withdrawn|invoiced)(?: {_T}){{0,3}}? "
                         r"(?:twice|two times|2 times|double)\b"),
    ("double_charge", 3, r"\b(?:double|duplicated?)(?: card)? (?:charge|payment|debit|billing|transaction)s?\b"),
    ("double_charge", 3, r"\b(?:debitee?|prelevee?|facturee?|payee?|encaissee?|compte)s?(?: \w+){0,3}? "
                         r"(?:deux fois|2 fois|en double|a double)\b"),
    ("double_charge", 3, r"\bdouble (?:prelevement|debit|paiement|facturation|encaissement)\b"),
    ("double_charge", 2, r"\b(?:two|2) (?:identical |same |separate )?(?:charges|payments|debits)\b|"
                         r"\b(?:deux|2) (?:prelevements|debits|paiements)\b|\bdoublon\b"),
    # charge not recognised
    ("unrecognised_charge", 3, r"\b(?:not|never|cannot) recogni[sz]e|\bunrecogni[sz]ed\b"),
    ("unrecognised_charge", 3, r"\bunknown (?:charge|payment|transaction|debit|merchant|company)\b"),
    ("unrecognised_charge", 3, r"\b(?:not|never) (?:make|made|authori[sz]e|authori[sz]ed|place|placed) "
                               r"(?:this|that|the|any|these)(?: \w+)? "
                               r"(?:purchase|payment|order|transaction|charge)s?\b"),
    ("unrecognised_charge", 3, r"\bunauthori[sz]ed\b|\bnot authori[sz]ed\b|\bfraud(?:ulent)?\b|"
                               r"\b(?:stolen|cloned|hacked|compromised) (?:card|account)\b|\bcard (?:was |has been )?"
                               r"(?:stolen|cloned|hacked|compromised)\b|\bsomeone(?: \w+){0,2}? used my "
                               r"(?:card|account|details)\b|\bnever ordered (?:anything|this|from)\b|"
                               r"\bwhat is this (?:charge|payment|transaction|debit)\b"),
    ("unrecognised_charge", 2, r"\bnever (?:heard of|shopped)\b|\bwho is (?:this|the) (?:merchant|company|shop)\b"),
    ("unrecognised_charge", 3, r"\b(?:ne )?(?:reconnais|reconnait|reconnaissons) pas\b|\bpas reconnue?\b|"
                               r"\b(?:paiement|prelevement|debit|transaction|achat|operation|marchand|commercant|"
                               r"site|libelle)s? (?:\w+ )?inconnue?s?\b"),
    ("unrecognised_charge", 3, r"\b(?:fraude|frauduleu(?:x|se)|piratage|usurpation)\b|\bcarte (?:\w+ )?"
                               r"(?:volee|piratee|clonee)\b|\b(?:non|pas) autorisee?s?\b|\b(?:jamais|rien) commande\b|"
                               r"\b(?:jamais|pas) (?:fait|effectue|passe|autorise|realise) (?:cet |cette |ce |d'|de |"
                               r"aucun |aucune |la |le )?(?:achat|paiement|commande|operation|transaction)|"
                               r"\bje ne connais pas (?:ce|cette|le) (?:site|marchand|commercant|societe|entreprise|"
                               r"boutique)\b"),
    ("unrecognised_charge", 2, r"\bqui est ce (?:marchand|commercant|site)\b|\bfait opposition\b"),
    # withdrawal (droit de rétractation)
    ("withdrawal_refund", 3, r"\bretract(?:ation|er|e|ee|ai|ons)?\b|\bwithdrawal (?:form|right|period|notice|"
                             r"request|letter)\b|\bright (?:of|to) withdraw|\bwithdr(?:ew|awn|aw) (?:from )?"
                             r"(?:the |my |this )?(?:order|purchase|contract|sale)\b|\bcooling off\b"),
    ("withdrawal_refund", 2, r"\bchanged? my mind\b|\bwithin (?:the )?(?:14|fourteen) days\b|\b(?:14|fourteen) "
                             r"day (?:return|cancell?ation|withdrawal|right)|\bchange d'avis\b|\b(?:dans les|sous) "
                             r"(?:14|quatorze) jours\b|\bdelai de (?:14|quatorze) jours\b"),
    ("withdrawal_refund", 1, r"\bi (?:have )?cancell?ed (?:my |the )?order\b|\bcancell?ation of (?:my |the )?order\b|"
                             r"\bj'ai annule (?:ma|la) commande\b|"
                             r"\bannulation de (?:ma|la) commande\b"),
    # not as described / wrong item (before goods: "not received the right size")
    ("not_as_described", 3, r"\bwrong (?:item|size|colou?r|model|product|article|book|version|thing|one|part)s?\b|"
                            r"\bnot (?:as|what (?:was|is|it was)) (?:described|advertised|pictured|shown|ordered)\b|"
                            r"\bnot what i (?:ordered|bought|paid for)\b|\b(?:not|never) (?:receive|received|get|"
                            r"got) (?:the )?(?:right|correct) \w+"),
    ("not_as_described", 3, r"\bdifferent (?:from|than|to)(?: \w+){0,3}? (?:description|picture|photo|photos|"
                            r"website|advert|ad|listing|ordered|described)\b|"
                            r"\b(?:does|do|did) not (?:match|correspond)\b|"
                            r"\b(?:fake|counterfeit|replica|knock ?off)\b|\breceived (?:a|an|the)(?: \w+){0,3}? "
                            r"instead of\b"),
    ("not_as_described", 3, r"\bmissing (?:parts?|pieces?|items?|accessor\w*|cables?|chargers?|manual|screws?|"
                            r"components?)\b|\b(?:parts?|pieces?|accessor\w*|cables?|chargers?|manual|screws?|"
                            r"components?) (?:is |are |was |were )?missing\b"),
    ("not_as_described", 3, r"\b(?:pas|non) conformes?\b|\bnon conformite\b|\bne correspond (?:pas|en rien|"
                            r"absolument pas|plus)\b|\bpas (?:ce que|celui que|celle que|l'article que) (?:j'ai|"
                            r"nous avons) commande|\b(?:pas|n'ai pas) (?:recu |eu )?(?:le bon|la bonne|les bons|"
                            r"les bonnes)\b|\bmauvaise?s? (?:article|taille|couleur|modele|produit|reference|"
                            r"pointure|commande|colis|version)\b"),
    ("not_as_described", 3, r"\bdifferente?s? (?:de|du|des)(?: \w+){0,3}? (?:photo|photos|description|annonce|"
                            r"site|commande|image)\b|\bcontrefacon\b|\brecue?(?: \w+){1,4}? au lieu d"),
    ("not_as_described", 2, r"\b(?:incomplete?|il manque|manquante?s?|manquent)\b"),
    # damaged or defective
    ("damaged", 3, r"\b(?:damaged|broken|smashed|cracked|crushed|shattered|dented|torn|scratched|destroyed|ripped|"
                   r"dead on arrival|in pieces)\b"),
    ("damaged", 3, r"\b(?:casse|abime|endommage|brise|fissure|ecrase|raye|dechire|detruit|bris)e?s?\b|"
                   r"\ben morceaux\b"),
    ("damaged", 2, r"\b(?:defective|faulty)\b|\b(?:does|do|did|will|would) not (?:work|turn on|"
                   r"switch on|charge)\b|\b(?:not|stopped) working\b|\bdefectueu(?:x|se)s?\b|\bne (?:fonctionne|"
                   r"marche|s'allume) (?:pas|plus)\b|\ben panne\b"),
    # not delivered (last: its "not received" is the most generic phrase)
    ("not_delivered", 3, r"\bnever(?: \w+)? (?:arrived|received|delivered|came|showed up|turned up|got (?:it|them|the|"
                         r"my|anything))\b|\b(?:not|nothing)(?: yet| been| even)* (?:arrived?|received?|"
                         r"delivered|come|came|shown up|turned up)\b|\breceived nothing\b|\bundelivered\b|"
                         r"\bnon delivery\b"),
    ("not_delivered", 3, r"\b(?:did not|have not|has not|never) (?:get|got|gotten) (?:my|the|our|anything|it|"
                         r"them)\b|\bwhere(?: is|'s) my (?:order|parcel|package|delivery|item|purchase)\b|"
                         r"\b(?:parcel|package|order|shipment|delivery)(?: \w+){0,2}? (?:lost|missing|stuck)\b|"
                         r"\b(?:lost|missing) (?:parcel|package|order|shipment|delivery)\b|\b(?:marked|shown|shows|"
                         r"says|showing|listed) (?:as )?delivered\b"),
    ("not_delivered", 2, r"\bstill (?:no sign|nothing)\b|\bwaiting (?:for|on) (?:my|the|our) (?:order|parcel|"
                         r"package|delivery|item|goods)\b|\b(?:past|passed|missed) (?:the )?delivery date\b|"
                         r"\bdelivery date (?:has )?(?:passed|missed)\b|\bno (?:delivery|parcel|package)\b|"
                         r"\b(?:late|delayed|overdue) (?:delivery|parcel|order|package)\b|\bnot (?:yet )?(?:been )?"
                         r"(?:shipped|dispatched)\b"),
    ("not_delivered", 3, r"\b(?:jamais|pas|rien|toujours pas|toujours rien|pas encore)(?: encore| ete| toujours)* "
                         r"(?:recu|livre|arrive|parvenu)e?s?\b|\bnon (?:livre|recu|parvenu)e?s?\b|\b(?:colis|commande|"
                         r"paquet|envoi|livraison|article)(?: \w+){0,2}? (?:perdu|egare|bloque|disparu)e?s?\b"),
    ("not_delivered", 3, r"\bou (?:est|en est) (?:ma|mon) (?:commande|colis|paquet|livraison)\b|\b(?:indique|marque|"
                         r"note|affiche|signale)e?s? (?:comme )?livree?s?\b|\bj'attends (?:toujours |encore )?"
                         r"(?:ma|mon) (?:commande|colis|livraison|paquet)\b"),
    ("not_delivered", 2, r"\bretard de livraison\b|\b(?:date|delai) de livraison (?:est )?(?:depasse|non respecte)e?\b|"
                         r"\b(?:livraison|commande|colis) (?:est |a )?(?:en retard|"
                         r"retardee?)\b|\b(?:pas|aucune) (?:de )?nouvelles? (?:de|concernant) (?:ma|mon) "
                         r"(?:commande|colis)\b|\bpas (?:encore )?(?:ete )?(?:expediee?|envoyee?)s?\b"),
)
_COMPILED = tuple((kind, weight, re.compile(pattern)) for kind, weight, pattern in _SIGNALS)
# (winner, absorbed), applied in order: when both score, the winner takes the other's score.
# A missing refund is the current stage of a goods dispute whose item went back, and a
# withdrawal is the reason a refund is owed ("withdrew within 14 days, not refunded").
# Not delivered + not refunded stays ambiguous: the customer may not have terminated yet.
_ABSORBS: tuple[tuple[str, str], ...] = (
    ("refund_not_received", "damaged"),  # "sent the broken lamp back, not refunded"
    ("refund_not_received", "not_as_described"),
    ("withdrawal_refund", "refund_not_received"),
)
MIN_SCORE = 2  # below this, too little said to pick a type
CLEAR_RATIO = 2  # the best type must score at least twice the runner-up

_NAMES: dict[str, str] = {
    # synonyms, English and French (type names and labels are added below)
    "undelivered": "not_delivered", "non_delivery": "not_delivered", "not_received": "not_delivered",
    "lost": "not_delivered", "lost_parcel": "not_delivered", "non_livre": "not_delivered",
    "non_livraison": "not_delivered", "pas_livre": "not_delivered", "jamais_recu": "not_delivered",
    "perdu": "not_delivered", "colis_perdu": "not_delivered",
    "damage": "damaged", "broken": "damaged", "defective": "damaged", "faulty": "damaged",
    "casse": "damaged", "abime": "damaged", "endommage": "damaged", "defectueux": "damaged",
    "wrong_item": "not_as_described", "wrong": "not_as_described", "not_described": "not_as_described",
    "nonconforming": "not_as_described", "non_conforming": "not_as_described", "non_conforme": "not_as_described",
    "non_conformite": "not_as_described", "pas_conforme": "not_as_described", "conformite": "not_as_described",
    "mauvais_article": "not_as_described",
    "withdrawal": "withdrawal_refund", "retractation": "withdrawal_refund", "withdrawal_refund_not_received":
    "withdrawal_refund", "remboursement_retractation": "withdrawal_refund",
    "double": "double_charge", "duplicate": "double_charge", "charged_twice": "double_charge",
    "double_debit": "double_charge", "double_prelevement": "double_charge", "doublon": "double_charge",
    "unrecognised": "unrecognised_charge", "unrecognized": "unrecognised_charge",
    "unrecognized_charge": "unrecognised_charge", "fraud": "unrecognised_charge", "unauthorised":
    "unrecognised_charge", "unauthorized": "unrecognised_charge", "fraude": "unrecognised_charge",
    "non_reconnu": "unrecognised_charge", "inconnu": "unrecognised_charge",
    "refund": "refund_not_received", "no_refund": "refund_not_received", "remboursement": "refund_not_received",
    "autre": "other", "others": "other",
}


def _fold(text: str) -> str:
    """Lowercase, accents removed, curly apostrophes straightened, other punctuation as spaces."""
    text = unicodedata.normalize("NFKD", text.lower())
    if not text.isascii():  # no ASCII character is a combining mark
        text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").replace("œ", "oe")
    text = re.sub(r"\bcan't\b", "cannot", text.replace("won't", "will not"))
    text = re.sub(r"n't\b", " not", text)  # haven't -> have not: patterns only know "not"
    text = re.sub(r"\b(do|does|did|have|has|is|was|are|were|could|would)nt\b", r"\1 not", text)
    text = re.sub(r"[^\w']+", " ", text)
    return " ".join(text.split())


def scores(text: str) -> dict[str, int]:
    """The keyword score of each type that has one (see _SIGNALS), before any decision."""
    folded = f" {_fold(text)} "
    result: dict[str, int] = {}
    for kind, weight, pattern in _COMPILED:
        if pattern.search(folded) is None:
            continue
        if kind != NO_TYPE:
            result[kind] = result.get(kind, 0) + weight
        folded = pattern.sub(" _ ", folded)
    for winner, absorbed in _ABSORBS:
        if winner in result and absorbed in result:
            result[winner] += result.pop(absorbed)
    return result


INFER_CHARS = 2000


def infer_type(text: str) -> str:
    """The dispute type the customer's words (subject and new text) clearly point to, else "other".

    Clear means a score of at least MIN_SCORE and at least CLEAR_RATIO times the runner-up,
    so a message naming two problems ("broken, and charged twice") goes to staff as "other".
    Only the first INFER_CHARS characters are read: customers state the problem first, and
    the scoring is a few dozen regular expressions per call.
    """
    ranked = sorted(scores(text[:INFER_CHARS]).items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] < MIN_SCORE:
        return "other"
    if len(ranked) > 1 and ranked[0][1] < CLEAR_RATIO * ranked[1][1]:
        return "other"
    return ranked[0][0]


def _key(word: str) -> str:
    return re.sub(r"[\s'/_-]+", "_", _fold(word)).strip("_")


_LOOKUP: dict[str, str] = {
    **{_key(name): kind for name, kind in _NAMES.items()},
    **{_key(label): kind for labels in TYPE_LABELS.values() for kind, label in labels.items()},
    **{_key(kind): kind for kind in DISPUTE_TYPES},
}


def parse_type_name(word: str) -> str | None:
    """The type named by `word` (type name, label or synonym, English or French), or None.

    Case, accents, spaces, dashes and underscores do not matter: "not delivered",
    "Not-Delivered" and "non livré" all give "not_delivered".
    """
    return _LOOKUP.get(_key(word)) if word and word.strip() else None


# type -> the rule its merchant deadline comes from (the rule ids the templates quote)
_RULES: dict[str, str] = {
    "not_delivered": "D1",  # delivery by the agreed date, else contract + 30 days
    "damaged": "G7",  # repair or replacement within 30 days of the customer's request
    "not_as_described": "G7",
    "withdrawal_refund": "W8",  # refund within 14 days of the withdrawal notice
    "double_charge": "P3",  # the customer's bank refunds an unauthorised debit by the next business day
    "unrecognised_charge": "P3",
    "refund_not_received": "D5/W8/G11",  # 14 days from termination, withdrawal or return
    "other": "M9",  # no general legal deadline for a merchant to answer a complaint
}


def legal_deadline(dispute_type: str, transaction_date: datetime) -> tuple[datetime | None, str]:
    """The legal deadline the transaction date alone gives for this type, and its rule id.

    Only non-delivery has one (D1: the order + 30 calendar days, when no date was agreed).
    The others run from a date the gateway does not know (the customer's request, the
    withdrawal notice, the termination), or bind the customer's bank rather than the
    merchant: None, and the templates state the rule and ask for the date instead.

    Raises:
        ValueError: `dispute_type` is not one of DISPUTE_TYPES.
    """
    if dispute_type not in _RULES:
        raise ValueError(f"unknown dispute type {dispute_type!r}")
    if dispute_type == "not_delivered":
        return transaction_date + timedelta(days=DELIVERY_DAYS), _RULES[dispute_type]
    return None, _RULES[dispute_type]

