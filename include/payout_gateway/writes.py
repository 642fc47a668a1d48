"""The writes of :class:`~payout_gateway.hooks.PayoutGatewayHook`: POSTs that are never sent twice.

Every write goes through :meth:`GatewayWrites._write`: send the POST; on an answer that leaves
the outcome unknown (5xx, timeout, reset, 429, a cut-off body) wait (tenacity, the reads' backoff
and the connection's rate-limit gate), then *read back* what the gateway holds before anything
is sent again. The read-back either finds the write done (its result is returned), or proves it
did not take effect (then, and only then, the POST is sent again, at most ``create_rounds``
times; a 429 with ``Retry-After`` costs time, not a round), or fails (then
:class:`PayoutOutcomeUnknownError`: nothing more is sent). A new write endpoint (a cancel, a
refund) gives its ``send`` and its ``read_back`` to :meth:`GatewayWrites._write`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from tenacity import RetryCallState, Retrying, retry_if_exception

from payout_gateway.exceptions import (
    PayoutConflictError,
    PayoutDuplicateReferenceError,
    PayoutGatewayApiError,
    PayoutGatewayError,
    PayoutOutcomeUnknownError,
    PayoutReferenceConflictError,
)
from payout_gateway.fingerprint import FingerprintCheck, check_fingerprint, with_fingerprint
from payout_gateway.identity import mask_field_values, payout_differences
from payout_gateway.models import CreatePayoutInvoiceRequest, PayoutInvoice
from payout_gateway.retries import StopReading, is_transient, outcome_class
from payout_gateway.statuses import PayoutStatus
from payout_gateway.validation import coerce_request

if TYPE_CHECKING:
    from payout_gateway.hooks import PayoutGatewayHook

T = TypeVar("T")

#: Read-back failures that are answers, not doubt: they propagate as they are.
DECISIVE_READ_BACK_ERRORS = (PayoutDuplicateReferenceError, PayoutReferenceConflictError)


class GatewayWrites:
    """Create and process payout invoices (mixed into ``PayoutGatewayHook``)."""

    def _write(
        self: PayoutGatewayHook,
        action: str,
        reference_id: str | None,
        *,
        send: Callable[[], T],
        read_back: Callable[[], T | None],
        on_conflict: Callable[[PayoutConflictError], T],
        done: str = "ok",
        read_back_name: str = "read-back",
        not_done: str = "read-backs found it not done",
        invoice_id: str | None = None,
    ) -> T:
        """POST with ``send``; after an unknown outcome, ``read_back`` before anything is sent again.

        :param read_back: the gateway's state: the write's result if it took effect, None if it
            proves that it did not (then the POST is sent again).
        :param on_conflict: the result after a 409 (the gateway says it is done or under way).
        :param done: the outcome logged for a successful send (``created``, ``ok``).
        :raises PayoutOutcomeUnknownError: the outcome stayed unknown; nothing more was sent.
        """
        stop = StopReading(
            self.settings.create_rounds + 1,  # the last try only reads back
            rate_limit_seconds=self._rate_limit_seconds(),
            deadline=self.deadline,
            max_wait=self.settings.retry_max_wait,
        )
        sends = 0
        last: BaseException | None = None

        def log_unknown(state: RetryCallState) -> None:
            self._log_post(
                action, reference_id, sends, f"unknown:{outcome_class(last)}", invoice_id=invoice_id
            )

        try:
            for attempt in Retrying(
                retry=retry_if_exception(is_transient),
                stop=stop,
                wait=self._wait(),
                before_sleep=log_unknown,
                reraise=True,
            ):
                with attempt:
                    if sends:
                        found = self._read_back(action, reference_id, sends, last, read_back, read_back_name)
                        if found is not None:
                            self.log.info(
                                "%s reference_id=%s: done, found by the %s",
                                action,
                                reference_id,
                                read_back_name,
                            )
                            return found
                        if stop.failures >= self.settings.create_rounds:
                            raise PayoutOutcomeUnknownError(
                                action, reference_id, sends, f"{outcome_class(last)}; {not_done}"
                            )
                        self.log.warning(
                            "%s reference_id=%s: %s answered absent after attempt %d; sending again",
                            action,
                            reference_id,
                            read_back_name,
                            sends,
                        )
                    sends += 1
                    try:
                        result = send()
                    except PayoutConflictError as exc:
                        self._log_post(
                            action,
                            reference_id,
                            sends,
                            "conflict",
                            http_status=exc.status_code,
                            invoice_id=invoice_id,
                        )
                        return on_conflict(exc)
                    except Exception as exc:
                        last = exc
                        if not is_transient(exc):
                            status = exc.status_code if isinstance(exc, PayoutGatewayApiError) else None
                            self._log_post(
                                action,
                                reference_id,
                                sends,
                                outcome_class(exc),
                                http_status=status,
                                invoice_id=invoice_id,
                            )
                        raise
                    self._log_post(
                        action, reference_id, sends, done, invoice_id=getattr(result, "id", invoice_id)
                    )
                    return result
        except Exception as exc:
            if not is_transient(exc):
                raise
            # the rate-limit budget or the deadline ran out: a last read-back decides
            found = self._read_back(action, reference_id, sends, exc, read_back, read_back_name)
            if found is not None:
                return found
            raise PayoutOutcomeUnknownError(
                action, reference_id, sends, f"{outcome_class(exc)}; {not_done}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_back(
        self: PayoutGatewayHook,
        action: str,
        reference_id: str | None,
        attempt: int,
        cause: BaseException | None,
        read_back: Callable[[], T | None],
        name: str,
    ) -> T | None:
        try:
            return read_back()
        except DECISIVE_READ_BACK_ERRORS:
            raise
        except Exception as exc:
            raise PayoutOutcomeUnknownError(
                action,
                reference_id,
                attempt,
                f"{outcome_class(cause)}, then the {name} failed: {outcome_class(exc)}",
            ) from exc

    def _log_post(
        self: PayoutGatewayHook,
        action: str,
        reference_id: str | None,
        attempt: int,
        outcome: str,
        **extra: Any,
    ) -> None:
        details = "".join(f" {k}={v}" for k, v in extra.items() if v is not None)
        self.log.info(
            "POST %s reference_id=%s attempt=%d outcome=%s%s", action, reference_id, attempt, outcome, details
        )

    # -------------------------------------------------------------------------------- create
    def create_invoice(
        self: PayoutGatewayHook,
        request: CreatePayoutInvoiceRequest | Mapping[str, Any],
        *,
        lookup_first: bool = True,
    ) -> PayoutInvoice:
        """Create a payout invoice, idempotently by ``reference_id``.

        :param request: the request model, or a dict of its attributes (as the create sample's
            ``data.attributes``) or the whole document.
        :param lookup_first: look the reference up before the first POST and adopt what exists
            (costs one GET; the gateway's 409 covers the same case when it enforces uniqueness).
            Ignored (always looked up) when the connection's ``unique_references`` is off.
        :return: the new invoice, or the existing one for this reference.
        :raises PayoutValidationError: the request is invalid; nothing was sent.
        :raises PayoutReferenceConflictError: the reference belongs to a different payout.
        :raises PayoutOutcomeUnknownError: the outcome stayed unknown; reconcile by reference.

        The invoice's ``metadata`` carries a keyed fingerprint of the payout
        (:mod:`payout_gateway.fingerprint`) beside the caller's keys; every adoption (found before
        the create, after a 409, after an unknown outcome) is checked against it.
        """
        req = self._prepare(request)
        reference_id = req.reference_id
        if lookup_first or not self.settings.unique_references:
            existing = self.find_invoice_by_reference(reference_id)
            if existing is not None:
                return self._adopt(req, existing, "found before create")
        body = with_fingerprint(req, self._fingerprint_secret()).to_document()

        def read_back() -> PayoutInvoice | None:
            found = self.find_invoice_by_reference(reference_id)
            return None if found is None else self._adopt(req, found, "found after an unknown outcome")

        return self._write(
            "create",
            reference_id,
            send=lambda: PayoutInvoice.model_validate(self._send("POST", "payout-invoices", body=body)),
            read_back=read_back,
            on_conflict=lambda exc: self._adopt_after_conflict(req, exc),
            done="created",
            read_back_name="lookup",
            not_done="lookups found nothing",
        )

    def _adopt_after_conflict(
        self: PayoutGatewayHook, req: CreatePayoutInvoiceRequest, exc: PayoutConflictError
    ) -> PayoutInvoice:
        existing: PayoutInvoice | None = None
        invoice_id = exc.meta("invoice_id")
        if invoice_id:
            existing = self.get_invoice(invoice_id)
            if existing.reference_id not in (None, req.reference_id):
                existing = None
        if existing is None:
            existing = self._read_back(
                "create",
                req.reference_id,
                1,
                exc,
                lambda: self.find_invoice_by_reference(req.reference_id),
                "lookup",
            )
        if existing is None:
            raise PayoutOutcomeUnknownError(
                "create", req.reference_id, 1, "409 conflict but no invoice was found"
            )
        return self._adopt(req, existing, "gateway answered 409")

    def _prepare(
        self: PayoutGatewayHook, request: CreatePayoutInvoiceRequest | Mapping[str, Any]
    ) -> CreatePayoutInvoiceRequest:
        """The request as a model, its field values masked, ``test_mode`` from the connection if unset."""
        req = coerce_request(request)
        mask_field_values(req.fields)
        if req.test_mode is None and self.settings.test_mode is not None:
            req = req.model_copy(update={"test_mode": self.settings.test_mode})
        return req

    def _fingerprint_secret(self: PayoutGatewayHook) -> bytes:
        secret = self.settings.fingerprint_secret
        if not secret:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} has neither a fingerprint_key nor an API key"
            )
        return secret

    def adopt_invoice(
        self: PayoutGatewayHook,
        request: CreatePayoutInvoiceRequest | Mapping[str, Any],
        invoice: PayoutInvoice,
        why: str,
    ) -> PayoutInvoice:
        """Adopt ``invoice``, found by the caller (e.g. by an id kept across retries), for ``request``.

        The same checks as every adoption of :meth:`create_invoice`.

        :raises PayoutReferenceConflictError: ``invoice`` is not this payout (or cannot be proven to be).
        """
        return self._adopt(self._prepare(request), invoice, why)

    def _adopt(
        self: PayoutGatewayHook, req: CreatePayoutInvoiceRequest, invoice: PayoutInvoice, why: str
    ) -> PayoutInvoice:
        """Return ``invoice`` if it is ``req``'s payout, else raise PayoutReferenceConflictError.

        An invoice made by this provider carries a keyed fingerprint of the payout in its metadata:
        it must match. One without (made by another tool) can only be compared by what the gateway
        shows (masked fields by their visible characters); the log says so.
        """
        differences = payout_differences(req, invoice)
        check = check_fingerprint(invoice.metadata, req, self._fingerprint_secret())
        if check is FingerprintCheck.MISMATCH:
            differences.append("fingerprint")
        elif check is FingerprintCheck.ABSENT:
            self.log.warning(
                "Invoice %s has no payout fingerprint (made by another tool?): compared by amount, "
                "currency, service, test_mode and the visible part of masked fields only",
                invoice.id,
            )
            if req.test_mode is not None and invoice.test_mode is None and "test_mode" not in differences:
                differences.append("test_mode")  # unknown mode, no fingerprint: cannot be proven
        if differences:
            self.log.error(
                "reference_id=%s is used by invoice %s (status %s) for a different payout (differs in: %s)",
                req.reference_id,
                invoice.id,
                invoice.status.value,
                ", ".join(differences),
            )
            raise PayoutReferenceConflictError(
                req.reference_id,
                invoice.id,
                differences,
                invoice_status=invoice.status.value,
                invoice_resolution=invoice.resolution,
                invoice_amount=invoice.amount,
                invoice_currency=invoice.currency,
            )
        self.log.info(
            "Adopted invoice %s (status %s) for reference_id=%s: %s",
            invoice.id,
            invoice.status.value,
            req.reference_id,
            why,
        )
        return invoice

    # ------------------------------------------------------------------------------- process
    def process_invoice(
        self: PayoutGatewayHook, invoice_id: str, *, current: PayoutInvoice | None = None
    ) -> PayoutInvoice:
        """Process an invoice that a fresh read shows as ``created``; never twice.

        Any other status returns the invoice unchanged. After an ambiguous answer the invoice is
        read again and processed again only if it is still ``created``. A 409 ("not processable")
        means processing is done or under way: the current invoice is returned.

        :param current: the invoice as the gateway just returned it (the create's answer or the
            read that adopted it): no read before the first POST; the gateway's 409 covers a
            change since (another worker processed it).
        """
        fresh = current is not None and current.id == invoice_id
        invoice = current if fresh and current is not None else self.get_invoice(invoice_id)
        if invoice.status is not PayoutStatus.CREATED:
            self.log.info("Invoice %s is %s: not processing it", invoice_id, invoice.status.value)
            return invoice
        path = f"payout-invoices/{quote(invoice_id, safe='')}/process"

        def read_back() -> PayoutInvoice | None:
            current = self.get_invoice(invoice_id)
            return None if current.status is PayoutStatus.CREATED else current

        def on_conflict(_: PayoutConflictError) -> PayoutInvoice:
            current = self.get_invoice(invoice_id)
            self.log.info("Invoice %s is already %s", invoice_id, current.status.value)
            return current

        return self._write(
            "process",
            invoice.reference_id,
            send=lambda: PayoutInvoice.model_validate(self._send("POST", path)),
            read_back=read_back,
            on_conflict=on_conflict,
            read_back_name="read",
            not_done="still created",
            invoice_id=invoice_id,
        )

    def create_and_process(
        self: PayoutGatewayHook,
        request: CreatePayoutInvoiceRequest | Mapping[str, Any],
        *,
        lookup_first: bool = True,
    ) -> PayoutInvoice:
        """Create idempotently, then process if the invoice is still ``created``."""
        invoice = self.create_invoice(request, lookup_first=lookup_first)
        if invoice.status is PayoutStatus.CREATED:
            return self.process_invoice(invoice.id, current=invoice)
        return invoice
