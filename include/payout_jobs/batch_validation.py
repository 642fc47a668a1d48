"""Checking every row of a batch before anything is sent.

A row is rejected, with its number and a reason naming the column, when: it has more values than
the header; its ``reference_id`` is missing, malformed or used by another row of the file (every
row sharing it is rejected: which one was meant is not ours to guess); its currency has no services;
its service is not offered for the currency or converts to another currency; or the request fails
the service's rules (required fields, regexps, limits, the currency's decimals). Reasons never hold
field values (card and account numbers).

No row can stop the check of the others: a row whose check raises anything unexpected is rejected
with the error's type as its reason. Only the gateway being unavailable for the service lookup
fails the whole check (the task is retried; nothing was sent).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from payout_gateway.exceptions import PayoutBadRequestError, PayoutUnprocessableError, PayoutValidationError
from payout_gateway.models import PrerequestService
from payout_gateway.validation import quantize_amount, validate_request

from payout_jobs.batch_file import BatchRow, safe_name
from payout_jobs.batch_requests import build_request, row_currency
from payout_jobs.identity import ROW_REFERENCE_PATTERN

log = logging.getLogger(__name__)

#: Looks up the services offered for a currency and amount (``code -> service``), e.g. a prerequest.
ServiceLookup = Callable[[str, str], Mapping[str, PrerequestService]]


@dataclass
class BatchCheck:
    """The outcome of checking a batch: the row numbers that may be sent and the rejected ones."""

    valid_rows: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    total_rows: int = 0


def _problems_text(exc: PayoutValidationError) -> str:
    return "; ".join(f"{f}: {r}" for f, r in exc.problems)


class LookupUnavailable(Exception):
    """The service lookup failed for a reason other than refusing the row (carried in ``error``)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(type(error).__name__)
        self.error = error


class _CachedServices:
    """Services per currency, asked once per currency (with the first row's amount).

    A gateway may offer services by amount, so a service missing from the cached answer is asked
    again with the row's own amount (cached per currency and amount). The gateway refusing the
    currency or amount becomes the rows' reason; an outage fails the check (and it is retried).
    """

    def __init__(self, lookup: ServiceLookup) -> None:
        self._lookup = lookup
        self._by_currency: dict[str, Mapping[str, PrerequestService] | str] = {}
        self._by_amount: dict[tuple[str, str], Mapping[str, PrerequestService] | str] = {}

    def _ask(self, currency: str, amount: str) -> Mapping[str, PrerequestService] | str:
        """The gateway's answer; a refusal of the currency or amount becomes the rows' reason.

        Anything else (network, 5xx, credentials) propagates: the check task fails and is retried
        rather than rejecting good rows because the gateway was briefly unreachable.
        """
        try:
            return self._lookup(currency, amount)
        except (PayoutValidationError, PayoutUnprocessableError, PayoutBadRequestError) as exc:
            return f"currency: the gateway offers no services for {currency} at this amount ({exc})"
        except Exception as exc:
            raise LookupUnavailable(exc) from exc

    def get(self, currency: str, service: str, amount: str) -> PrerequestService | str:
        """The service for a row, or the reason it cannot be had."""
        if currency not in self._by_currency:
            self._by_currency[currency] = self._ask(currency, amount)
        offered = self._by_currency[currency]
        if isinstance(offered, str):
            return offered
        if service in offered:
            return offered[service]
        key = (currency, amount)
        if key not in self._by_amount:
            self._by_amount[key] = self._ask(currency, amount)
        again = self._by_amount[key]
        if isinstance(again, Mapping) and service in again:
            return again[service]
        name = safe_name(service)
        return f"service: {name if name else 'the value given'} is not offered for {currency} at this amount"


def check_row(row: BatchRow, batch_id: str, batch_currency: str, services: _CachedServices) -> str | None:
    """The reason to reject ``row``, or None if it may be sent (duplicates are checked apart)."""
    if row.extra_values:
        return f"row: has {row.extra_values} more value(s) than the header (an unquoted comma?)"
    if not row.reference_id:
        return "reference_id: is required"
    if not re.fullmatch(ROW_REFERENCE_PATTERN, row.reference_id):
        return "reference_id: must be 1-64 letters, digits, '_', '.' or '-'"
    if not row.service:
        return "service: is required"
    currency = row_currency(row, batch_currency)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return "currency: must be a 3-letter ISO code"
    try:
        amount = str(quantize_amount(row.service_amount, currency))
    except PayoutValidationError as exc:
        return f"service_amount: {exc.reason}"
    if Decimal(amount) <= 0:
        return "service_amount: must be greater than 0"
    service = services.get(currency, row.service, amount)
    if isinstance(service, str):
        return service
    if service.currency and service.currency.upper() != currency:
        return (
            f"service: {row.service} pays out in {service.currency.upper()}, not {currency}; batch rows "
            "need a same-currency service (service_amount is the amount sent)"
        )
    try:
        request = build_request(row, batch_id, batch_currency)
        validate_request(request, service)
    except PayoutValidationError as exc:
        problems = [("service_amount" if f == "amount" else f, r) for f, r in exc.problems]
        return _problems_text(PayoutValidationError(problems[0][0], problems[0][1], problems))
    return None


def check_batch(
    rows: Iterable[BatchRow], batch_id: str, batch_currency: str, lookup: ServiceLookup
) -> BatchCheck:
    """Check every row; rows sharing a ``reference_id`` are all rejected."""
    services = _CachedServices(lookup)
    result = BatchCheck()
    by_reference: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        result.total_rows += 1
        if row.reference_id:
            by_reference[row.reference_id].append(row.row)
        try:
            reason = check_row(row, batch_id, batch_currency.upper(), services)
        except LookupUnavailable as failed:
            raise failed.error from None
        except Exception as exc:  # one row never stops the check of the others
            log.warning("Row %d could not be checked (%s); it is rejected", row.row, type(exc).__name__)
            reason = f"row: could not be checked ({type(exc).__name__}); not sent"
        if reason:
            result.rejected[row.row] = reason
        else:
            result.valid_rows.append(row.row)
    for numbers in by_reference.values():
        if len(numbers) > 1:
            for number in numbers:
                others = ", ".join(str(n) for n in numbers if n != number)
                result.rejected[number] = f"reference_id: also used by row(s) {others} of this file"
    result.valid_rows = [n for n in result.valid_rows if n not in result.rejected]
    return result
