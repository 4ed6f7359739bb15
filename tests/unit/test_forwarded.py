"""Attached messages: reader headers rebuilt with the recipient's case address."""

from __future__ import annotations

import email
from email.policy import compat32

from gateway.mail.forwarded import is_our_mail, scrub_headers, scrub_status
from gateway.mail.scrub import AddressScrubber

OWN = "case+k3q7-c-abcdefgh@disputes.test"
SCRUBBER = AddressScrubber.build(["support@shop.test", "staff@ops.test"], domain="disputes.test",
                                 case_reference="k3q7", own_address=OWN, locale="en")


def test_address_headers_keep_names_and_get_the_case_address():
    node = email.message_from_string(
        'From: "Shop (support@shop.test)" <support@shop.test>\nTo: Carol <case+k3q7-m-zz@disputes.test>, '
        "Courier <post@courier.test>\nCc: =?utf-8?q?Z=C3=A9_Ops?= <staff@ops.test>\nSubject: from support@shop.test\n"
        "X-Dispute-Gateway-Loop: x\n\nbody\n", policy=compat32)
    assert is_our_mail(node)
    scrub_headers(node, SCRUBBER)
    assert node["From"] == f'"Shop ([address hidden])" <{OWN}>'
    assert node["To"] == f"Carol <{OWN}>, Courier <post@courier.test>"
    assert OWN in node["Cc"] and "=?utf-8?" in node["Cc"]
    assert node["Subject"] == "from [address hidden]" and not is_our_mail(node)


def test_delivery_status_fields_are_scrubbed():
    block = email.message_from_string("Final-Recipient: rfc822; support@shop.test\nAction: failed\n\n",
                                      policy=compat32)
    scrub_status(block, SCRUBBER)
    assert block["Final-Recipient"] == "rfc822; [address hidden]" and block["Action"] == "failed"
