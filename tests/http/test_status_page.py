"""The parties' status pages, loaded in a real headless Chromium (Debian's `chromium`):
a phone-sized screenshot, and the text Chromium rendered (its PDF print, read back), in
English for the customer and French for the merchant; no other party's address anywhere,
no script. Without Chromium the browser test is skipped, saying how to install it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from gateway import status_links
from tests.harness import CUSTOMER, build_mail

MERCHANT2 = "sav@boutique.test"  # shop2, Boutique Deux, French
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE = (390, 1700)  # CSS pixels: a phone's width
_LINK_RE = re.compile(r"https?://[^\s<>\"]+/status/[a-z0-9.]+")


@pytest.fixture(scope="module")
def case(api):
    """A delivery case opened by API (TX-1002, shop2) that the merchant answered by mail,
    each side quoting its real address in its text; the links their notices carry."""
    with api.client() as http:
        answer = http.post("/v1/cases", json={"reference": "TX-1002", "category": "delivery",
                                              "text": f"My parcel never came. Write to me at {CUSTOMER}."})
        assert answer.status_code == 201, answer.text
        opened = answer.json()
    sink = api.sink
    sink.wait(lambda _: sink.to(CUSTOMER) and len(sink.to(MERCHANT2)) >= 2)
    relay = next(r for r in sink.to(MERCHANT2) if "Auto-Submitted" not in r.message)
    address = relay.header("From").split("<")[1].rstrip(">")
    before = len(sink.to(CUSTOMER))
    api.gateway.send(build_mail(sender=MERCHANT2, to=address, subject="Re: " + relay.header("Subject"),
                                body=f"Nous avons renvoyé le colis. Contact : {MERCHANT2}",
                                in_reply_to=relay.header("Message-ID")), to=address, sender=MERCHANT2)
    sink.wait(lambda _: len(sink.to(CUSTOMER)) > before)
    api.gateway.settle()
    customer_link = _LINK_RE.search(sink.to(CUSTOMER)[0].text()).group(0)
    merchant_notice = next(r for r in sink.to(MERCHANT2) if "Auto-Submitted" in r.message)
    merchant_link = _LINK_RE.search(merchant_notice.text()).group(0)
    return {"opened": opened, "customer": customer_link, "merchant": merchant_link,
            "merchant_address": address}


def test_links_open_one_party_page_and_expire(api, case):
    import httpx

    customer, merchant = httpx.get(case["customer"]), httpx.get(case["merchant"])
    assert customer.status_code == merchant.status_code == 200
    assert "<script" not in customer.text and "<script" not in merchant.text
    assert case["opened"]["customer_address"] in customer.text and case["merchant_address"] not in customer.text
    assert case["merchant_address"] in merchant.text and case["opened"]["customer_address"] not in merchant.text
    assert CUSTOMER not in merchant.text and MERCHANT2 not in customer.text
    assert "Write to me at [address hidden]" in merchant.text or "[adresse masquée]" in merchant.text
    assert customer.headers["cache-control"] == "no-store"
    token = case["customer"].rsplit("/", 1)[1]
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert httpx.get(case["customer"].replace(token, forged)).status_code == 404
    assert httpx.get(case["customer"].replace(token, token.replace(".c.", ".m."))).status_code == 404
    keys = api.gateway.settings.gateway.secret_keys
    old = status_links.token(case["opened"]["reference"], "c", expires=api.gateway.clock.now() - timedelta(seconds=1),
                             key=keys[0])
    expired = httpx.get(case["customer"].replace(token, old))
    assert expired.status_code == 410 and "expired" in expired.text


def _chromium(url: str, out: Path, *flags: str) -> None:
    profile = out.parent / f"profile-{out.stem}"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                    f"--window-size={PHONE[0]},{PHONE[1]}", *flags, url],
                   check=True, capture_output=True, timeout=60)
    assert out.exists(), f"chromium wrote no {out.name}"


def _rendered_text(pdf: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(str(pdf)).pages)


def _check_screenshot(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == PHONE
        histogram = image.convert("L").histogram()
    dark, light = sum(histogram[:128]), sum(histogram[200:])
    assert dark > 5000 and light > dark, "the screenshot is blank or not the page"  # dark text on a light page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: apt-get install -y chromium "
                                             "(README: HTTP API, Tests)")
@pytest.mark.parametrize("party, locale, present, absent", [
    ("customer", "en", ["Where it stands", "Waiting for the customer's answer", "Who acts next", "you",
                        "How to answer", "Nous avons renvoyé le colis", "[address hidden]"],
     [MERCHANT2, "staff@"]),
    ("merchant", "fr", ["Où en est le dossier", "En attente de la réponse du client", "Qui doit agir",
                        "le client", "Comment répondre", "My parcel never came", "[adresse masquée]"],
     [CUSTOMER, "staff@"]),
])
def test_the_status_page_in_a_real_browser(api, case, tmp_path, party, locale, present, absent):
    url = case[party]
    screens = Path(os.environ.get("DG_SCREENSHOT_DIR") or tmp_path)
    screens.mkdir(parents=True, exist_ok=True)
    png, pdf = screens / f"status-{party}-{locale}.png", tmp_path / f"status-{party}.pdf"
    _chromium(url, png, f"--screenshot={png}")
    _chromium(url, pdf, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    _check_screenshot(png)
    text = _rendered_text(pdf)
    for words in present:
        assert words in text, (words, text)
    for words in absent:
        assert words not in text, (words, text)
    own = case["opened"]["customer_address"] if party == "customer" else case["merchant_address"]
    other = case["merchant_address"] if party == "customer" else case["opened"]["customer_address"]
    flat = text.replace(" ", "")
    assert own.split("@")[0] in flat and other.split("@")[0] not in flat
