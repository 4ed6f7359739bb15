"""Commands at the top of the new text: which lines are commands, what is left as body."""

from __future__ import annotations

import pytest

from gateway.cases.commands import Command, read, to_target


def _known(name: str, argument: str = "") -> Command:
    return Command(name, argument, known=True)


@pytest.mark.parametrize("text, commands, body", [
    # #to, in English and French, any case
    ("#to customer\nHello", [_known("to", "customer")], "Hello"),
    ("#TO Merchant\n\nHi there", [_known("to", "Merchant")], "Hi there"),
    ("#To both\nBoth of you", [_known("to", "both")], "Both of you"),
    ("#à client\nBonjour", [_known("to", "client")], "Bonjour"),
    ("#À marchand\nBonjour", [_known("to", "marchand")], "Bonjour"),
    ("#a client\nBonjour", [_known("to", "client")], "Bonjour"),
    ("#pour commerçant\nBonjour", [_known("to", "commerçant")], "Bonjour"),
    ("# to customer\nSpace after the hash", [_known("to", "customer")], "Space after the hash"),
    # #note keeps its whole argument
    ("#note called the courier, parcel lost", [_known("note", "called the courier, parcel lost")], ""),
    ("#NOTE\tchecked", [_known("note", "checked")], ""),
    # customer commands
    ("#resolved", [_known("resolved")], ""),
    ("#Resolved\nThanks for your help!", [_known("resolved")], "Thanks for your help!"),
    ("#résolu", [_known("resolved")], ""),
    ("#RÉSOLU merci", [_known("resolved", "merci")], ""),
    ("#resolu", [_known("resolved")], ""),
    ("#résolue", [_known("resolved")], ""),
    ("#escalate", [_known("escalate")], ""),
    ("#Escalate the shop does not answer", [_known("escalate", "the shop does not answer")], ""),
    ("#escalade", [_known("escalate")], ""),
    # other staff commands and their French words
    ("#close", [_known("close")], ""),
    ("#clôturer", [_known("close")], ""),
    ("#reopen", [_known("reopen")], ""),
    ("#rouvrir", [_known("reopen")], ""),
    ("#type delivery", [_known("type", "delivery")], ""),
    ("#release", [_known("release")], ""),
    ("#libérer", [_known("release")], ""),
    ("#retry", [_known("retry")], ""),
    ("#réessayer", [_known("retry")], ""),
])
def test_known_commands(text, commands, body):
    result = read(text)
    assert list(result.commands) == commands
    assert result.body == body
    assert result.unknown == ()


@pytest.mark.parametrize("text, word", [
    ("#frobnicate now\nBody", "frobnicate"),
    ("#resolvedx", "resolvedx"),
    ("#to-customer", "to-customer"),
    ("#tous", "tous"),
    ("#Urgent please", "urgent"),
])
def test_unknown_commands_are_kept_as_unknown(text, word):
    result = read(text)
    assert [c.name for c in result.unknown] == [word]
    assert all(not c.known for c in result.unknown)
    assert result.first(word) is None


@pytest.mark.parametrize("text", [
    "Hello\n#resolved",
    "Thanks!\n\n#escalate",
    "The shop said #resolved but it is not.",
    "> #resolved",
    "#1 priority: my parcel",
    "#",
    "",
    "\n\n\n",
])
def test_commands_only_at_the_top_of_the_new_text(text):
    result = read(text)
    assert result.commands == ()
    assert result.body == text.strip()


def test_blank_lines_between_commands_and_body_after_them():
    text = "\n\n#to customer\n\n#note sent the label again\n   \n#escalate\n\nDear Carol,\n\nThe label is attached.\n"
    result = read(text)
    assert [(c.name, c.argument) for c in result.commands] == [
        ("to", "customer"), ("note", "sent the label again"), ("escalate", "")]
    assert result.body == "Dear Carol,\n\nThe label is attached."
    assert result.lines_removed == ("#to customer", "#note sent the label again", "#escalate")


def test_command_after_body_text_is_body():
    result = read("#to merchant\nPlease ship again.\n#resolved\n#note later")
    assert [c.name for c in result.commands] == ["to"]
    assert result.body == "Please ship again.\n#resolved\n#note later"


@pytest.mark.parametrize("text", [
    "#escalate\r\n\r\nPlease help\r\n",
    "  #escalate  \nPlease help",
    "\u00a0#escalate\nPlease help",
])
def test_line_endings_and_surrounding_whitespace(text):
    result = read(text)
    assert [c.name for c in result.commands] == ["escalate"]
    assert result.body == "Please help"


def test_first_returns_the_first_known_command_of_a_name():
    result = read("#to customer\n#to merchant\n#bogus\n")
    assert result.first("to") == _known("to", "customer")
    assert result.first("note") is None
    assert result.first("bogus") is None


@pytest.mark.parametrize("argument, target", [
    ("customer", "c"),
    ("Customer", "c"),
    ("client", "c"),
    ("CLIENTE", "c"),
    ("merchant", "m"),
    ("  Merchant ", "m"),
    ("marchand", "m"),
    ("commerçant", "m"),
    ("commercant", "m"),
    ("vendeur", "m"),
    ("both", "both"),
    ("all", "both"),
    ("tous", "both"),
    ("les deux", "both"),
    ("Les   Deux", "both"),
    ("staff", None),
    ("customer merchant", None),
    ("", None),
    ("c", None),
])
def test_to_target(argument, target):
    assert to_target(argument) == target


@pytest.mark.parametrize("text, target", [
    ("#to customer", "c"),
    ("#TO Merchant", "m"),
    ("#à client", "c"),
    ("#pour les deux", "both"),
])
def test_to_command_argument_gives_target(text, target):
    assert to_target(read(text).first("to").argument) == target


@pytest.mark.parametrize("body, found", [
    ("Team,\n#note\nwatch list", "#note"),
    ("Hi,\n#to customer\nplease", "#to customer"),
    ("# Note\nA markdown heading is not a command", None),
    ("We discussed #close earlier in the text", None),
    ("Customer said #resolved on the phone\n#resolved", None),  # a customer command, not a staff one
])
def test_misplaced_staff_commands(body, found):
    from gateway.cases.commands import misplaced

    assert misplaced(body) == found
