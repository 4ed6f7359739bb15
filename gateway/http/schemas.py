"""The JSON shapes of the API (pydantic): what /openapi.json describes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9_./-]{2,62}[A-Za-z0-9]$"  # gateway/importer.py's
# gateway/importer.py's, with U+0085 spelled out: Python's and pydantic's \s include it, JSON Schema's (ECMA 262) not
EMAIL = r"^[^@\s\x85,;<>]+@[^@\s\x85,;<>]+\.[^@\s\x85,;<>]+$"
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
Party = Literal["customer", "merchant", "staff"]
State = Literal["needs_info", "awaiting_merchant", "awaiting_customer", "with_staff", "closed"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Attachment(Strict):
    filename: str = Field(min_length=1, max_length=200, examples=["receipt.pdf"])
    content_type: str = Field(default="application/octet-stream", pattern=r"^[a-zA-Z0-9.+-]+/[a-zA-Z0-9.+-]+$",
                              max_length=100)
    content_base64: str = Field(description="The file's bytes, base64", pattern=BASE64)


class OpenCase(Strict):
    reference: str = Field(pattern=REFERENCE, description="The transaction reference", examples=["TX-1001"])
    category: Literal["payment", "delivery"]
    text: str = Field(min_length=1, max_length=20_000, description="The customer's complaint, as she wrote it")
    subject: str | None = Field(default=None, max_length=150, description="A title (default: from the reference)")
    customer_email: str | None = Field(default=None, max_length=320, pattern=EMAIL,
                                       description="If given, must be the transaction's customer's address")
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)


class CaseOpened(BaseModel):
    reference: str = Field(description="The case reference", examples=["K7QX2MBA"])
    customer_address: str = Field(description="The customer's case address: her answers go there")
    state: State
    joined: bool = Field(description="True: the transaction had an open case, and this complaint joined it")
    url: str = Field(description="Where to read the case in this API")


class HistoryEntry(BaseModel):
    at: datetime
    kind: str = Field(description="What happened: case_opened, merchant_replied, notice_sent, escalated ...")
    party: Party | None = None
    notice: str | None = None


class ConversationMessage(BaseModel):
    at: datetime
    author: Party
    direction: Literal["in", "out"] = Field(description="in: written by the party; out: a notice sent to the party")
    subject: str
    text: str = Field(description="The new text of a party's message (addresses removed); empty for notices")


class CaseSummary(BaseModel):
    reference: str
    transaction_reference: str
    merchant_id: str
    category: Literal["payment", "delivery"] | None
    state: State
    must_act: Party | None = Field(description="Who the case waits for; null when closed")
    escalated: bool
    opened_at: datetime
    closed_at: datetime | None


class CaseDetail(CaseSummary):
    dispute_type: str
    merchant_unreachable: bool
    closed_reason: str | None
    waiting_since: datetime
    next_due_at: datetime | None = Field(description="When the gateway next acts on its own (reminder, escalation, closing)")
    customer_address: str
    history: list[HistoryEntry]
    messages: list[ConversationMessage]


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int


class MerchantIn(Strict):
    merchant_id: str = Field(min_length=1, max_length=64, examples=["shop1"])
    name: str = Field(min_length=1, max_length=200)
    support_email: str = Field(max_length=320, pattern=EMAIL)
    locale: Literal["en", "fr"]


class TransactionIn(Strict):
    reference: str = Field(pattern=REFERENCE, examples=["TX-1001"])
    merchant_id: str = Field(min_length=1, max_length=64)
    customer_email: str = Field(max_length=320, pattern=EMAIL)
    customer_name: str = Field(default="", max_length=200)
    amount: str | int | float = Field(examples=["49.90"])
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", examples=["EUR"])
    transaction_date: str = Field(max_length=40, examples=["2026-11-20"])
    customer_locale: Literal["en", "fr"] | None = None


class Merchants(Strict):
    items: list[MerchantIn] = Field(min_length=1, max_length=1000)


class Transactions(Strict):
    items: list[TransactionIn] = Field(min_length=1, max_length=1000)


class Upserted(BaseModel):
    created: int
    updated: int


class ProblemDetails(BaseModel):
    """RFC 9457."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict] | None = None
