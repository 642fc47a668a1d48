"""What the payout jobs need from the gateway client: a narrow, typed interface.

Job code depends on :class:`PayoutGateway`, not on the hook class, so a test (or another client)
can stand in for it and the jobs cannot reach into the hook's internals.
:class:`payout_gateway.hooks.PayoutGatewayHook` satisfies it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from payout_gateway.models import CreatePayoutInvoiceRequest, PayoutInvoice, PrerequestResult


class PayoutGateway(Protocol):
    """The gateway operations the jobs call (see ``PayoutGatewayHook`` for their contracts)."""

    #: ``time.monotonic()`` after which nothing is sent (None: no limit).
    deadline: float | None

    def prerequest(self, currency: str, amount: Decimal | str | int | float) -> PrerequestResult: ...

    def get_invoice(self, invoice_id: str) -> PayoutInvoice: ...

    def find_invoice_by_reference(self, reference_id: str) -> PayoutInvoice | None: ...

    def list_invoices(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        reference_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[PayoutInvoice]: ...

    def create_and_process(
        self, request: CreatePayoutInvoiceRequest | Mapping[str, Any], *, lookup_first: bool = True
    ) -> PayoutInvoice: ...

    def dashboard_url(self, invoice_id: str) -> str | None: ...


#: Makes a client (e.g. ``PayoutGatewayHook``, the class itself).
GatewayFactory = Callable[[], PayoutGateway]

T = TypeVar("T")


def per_thread(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that makes one object per thread with ``factory`` (a client holds an HTTP session)."""
    local = threading.local()

    def get() -> T:
        if not hasattr(local, "value"):
            local.value = factory()
        return local.value

    return get
