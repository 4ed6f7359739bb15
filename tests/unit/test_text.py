"""New text of replies (quoted history cut off) and HTML to text."""

from __future__ import annotations

import email
from email.policy import compat32

import pytest

from gateway.mail.text import html_to_text, new_text

# (sample, kept in the new text, never in the new text). Every quoted history carries a
# '#resolved' line: it must never be read as a command of the person replying.
REPLIES = [
    pytest.param(
        "Thanks, got it.\n\nOn Mon, Jan 8, 2024 at 10:00 AM Shop Support <support@shop.test> wrote:\n\n"
        "> Please send the tracking number.\n> #resolved\n",
        "Thanks, got it.", ["#resolved", "wrote:", "tracking number"], id="gmail"),
    pytest.param(
        "Thanks, got it.\n\nOn Mon, Jan 8, 2024 at 10:00 AM Shop Support <\nsupport@shop.test> wrote:\n\n"
        "> #resolved\n",
        "Thanks, got it.", ["#resolved", "wrote:"], id="gmail-wrapped-attribution"),
    pytest.param(
        "See below.\n\n-----Original Message-----\nFrom: Shop <support@shop.test>\n"
        "Sent: Monday, January 8, 2024 10:00 AM\nTo: Carol\nSubject: RE: parcel\n\n#resolved\nOld text\n",
        "See below.", ["#resolved", "Original Message", "Old text"], id="outlook-original-message"),
    pytest.param(
        "See below.\n\nFrom: Shop Support <support@shop.test>\nSent: Monday, January 8, 2024 10:00 AM\n"
        "To: Carol <carol@customer.test>\nSubject: RE: parcel\n\n#resolved\nOld text\n",
        "See below.", ["#resolved", "Sent:", "Old text"], id="outlook-from-sent-block"),
    pytest.param(
        "See below.\n\nFrom: Shop Support [mailto:support@shop.test]\nSent: Monday, January 8, 2024 10:00 AM\n"
        "To: Carol\nSubject: RE: parcel\n\n#resolved\n",
        "See below.", ["#resolved", "Sent:"], id="outlook-mailto-block"),
    pytest.param(
        "See below.\n\nFrom: Shop Support\nSent: Monday, January 8, 2024 10:00 AM\nTo: Carol\n"
        "Subject: RE: parcel\n\n#resolved\n",
        "See below.", ["#resolved", "Sent:"], id="outlook-block-without-address"),
    pytest.param(
        "See below.\n\n________________________________\nFrom: Shop Support <support@shop.test>\n"
        "Sent: Monday, January 8, 2024 10:00 AM\nTo: Carol\nSubject: RE: parcel\n\n#resolved\n",
        "See below.", ["#resolved", "____"], id="outlook-web-underscores"),
    pytest.param(
        "Voir ci-dessous.\n\nDe : Boutique <support@boutique.test>\nEnvoyé : lundi 8 janvier 2024 10:00\n"
        "À : Carol\nObjet : RE: colis\n\n#résolu\n",
        "Voir ci-dessous.", ["#résolu", "Envoyé"], id="outlook-fr-de-envoye"),
    pytest.param(
        "Merci\n\n-----Message d'origine-----\nDe : Boutique\n#résolu\n",
        "Merci", ["#résolu", "origine"], id="outlook-fr-message-d-origine"),
    pytest.param(
        "Merci, bien reçu.\n\nLe lun. 8 janv. 2024 à 10:00, Boutique <support@boutique.test> a écrit :\n"
        "> #résolu\n> Ancien texte\n",
        "Merci, bien reçu.", ["#résolu", "a écrit", "Ancien"], id="gmail-fr-le-a-ecrit"),
    pytest.param(
        "Merci, bien reçu.\n\nLe lun. 8 janv. 2024 à 10:00, Boutique <support@boutique.test> a écrit :\n\n"
        "#résolu\nAncien texte\n",
        "Merci, bien reçu.", ["#résolu", "a écrit", "Ancien"], id="fr-le-a-ecrit-unquoted-history"),
    pytest.param(
        "Thanks!\n\nOn Jan 8, 2024, at 10:00 AM, Shop Support <support@shop.test> wrote:\n\n> #resolved\n",
        "Thanks!", ["#resolved", "wrote:"], id="apple-mail"),
    pytest.param(
        "Thanks!\n\n> On 8 Jan 2024, at 10:00, Shop Support <support@shop.test> wrote:\n"
        ">\n> #resolved\n",
        "Thanks!", ["#resolved", "wrote:"], id="apple-mail-ios-quoted-attribution"),
    pytest.param(
        "Thanks!\n\nOn 08/01/2024 10:00, Shop Support wrote:\n> #resolved\n> old\n",
        "Thanks!", ["#resolved", "wrote:", "old"], id="thunderbird"),
    pytest.param(
        "Merci !\n\nLe 08/01/2024 à 10:00, Boutique a écrit :\n> #résolu\n",
        "Merci !", ["#résolu", "a écrit"], id="thunderbird-fr"),
    pytest.param(
        "My answer.\n> #resolved\n> old line\n",
        "My answer.", ["#resolved", "old line"], id="bare-quote-marks"),
    pytest.param(
        "My answer.\n\n>> #resolved\n> > old line\n",
        "My answer.", ["#resolved", "old line"], id="nested-quote-marks"),
    pytest.param(
        "My answer.\r\n\r\nOn Mon, Jan 8, 2024 at 10:00 AM Shop <support@shop.test> wrote:\r\n> #resolved\r\n",
        "My answer.", ["#resolved", "\r"], id="crlf"),
    pytest.param(
        "#resolved\nThanks for your help.", "#resolved\nThanks for your help.", [], id="no-history"),
]


@pytest.mark.parametrize("text, kept, dropped", REPLIES)
def test_new_text_cuts_quoted_history(text, kept, dropped):
    result = new_text(text)
    assert result == kept
    for fragment in dropped:
        assert fragment not in result


@pytest.mark.parametrize("text, kept", [
    pytest.param(
        "Merci\n\nLe lun. 8 janv. 2024 à 10:00, Boutique Exemple <\nsupport@boutique-exemple.test> a écrit :\n\n"
        "> #résolu\n> ancien\n",
        "Merci", id="gmail-fr-wrapped-attribution"),
])
def test_new_text_cuts_wrapped_attribution(text, kept):
    assert new_text(text) == kept


@pytest.mark.parametrize("text, kept", [
    pytest.param("On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello", "Hello", id="bottom-post"),
    pytest.param("> #resolved\nMy answer", "My answer", id="bottom-post-bare-quote"),
])
def test_new_text_of_a_bottom_posted_reply_keeps_the_answer(text, kept):
    result = new_text(text)
    assert kept in result
    assert "#resolved" not in result


def test_new_text_of_empty_text_is_empty():
    assert new_text("") == ""


def _plain_text(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=compat32)
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8", errors="replace")
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return html_to_text(part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8"))
    raise AssertionError("no text part")


# Real replies from tests/mail/corpus/human: (file, what was written now, text of the quoted
# history that must be gone).
CORPUS = [
    ("en-gmail-reply-quoted-history-delivery-failed-mention.eml",
     ["Hi,", "Screenshot of the text is below.", "Chris"], "To continue with dispute"),
    ("fr-gmail-reponse-avec-historique.eml", ["Bonjour,", "destinataire inconnu", "Lucas"], "transmettre votre relevé"),
    ("en-outlook-reply-undeliverable-parcel.eml", ["Hello,", "no need to keep the dispute open", "Customer Claims"],
     "Please provide proof"),
    ("fr-outlook-reponse-de-envoye-objet.eml", ["Bonjour,", "bon de livraison signé", "Sophie Laurent"],
     "Merci de fournir"),
    ("en-tricky-back-from-vacation.eml", ["Hi,", "attached in the portal now.", "Jordan"], "Please upload"),
    ("en-iphone-reply-quoted.eml", ["Yes that's the right card, ending 4412. Thank you!"], "Can you confirm"),
    ("fr-iphone-reponse.eml", ["Bonjour, oui c'est bien la carte"], "Pouvez-vous confirmer"),
    ("fr-thunderbird-reponse.eml", ["Bonjour,", "jamais reçu l'article.", "Pierre Roux"], "Le commerçant affirme"),
    ("en-talon-apple-mail-reply.eml", ["Hello"], "Hi"),
    ("en-talon-gmail-reply.eml", ["Hello"], "Hi"),
    ("en-talon-outlook-reply-to-notification.eml", ["Hello"], "The manager"),
    ("en-multipart-alternative-newsletter-lookalike-from-human.eml", ["You can close the case.", "Grace"], "wrote"),
]


@pytest.mark.parametrize("sample, written, quoted", CORPUS)
def test_new_text_of_real_replies(eml, sample, written, quoted):
    result = new_text(_plain_text(eml(f"corpus/human/{sample}")))
    for fragment in written:
        assert fragment in result
    assert quoted not in result
    assert "wrote:" not in result and "a écrit" not in result
    assert not any(line.startswith(">") for line in result.splitlines())


@pytest.mark.parametrize("sample, answers", [
    ("en-talon-thunderbird-reply.eml", ["Hello"]),
    ("en-thunderbird-inline-reply.eml", ["2 August, around 10 pm.", "No, it never arrived."]),
])
def test_new_text_of_real_bottom_posted_replies(eml, sample, answers):
    result = new_text(_plain_text(eml(f"corpus/human/{sample}")))
    for answer in answers:
        assert answer in result


@pytest.mark.parametrize("html, text", [
    pytest.param("<html><head><title>Title</title><style>p {color: red}</style></head>"
                 "<body><p>Hello</p><script>var x = '#resolved';</script><p>World</p></body></html>",
                 "Hello\n\nWorld", id="script-style-head-dropped"),
    pytest.param("<SCRIPT>alert(1)</SCRIPT><STYLE>.x{}</STYLE>Text", "Text", id="upper-case-tags"),
    pytest.param("<p>Before</p><script>never closed", "Before", id="unclosed-script"),
    pytest.param("<div>Thanks!</div><blockquote>Old line 1<br>Old line 2</blockquote><div>After</div>",
                 "Thanks!\n\n> Old line 1\n> Old line 2\n\nAfter", id="blockquote"),
    pytest.param("<blockquote>Line one\nline two</blockquote>", "> Line one\n> line two", id="blockquote-newlines"),
    pytest.param("<p>Reply</p><blockquote><p>quoted</p><blockquote><p>deeper</p></blockquote></blockquote>",
                 "Reply\n\n> quoted\n\n> deeper", id="nested-blockquote"),
    pytest.param("<p>a&amp;b &lt;x&gt; &eacute;&nbsp;z</p>", "a&b <x> é z", id="entities"),
    pytest.param("<ul><li>one</li><li>two</li></ul>", "one\n\ntwo", id="list"),
    pytest.param("<p>one     two\t\tthree</p>", "one two three", id="whitespace-collapsed"),
    pytest.param("<p>a</p><p></p><p></p><p></p><p>b</p>", "a\n\nb", id="no-runs-of-blank-lines"),
    pytest.param("plain text", "plain text", id="no-tags"),
    pytest.param("", "", id="empty"),
])
def test_html_to_text(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize("html, text", [
    ("<blockquote>Hello <b>bold</b> world</blockquote>", "> Hello bold world"),
    ("<blockquote>The parcel <a href='x'>tracking</a> says delivered.</blockquote>",
     "> The parcel tracking says delivered."),
], ids=["bold", "link"])
def test_html_to_text_blockquote_with_inline_tags(html, text):
    assert html_to_text(html) == text


def test_quoted_command_in_html_reply_is_not_new_text():
    html = ("<div>Thanks, all sorted.</div><div class='gmail_quote'>"
            "<div>On Mon, Jan 8, 2024 at 10:00 AM Shop &lt;support@shop.test&gt; wrote:</div>"
            "<blockquote class='gmail_quote'>#resolved<br>Old text</blockquote></div>")
    text = html_to_text(html)
    assert "> #resolved" in text
    assert new_text(text) == "Thanks, all sorted."


@pytest.mark.parametrize("text, kept, dropped", [
    # Thunderbird/Gmail inline answers under an attribution
    ("Hello,\n\nOn Mon, 1 Dec 2026 at 10:00, Shop <s@shop.test> wrote:\n> Did the parcel arrive?\nNo, never.\n"
     "> Do you have the tracking number?\nYes: 1Z999AA10123456784.\n>\n> Regards, Shop\n\nCarol\n",
     ["Hello,", "No, never.", "Yes: 1Z999AA10123456784.", "Carol"], ["Did the parcel arrive", "Regards, Shop", "wrote:"]),
    # French, answers right under each quoted question, wrapped attribution
    ("Le lun. 1 déc. 2026 à 10:00, Boutique <\nb@shop.test> a écrit :\n> Quelle est la référence ?\nTX-1001\n"
     "> Et le montant ?\n49,90 EUR\n",
     ["TX-1001", "49,90 EUR"], ["Quelle est la référence", "a écrit"]),
    # a command written between quoted lines is new text (commands are read from new text only)
    ("> Please confirm you want staff to step in.\n#escalate\n> Thanks\n", ["#escalate"], ["Please confirm", "Thanks"]),
])
def test_new_text_of_an_inline_reply_keeps_every_answer(text, kept, dropped):
    result = new_text(text)
    for words in kept:
        assert words in result
    for words in dropped:
        assert words not in result


def test_a_top_posted_reply_over_outlook_history_is_not_read_as_inline():
    text = ("Refund sent today.\n\n________________________________\nFrom: Carol <c@x.test>\nSent: Monday\n"
            "Subject: parcel\n\n> an old quote\nstill history\n")
    assert new_text(text) == "Refund sent today."


def test_new_text_is_never_empty_when_the_person_wrote_something():
    assert new_text("From: someone@shop.test\nI wrote this line myself.\n") != ""


def _corpus_texts():
    """Every text body of the real and constructed mail in the corpus (people, auto-replies,
    reports), the REPLIES samples, and the same bodies quoted under each language's attribution."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "mail"
    texts = [param.values[0] for param in REPLIES]
    for path in sorted(root.rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=compat32)
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True) or b""
                try:
                    texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
                except LookupError:  # an unknown charset name
                    texts.append(payload.decode("latin-1"))
    quoted = []
    for text in texts[:60]:
        history = "\n".join("> " + line for line in text.splitlines())
        for attribution in ("On Mon, 1 Dec 2026 at 10:00, Shop <s@shop.test> wrote:",
                            "Le lun. 1 déc. 2026 à 10:00, Shop <s@shop.test> a écrit :",
                            "Am Mo., 1. Dez. 2026 um 10:00 Uhr schrieb Shop <s@shop.test>:",
                            "From: Shop <s@shop.test>\nSent: Monday\nTo: Carol\nSubject: RE: x"):
            quoted.append(f"My answer.\n\n{attribution}\n{history}\n")
    return texts + quoted


def test_latest_reply_splits_as_mail_parser_reply_does():
    """The fast driver of the library's header pattern gives the library's own first fragment
    on every body of the corpus (over a thousand real and constructed texts)."""
    from mailparser_reply import EmailReplyParser

    from gateway.mail.text import _LANGUAGES, latest_reply

    texts = _corpus_texts()
    assert len(texts) > 500
    for text in texts:
        assert latest_reply(text) == (EmailReplyParser(languages=list(_LANGUAGES)).parse_reply(text=text) or "")
