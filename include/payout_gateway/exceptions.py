"""Typed errors of the payout gateway client.

Texts name fields, statuses and ids, never secrets or card/account numbers (they go through
:func:`payout_gateway.redaction.redact_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from payout_gateway.models import ApiErrorItem
from payout_gateway.redaction import redact_text


class PayoutGatewayError(AirflowException):
    """Base of every error raised by this provider."""


# ------------------------------------------------------------------------------- HTTP API errors
class PayoutGatewayApiError(PayoutGatewayError):
    """The gateway answered with an HTTP error; ``errors`` holds its parsed error details."""

    hint = ""

    def __init__(
        self,
        status_code: int,
        errors: Sequence[ApiErrorItem] = (),
        *,
        method: str = "",
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = list(errors)
        self.method = method
        self.endpoint = endpoint
        self.retry_after = retry_after
        details = "; ".join(e.describe() for e in self.errors) or "no error details"
        where = f"{method} {endpoint} " if method else ""
        text = f"{where}failed with HTTP {status_code}: {details}"
        if self.hint:
            text = f"{text}. {self.hint}"
        super().__init__(redact_text(text))

    def meta(self, key: str) -> str | None:
        """The first value of ``meta[key]`` among the errors (e.g. ``invoice_id`` of a 409)."""
        for item in self.errors:
            if item.meta and item.meta.get(key) is not None:
                return str(item.meta[key])
        return None

    @property
    def titles(self) -> list[str]:
        """The error titles (e.g. ``duplicate_reference_id``)."""
        return [e.title for e in self.errors if e.title]


class PayoutBadRequestError(PayoutGatewayApiError):
    """400: the gateway could not understand the request; nothing was created."""


class PayoutAuthenticationError(PayoutGatewayApiError):
    """401: the credentials were refused."""

    hint = "Check the connection: login must be the account id and password the API key"


class PayoutPermissionError(PayoutGatewayApiError):
    """403: the account may not do this (IP allow-list, permissions)."""

    hint = "Check the connection (account, API key, IP allow-list)"


class PayoutNotFoundError(PayoutGatewayApiError):
    """404: no such resource."""


class PayoutMethodNotAllowedError(PayoutGatewayApiError):
    """405: the endpoint does not allow this method."""


class PayoutConflictError(PayoutGatewayApiError):
    """409: the request conflicts with the gateway's state (duplicate reference, not processable)."""


class PayoutUnprocessableError(PayoutGatewayApiError):
    """422: the gateway rejected the request; ``field_errors`` maps field -> reason."""

    @property
    def field_errors(self) -> dict[str, str]:
        return {e.field: e.detail or "" for e in self.errors if e.field}


class PayoutRateLimitError(PayoutGatewayApiError):
    """429: too many requests (or, for some gateway versions, a duplicate request)."""


class PayoutServerError(PayoutGatewayApiError):
    """5xx: the gateway failed; the outcome of a POST is unknown."""


_BY_STATUS: dict[int, type[PayoutGatewayApiError]] = {
    400: PayoutBadRequestError,
    401: PayoutAuthenticationError,
    403: PayoutPermissionError,
    404: PayoutNotFoundError,
    405: PayoutMethodNotAllowedError,
    409: PayoutConflictError,
    422: PayoutUnprocessableError,
    429: PayoutRateLimitError,
}


def api_error_class(status_code: int) -> type[PayoutGatewayApiError]:
    """The exception class for an HTTP error status."""
    if status_code >= 500:
        return PayoutServerError
    return _BY_STATUS.get(status_code, PayoutGatewayApiError)


# ------------------------------------------------------------------------ client-side decisions
class PayoutValidationError(AirflowFailException, ValueError):
    """A request is invalid; nothing was sent. ``problems`` lists (field, reason) pairs."""

    def __init__(self, field: str, reason: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.reason = reason
        self.problems = list(problems) or [(field, reason)]
        text = "; ".join(f"{f}: {r}" for f, r in self.problems)
        super().__init__(redact_text(f"Invalid payout request (nothing was sent): {text}"))


class PayoutReferenceConflictError(AirflowFailException):
    """An invoice with this reference exists but is not this payout (reference reused, or its
    identity cannot be verified): it is not ours to adopt, and money may have moved on it.

    ``differences`` names what differs (``amount``, ``test_mode``, ``fields.account``,
    ``fingerprint``...), never the values. ``invoice_status``, ``invoice_resolution``,
    ``invoice_amount`` and ``invoice_currency`` describe the existing invoice (None if unknown).
    """

    def __init__(
        self,
        reference_id: str,
        invoice_id: str,
        differences: Sequence[str],
        *,
        invoice_status: str | None = None,
        invoice_resolution: str | None = None,
        invoice_amount: Decimal | None = None,
        invoice_currency: str | None = None,
    ) -> None:
        self.reference_id = reference_id
        self.invoice_id = invoice_id
        self.differences = list(differences)
        self.invoice_status = invoice_status
        self.invoice_resolution = invoice_resolution
        self.invoice_amount = invoice_amount
        self.invoice_currency = invoice_currency
        status = f" (status {invoice_status})" if invoice_status else ""
        super().__init__(
            f"reference_id {reference_id} is already used by invoice {invoice_id}{status} for a different "
            f"payout (differs in: {', '.join(self.differences)}). Nothing was sent; check that invoice "
            "in the dashboard, and use a new reference_id only if this really is another payout."
        )


class PayoutDuplicateReferenceError(AirflowFailException):
    """The gateway holds more than one invoice for one reference: a person must reconcile."""

    def __init__(self, reference_id: str, invoice_ids: Sequence[str]) -> None:
        self.reference_id = reference_id
        self.invoice_ids = list(invoice_ids)
        super().__init__(
            f"reference_id {reference_id} has {len(self.invoice_ids)} invoices "
            f"({', '.join(self.invoice_ids)}); reconcile them in the dashboard before going on"
        )


class PayoutOutcomeUnknownError(PayoutGatewayError):
    """A POST's outcome stayed unknown after the allowed lookups: reconcile by reference."""

    def __init__(self, action: str, reference_id: str | None, attempts: int, cause: str) -> None:
        self.action = action
        self.reference_id = reference_id
        self.attempts = attempts
        super().__init__(
            redact_text(
                f"Outcome of {action} for reference_id {reference_id} is unknown after {attempts} attempt(s) "
                f"(last: {cause}). Nothing more was sent; reconcile by reference_id before retrying."
            )
        )


# ------------------------------------------------------------------------------ waiting outcomes
class PayoutInvoiceFailedError(AirflowFailException):
    """A payout reached a final failure status (no automatic retry: that could pay twice)."""


class PayoutNeedsPersonError(AirflowFailException):
    """A payout waits for a person (error-group resolution or moderation)."""


class PayoutWaitTimeoutError(PayoutGatewayError):
    """Waiting ran out before the payout became final; a retry re-attaches and waits again."""
