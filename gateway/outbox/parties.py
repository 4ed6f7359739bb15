"""The parties of a case as its mail sees them: their addresses, locales and names, read
once per unit of work (the merchant and transaction rows are cached here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway import addresses, store
from gateway.config import Settings
from gateway.models import Case, Merchant, Transaction

ROLE_LABELS = {"en": {"c": "customer", "m": "merchant", "s": "staff"}, "fr": {"c": "client", "m": "marchand", "s": "équipe"}}


@dataclass
class Parties:
    """Who the customer, the merchant and staff of a case are, for one unit of work."""

    db: Session
    settings: Settings
    _rows: dict = field(default_factory=dict, repr=False)  # merchant/transaction rows read in this unit of work

    def merchant_of(self, case: Case) -> Merchant | None:
        key = ("m", case.merchant_id)
        if key not in self._rows:
            self._read_rows_of(case)
        return self._rows[key]

    def transaction_of(self, case: Case) -> Transaction | None:
        key = ("t", case.transaction_reference)
        if key not in self._rows:
            self._read_rows_of(case)
        return self._rows[key]

    def _read_rows_of(self, case: Case) -> None:
        """The case's merchant and transaction rows, read together (its mail needs both)."""
        merchant, transaction = store.merchant_and_transaction(self.db, case.merchant_id, case.transaction_reference)
        self._rows.setdefault(("m", case.merchant_id), merchant)
        self._rows.setdefault(("t", case.transaction_reference), transaction)

    def case_address(self, case: Case, party: str) -> str:
        gateway = self.settings.gateway
        return addresses.case_address(case.reference, party, domain=gateway.domain, keys=gateway.secret_keys)

    def recipients(self, case: Case, party: str) -> list[str]:
        if party == "c":
            return [case.customer_email]
        if party == "m":
            merchant = self.merchant_of(case)
            if merchant is None or merchant.address_invalid:
                return []
            return [merchant.support_email]
        return list(self.settings.gateway.staff_addresses)

    def locale_for(self, case: Case, party: str) -> str:
        if party == "c":
            return case.customer_locale
        if party == "m":
            merchant = self.merchant_of(case)
            return merchant.locale if merchant else self.settings.gateway.default_locale
        return self.settings.gateway.default_locale

    def party_addresses(self, case: Case) -> list[str]:
        """Every real address of the case's parties: none may appear in what a relay carries."""
        merchant = self.merchant_of(case)
        return [case.customer_email, *(([merchant.support_email]) if merchant else []),
                *self.settings.gateway.staff_addresses]

    def party_name(self, case: Case, party: str) -> str:
        """How a party is named in the To header of what it receives (no address in it)."""
        if party == "c":
            tx = self.transaction_of(case)
            name = tx.customer_name if tx else ""
        elif party == "m":
            merchant = self.merchant_of(case)
            name = merchant.name if merchant else ""
        else:
            name = f"{self.settings.gateway.display_name} staff"
        return " ".join(name.replace("@", " ").split())

    def author_name(self, case: Case, author: str, locale: str) -> str:
        """Display name for a message written by `author`, as shown to another party."""
        label = ROLE_LABELS[locale][author]
        brand = self.settings.gateway.display_name
        if author == "c":
            tx = self.transaction_of(case)
            name = tx.customer_name if tx else ""
        elif author == "m":
            merchant = self.merchant_of(case)
            name = merchant.name if merchant else ""
        else:
            return f"{brand} ({label})"
        name = " ".join(name.replace("@", " ").split())  # never let a name carry an address
        return f"{name} ({label}) via {brand}" if name else f"{brand} ({label})"
