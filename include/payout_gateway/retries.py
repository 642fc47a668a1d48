"""Which failures are transient, how long to wait before the next try, and how to name outcomes.

Reads (GET, and the side-effect-free prerequest) retry on these failures. A POST that ends in one
of them has an *unknown* outcome and is resolved by reading the gateway, never retried blindly.

Time is a shared budget: a 429 with ``Retry-After`` closes the connection's
:class:`RateLimitGate` (one per connection and process) until that instant, and every request of
the connection, from any thread or coroutine, waits there before it is sent. Concurrent 429s
therefore share one wait instead of adding theirs up. A caller's deadline (a chunk's time budget)
bounds every wait: a request that could only be sent after it raises :class:`PayoutDeadlineError`
without being sent.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import requests
from tenacity import RetryCallState, retry_if_exception, wait_exponential_jitter

from payout_gateway.exceptions import (
    PayoutConflictError,
    PayoutGatewayApiError,
    PayoutGatewayError,
    PayoutRateLimitError,
    PayoutServerError,
)


class PayoutMalformedResponseError(PayoutGatewayError):
    """A success status with a body that is not the expected JSON (a cut-off answer)."""


class PayoutDeadlineError(PayoutGatewayError):
    """The caller's time budget ran out before the request could be sent: nothing was sent."""


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
    if isinstance(exc, PayoutDeadlineError):
        return "not_sent:deadline"
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


class RateLimitGate:
    """One shared "not before" instant for every request of a connection in this process.

    :meth:`hold` (a 429 said ``Retry-After: S``) moves the instant to now + S, never back;
    :meth:`wait` / :meth:`await_open` block until it has passed. Counters (for logs and tests):
    ``rate_limited`` (429s seen), ``closed_seconds`` (total time the gate was closed: overlapping
    429s count once), ``waits``, ``waited_seconds`` and ``longest_wait`` (of the requests that
    waited).
    """

    def __init__(self, name: str, jitter: float = 0.0) -> None:
        self.name = name
        self.jitter = jitter
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.reset_counters()

    def reset(self) -> None:
        """Open the gate and zero the counters (between tests)."""
        with self._lock:
            self._not_before = 0.0
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero the counters (the gate itself stays as it is)."""
        with self._lock:
            self.rate_limited = 0
            self.closed_seconds = 0.0
            self.waits = 0
            self.waited_seconds = 0.0
            self.longest_wait = 0.0

    def hold(self, seconds: float) -> float:
        """Close the gate for ``seconds`` from now (unless it is already closed for longer).
        Returns how long it stays closed from now."""
        now = time.monotonic()
        with self._lock:
            self.rate_limited += 1
            until = now + max(0.0, seconds)
            if until > self._not_before:
                self.closed_seconds += until - max(now, self._not_before)
                self._not_before = until
            return self._not_before - now

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self._not_before - time.monotonic())

    def _delay(self, deadline: float | None) -> float:
        now = time.monotonic()
        with self._lock:
            delay = self._not_before - now
            if delay <= 0:
                return 0.0
            if deadline is not None and self._not_before > deadline:
                raise PayoutDeadlineError(
                    f"rate limited: the gateway asked to wait {delay:.1f} s, beyond this job's time budget"
                )
            # No jitter by default: the requests held back (at most the caller's concurrency) leave
            # together at the instant, before any 429 among them can close the gate again.
            delay += random.uniform(0, self.jitter)
            self.waits += 1
            self.waited_seconds += delay
            self.longest_wait = max(self.longest_wait, delay)
            return delay

    def wait(self, deadline: float | None = None) -> float:
        """Sleep until the gate is open; :class:`PayoutDeadlineError` (at once, without sleeping)
        if it opens only after ``deadline`` (``time.monotonic()``). Returns the seconds slept."""
        slept = 0.0
        while (delay := self._delay(deadline)) > 0:
            time.sleep(delay)
            slept += delay
        return slept

    async def await_open(self, deadline: float | None = None) -> float:
        """:meth:`wait` for coroutines."""
        slept = 0.0
        while (delay := self._delay(deadline)) > 0:
            await asyncio.sleep(delay)
            slept += delay
        return slept


_GATES: dict[str, RateLimitGate] = {}
_GATES_LOCK = threading.Lock()


def rate_limit_gate(connection_id: str) -> RateLimitGate:
    """The process-wide gate of a connection (made on first use)."""
    with _GATES_LOCK:
        gate = _GATES.get(connection_id)
        if gate is None:
            gate = _GATES[connection_id] = RateLimitGate(connection_id)
        return gate


def left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (``time.monotonic()``; None: no deadline), at least 0."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class WaitRetryAfterOrBackoff:
    """Tenacity wait: honour ``Retry-After`` (capped, plus jitter), else exponential backoff with jitter.

    With a ``gate``, a rate limit waits at the gate instead (where the request waits anyway
    before it is sent), so this returns 0 for it. With a ``deadline``, no wait ends after it.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        gate: RateLimitGate | None = None,
        deadline: float | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.gate = gate
        self.deadline = deadline
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and self.gate is not None:
            wait = 0.0
        elif retry_after is not None:
            wait = min(float(retry_after), self.maximum) + random.uniform(0, self.initial)
        else:
            wait = self._backoff(retry_state)
        remaining = left(self.deadline)
        return wait if remaining is None else min(wait, remaining)


class StopReading:
    """Tenacity stop for one read: after ``attempts`` failures other than a rate limit; a rate
    limit with ``Retry-After`` instead spends its wait (capped at ``max_wait``) from
    ``rate_limit_seconds`` (None: it counts as a failure); and never past ``deadline``."""

    def __init__(
        self,
        attempts: int,
        rate_limit_seconds: float | None = None,
        deadline: float | None = None,
        max_wait: float | None = None,
    ) -> None:
        self.attempts = max(1, attempts)
        self.rate_limit_seconds = rate_limit_seconds
        self.deadline = deadline
        self.max_wait = max_wait
        self.failures = 0
        self.rate_limited_for = 0.0

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, PayoutRateLimitError) and retry_after is not None and self.rate_limit_seconds:
            wait = float(retry_after) if self.max_wait is None else min(float(retry_after), self.max_wait)
            self.rate_limited_for += wait
            if self.rate_limited_for >= self.rate_limit_seconds:
                return True
        else:
            self.failures += 1
            if self.failures >= self.attempts:
                return True
        return self.deadline is not None and time.monotonic() >= self.deadline


def retry_kwargs(
    *,
    attempts: int,
    wait: WaitRetryAfterOrBackoff,
    before_sleep: Callable[[RetryCallState], Any],
    rate_limit_seconds: float | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` for a read (see :class:`StopReading`)."""
    return {
        "retry": retry_if_exception(is_transient),
        "stop": StopReading(attempts, rate_limit_seconds, deadline, wait.maximum),
        "wait": wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }
