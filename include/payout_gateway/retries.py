"""Which failures are transient, how long to wait before the next try, and how to name outcomes.

Reads (GET, and the side-effect-free prerequest) retry on these failures. A POST that ends in one
of them has an *unknown* outcome and is resolved by reading the gateway, never retried blindly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import requests
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from payout_gateway.exceptions import (
    PayoutConflictError,
    PayoutGatewayApiError,
    PayoutGatewayError,
    PayoutRateLimitError,
    PayoutServerError,
)


class PayoutMalformedResponseError(PayoutGatewayError):
    """A success status with a body that is not the expected JSON (a cut-off answer)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
    PayoutServerError,
    PayoutRateLimitError,
    PayoutMalformedResponseError,
)


def is_transient(exc: BaseException | None) -> bool:
    """Connection errors, timeouts, resets, 5xx, 429 and cut-off answers."""
    return isinstance(exc, TRANSIENT_ERRORS)


def outcome_class(exc: BaseException | None, status_code: int | None = None) -> str:
    """A short, value-free name for how a request ended (for logs and errors)."""
    if exc is None:
        return "created" if status_code == 201 else "ok"
    if isinstance(exc, PayoutConflictError):
        return "conflict"
    if isinstance(exc, PayoutRateLimitError):
        return "rate_limited"
    if isinstance(exc, PayoutServerError):
        return "server_error"
    if isinstance(exc, PayoutGatewayApiError):
        return "rejected"
    if isinstance(exc, requests.Timeout | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return "connection_error"
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return "connection_error"
    if isinstance(exc, PayoutMalformedResponseError):
        return "malformed_response"
    return type(exc).__name__


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WaitRetryAfterOrBackoff:
    """Tenacity wait: honour ``Retry-After`` (capped, plus jitter), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return self.for_exception(exc, retry_state.attempt_number, retry_state)

    def for_exception(
        self, exc: BaseException | None, attempt: int, retry_state: RetryCallState | None = None
    ) -> float:
        """The wait after ``attempt`` failed with ``exc``."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.maximum) + random.uniform(0, self.initial)
        if retry_state is not None:
            return self._backoff(retry_state)
        delay = min(self.initial * 2 ** (attempt - 1), self.maximum)
        return delay + random.uniform(0, self.initial)


def retry_kwargs(
    *,
    attempts: int,
    wait: WaitRetryAfterOrBackoff,
    before_sleep: Callable[[RetryCallState], Any],
) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` for a read."""
    return {
        "retry": retry_if_exception(is_transient),
        "stop": stop_after_attempt(max(1, attempts)),
        "wait": wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }
