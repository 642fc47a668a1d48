"""The reads of :class:`~payout_gateway.hooks.PayoutGatewayHook`: GETs and the prerequest.

Reads have no side effect: each retries on transient failures (tenacity, exponential backoff with
jitter, a bounded number of attempts; a 429 with ``Retry-After`` waits at the connection's gate
and costs time, not attempts). The async :meth:`GatewayReads.aget_invoice` (for triggers) is
retried the same way and reaches the gateway through the same transport as the sync reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tenacity import AsyncRetrying

from payout_gateway.exceptions import PayoutDuplicateReferenceError, PayoutGatewayError
from payout_gateway.models import InvoicePage, PayoutInvoice, PayoutService, PrerequestResult, ServicePage
from payout_gateway.redaction import redact_text
from payout_gateway.validation import quantize_amount

if TYPE_CHECKING:
    from payout_gateway.hooks import PayoutGatewayHook


class GatewayReads:
    """Reads of the payout gateway (mixed into ``PayoutGatewayHook``)."""

    def prerequest(
        self: PayoutGatewayHook, currency: str, amount: Decimal | str | int | float
    ) -> PrerequestResult:
        """``POST /payout-prerequest``: services offered for ``currency`` and ``amount`` (public key)."""
        if not self.settings.public_key:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} has no public_key extra; the prerequest needs it"
            )
        currency = currency.strip().upper()
        body = {
            "currency": currency,
            "amount": quantize_amount(amount, currency),
            "public_key": self.settings.public_key,
        }
        return PrerequestResult.model_validate(
            self._read("POST", "payout-prerequest", body=body, public=True)
        )

    def list_services(self: PayoutGatewayHook, page_size: int | None = None) -> list[PayoutService]:
        """``GET /payout-services``, every page."""
        params = {"page[number]": 1, **({"page[size]": page_size} if page_size else {})}
        return [item for page in self._walk("payout-services", params, ServicePage) for item in page.items]

    def get_service(self: PayoutGatewayHook, service_id: str) -> PayoutService:
        """``GET /payout-services/{id}``."""
        return PayoutService.model_validate(
            self._read("GET", f"payout-services/{quote(service_id, safe='')}")
        )

    def get_invoice(self: PayoutGatewayHook, invoice_id: str) -> PayoutInvoice:
        """``GET /payout-invoices/{id}``."""
        return PayoutInvoice.model_validate(
            self._read("GET", f"payout-invoices/{quote(invoice_id, safe='')}")
        )

    def get_public_invoice(self: PayoutGatewayHook, invoice_id: str) -> PayoutInvoice:
        """``GET /public/payout-invoices/{id}`` with the public key (flat shape, no fields)."""
        if not self.settings.public_key:
            raise PayoutGatewayError(f"Connection {self.payout_gateway_conn_id} has no public_key extra")
        return PayoutInvoice.model_validate(
            self._read(
                "GET",
                f"public/payout-invoices/{quote(invoice_id, safe='')}",
                public=True,
                headers={"X-Public-Key": self.settings.public_key},
            )
        )

    def list_invoices(
        self: PayoutGatewayHook,
        *,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        reference_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[PayoutInvoice]:
        """``GET /payout-invoices``, walking the cursor; each invoice once.

        ``filters`` become ``filter[key]=value`` query parameters; ``created_from`` /
        ``created_to`` bound the creation time (inclusive, whole seconds:
        ``filter[created][gte]`` / ``filter[created][lte]``).
        """
        params: dict[str, Any] = {f"filter[{k}]": v for k, v in (filters or {}).items()}
        if reference_id is not None:
            params["filter[reference_id]"] = reference_id
        if created_from is not None:
            params["filter[created][gte]"] = int(created_from.timestamp())
        if created_to is not None:
            params["filter[created][lte]"] = int(created_to.timestamp())
        if page_size:
            params["page[size]"] = page_size
        seen: set[str] = set()
        for page in self._walk("payout-invoices", params, InvoicePage):
            for invoice in page.items:
                if invoice.id not in seen:
                    seen.add(invoice.id)
                    yield invoice

    def find_invoices_by_reference(self: PayoutGatewayHook, reference_id: str) -> list[PayoutInvoice]:
        """Every invoice whose ``reference_id`` is exactly ``reference_id``."""
        return [i for i in self.list_invoices(reference_id=reference_id) if i.reference_id == reference_id]

    def find_invoice_by_reference(self: PayoutGatewayHook, reference_id: str) -> PayoutInvoice | None:
        """The invoice for ``reference_id``; None when the gateway answered that there is none.

        Raises :class:`PayoutDuplicateReferenceError` when there is more than one.
        """
        found = self.find_invoices_by_reference(reference_id)
        if len(found) > 1:
            raise PayoutDuplicateReferenceError(reference_id, [i.id for i in found])
        return found[0] if found else None

    def test_connection(self: PayoutGatewayHook) -> tuple[bool, str]:
        """A harmless read: the first page of payout services."""
        try:
            page = ServicePage.model_validate(
                self._read("GET", "payout-services", params={"page[number]": 1, "page[size]": 1})
            )
        except Exception as exc:
            return False, redact_text(str(exc))
        return (
            True,
            f"Connection works: {page.total if page.total is not None else len(page.items)} payout services",
        )

    async def aget_invoice(self: PayoutGatewayHook, invoice_id: str) -> PayoutInvoice:
        """``GET /payout-invoices/{id}`` with aiohttp, retried like every read (for triggers)."""
        endpoint = f"payout-invoices/{quote(invoice_id, safe='')}"
        await self._aload()
        async for attempt in AsyncRetrying(**self._read_retry(f"GET {endpoint}")):
            with attempt:
                return PayoutInvoice.model_validate(await self._asend("GET", endpoint))
        raise AssertionError("unreachable")  # pragma: no cover
