"""AddressScrubber: every way of writing a hidden address is found, nothing else is touched."""

from __future__ import annotations

import pytest

from gateway.mail.scrub import FILENAME_LABEL, AddressScrubber, canonical

OWN = "case+k3q7-c-abcdefgh@disputes.test"
SCRUBBER = AddressScrubber.build(["Support@Shop.example", "carol@customer.test", ""], domain="Disputes.test",
                                 case_reference="K3Q7", own_address=OWN, locale="en")
LABEL = "[address hidden]"


@pytest.mark.parametrize("written", [
    "support@shop.example", "SUPPORT@SHOP.EXAMPLE", "support&#64;shop.example", "support&#x40;shop.example",
    "support&#0064;shop.example", "support&commat;shop.example", "support%40shop.example",
    "sup\u200bport@shop\u00ad.example", "support\ufe6bshop\u3002example",
    "\uff53\uff55\uff50\uff50\uff4f\uff52\uff54\uff20\uff53\uff48\uff4f\uff50\uff0e\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45",
])
def test_an_address_is_found_however_it_is_written(written):
    assert SCRUBBER.text(f"write to {written} today") == f"write to {LABEL} today"


@pytest.mark.parametrize("text", [
    "xsupport@shop.example",  # another local part
    "support@shop.examples",  # another domain
    "support at shop dot example",  # words: the writer's own choice
    "case+k3q7@elsewhere.test",  # not our domain
    "disputes@disputes.test",  # the public intake address
])
def test_other_text_is_left_alone(text):
    assert SCRUBBER.text(text) == text


def test_case_addresses_of_this_case_become_the_recipients_own():
    assert SCRUBBER.text("<case+k3q7-m-zzzzzzzz@disputes.test>") == f"<{OWN}>"
    assert SCRUBBER.text("CASE+K3Q7-S-ZZZZ@DISPUTES.TEST") == OWN
    assert SCRUBBER.text("case+other1-c-zzzz@disputes.test") == LABEL


def test_html_keeps_the_tags_inside_an_address():
    assert SCRUBBER.html("<p>supp<b>ort</b>@shop.<i>example</i>!</p>") == f"<p>{LABEL}<b></b><i></i>!</p>"
    assert SCRUBBER.html("<p>case<span>+k3q7-m-x</span>@disputes.test</p>") == f"<p>{OWN}<span></span></p>"


def test_urls_point_to_the_case_or_lose_their_target():
    assert SCRUBBER.url("mailto:support%40shop.example?subject=hi") == f"mailto:{OWN}"
    assert SCRUBBER.url("mailto:%73upport@shop.example") == f"mailto:{OWN}"
    assert SCRUBBER.url("https://t.example/?u=carol%40customer.test") is None
    assert SCRUBBER.url("https://shop.example/orders/1") == "https://shop.example/orders/1"
    assert SCRUBBER.attribute("img", "title", "by carol@customer.test") == f"by {LABEL}"


def test_file_names_get_a_safe_word_even_inside_longer_names():
    assert SCRUBBER.filename("invoice-support@shop.example-label.pdf") == f"invoice-{FILENAME_LABEL}-label.pdf"


def test_the_label_follows_the_locale_and_fields_get_the_case_address():
    french = AddressScrubber.build(["carol@customer.test"], domain="disputes.test", case_reference="k3q7",
                                   own_address="", locale="fr_FR")
    assert french.text("carol@customer.test") == "[adresse masquée]"
    assert french.as_field() == f"{FILENAME_LABEL}@invalid" and SCRUBBER.as_field() == OWN


def test_canonical_is_what_a_reader_understands():
    assert canonical("Sup<b></b>port&#64;Shop%2Eexample\u200b") == "support@shop.example"


@pytest.mark.parametrize("written", [
    "support@shop.example", "support&COMMAT;shop.example", "support&#X40;shop.example", "support&#0064;shop.example",
    "support%40shop.example", "support\uff20shop.example", "support\ufe6bshop.example", "support&#37;40shop.example",
    "support at shop.example", "support&#6;4shop.example", "",
])
def test_text_without_an_at_sign_in_any_form_gives_the_answer_the_full_pattern_gives(written):
    # the scrubber skips building its pattern for text with no "@" in any form; the answers
    # must be those of the pattern itself
    from gateway.mail import scrub

    text = f"write to {written} today"
    bounded = scrub._pattern(SCRUBBER.hidden, SCRUBBER.domain, False, True)
    unbounded = scrub._pattern(SCRUBBER.hidden, SCRUBBER.domain, False, False)
    html = scrub._pattern(SCRUBBER.hidden, SCRUBBER.domain, True, True)
    assert (SCRUBBER.text(text) != text) == (bounded.search(text) is not None)
    assert (SCRUBBER.html(text) != text) == (html.search(text) is not None)
    assert (SCRUBBER.filename(text) != text) == (unbounded.search(text) is not None)
    assert SCRUBBER.contains(text) == (unbounded.search(text) is not None or
                                       unbounded.search(canonical(text)) is not None)


def test_text_without_an_at_sign_builds_no_pattern():
    from gateway.mail import scrub

    scrubber = AddressScrubber.build(["someone-unique@example.test"], domain="elsewhere.test", case_reference="z9",
                                     own_address="", locale="en")
    before = scrub._pattern.cache_info().misses
    assert scrubber.text("no address here\n" * 100) == "no address here\n" * 100
    assert not scrubber.contains("invoice.pdf")
    assert scrub._pattern.cache_info().misses == before
