"""``PayoutInvoiceTrigger``: waits (GET only) until invoices are final or need a person."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from payout_gateway.callbacks import CallbackStore
from payout_gateway.events import error_event, is_settled, settled_event, timeout_event
from payout_gateway.exceptions import PayoutRateLimitError, PayoutServerError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.models import PayoutInvoice
from payout_gateway.redaction import redact_text
from payout_gateway.retries import PayoutDeadlineError, is_transient, outcome_class

#: Answers that mean "the gateway is there but busy": the wait goes on (until ``end_time``).
KEEP_WAITING = (PayoutRateLimitError, PayoutServerError)
#: How often a sleeping wait looks for a callback hint (a local SQLite read).
HINT_CHECK_SECONDS = 0.5


class PayoutInvoiceTrigger(BaseTrigger):
    """Poll invoices until each is final or waits for a person; yield exactly one event.

    Only reads, so it is safe to run again after a triggerer restart. Each round reads the
    not-yet-settled invoices with at most ``concurrency`` requests at a time, then sleeps
    ``poll_interval`` (multiplied by ``backoff`` after each round, capped at ``max_poll_interval``).
    With an ``end_time`` (the sensor always sets one), a 429 or 5xx read (after the hook's own
    retries) keeps the wait going: ``Retry-After`` is honoured through the connection's shared
    rate-limit gate, and nothing lasts past ``end_time`` (then a ``timeout`` event, retryable).
    Other transient failures (connection refused, timeouts), and every transient failure of a
    wait without an end, count toward ``max_consecutive_failures`` (its only bound); a round
    without them resets the count. A signed gateway callback for a pending invoice (noted by the
    Payouts view's ``/payouts/callbacks``, see :mod:`payout_gateway.callbacks`) ends the sleep: the
    invoices are read at once.

    :param invoice_ids: the invoices to wait for.
    :param end_time: epoch seconds after which a ``timeout`` event is yielded (None: no limit).
    :param hook_params: keyword arguments for :class:`PayoutGatewayHook` (timeouts, retries).
    """

    def __init__(
        self,
        invoice_ids: Sequence[str],
        payout_gateway_conn_id: str = PayoutGatewayHook.default_conn_name,
        poll_interval: float = 10.0,
        backoff: float = 1.5,
        max_poll_interval: float = 300.0,
        end_time: float | None = None,
        max_consecutive_failures: int = 5,
        concurrency: int = 10,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.invoice_ids = list(dict.fromkeys(invoice_ids))
        self.payout_gateway_conn_id = payout_gateway_conn_id
        self.poll_interval = poll_interval
        self.backoff = backoff
        self.max_poll_interval = max_poll_interval
        self.end_time = end_time
        self.max_consecutive_failures = max_consecutive_failures
        self.concurrency = concurrency
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "invoice_ids": self.invoice_ids,
                "payout_gateway_conn_id": self.payout_gateway_conn_id,
                "poll_interval": self.poll_interval,
                "backoff": self.backoff,
                "max_poll_interval": self.max_poll_interval,
                "end_time": self.end_time,
                "max_consecutive_failures": self.max_consecutive_failures,
                "concurrency": self.concurrency,
                "hook_params": self.hook_params,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        """Poll until done; return the one event payload."""
        if not self.invoice_ids:
            return settled_event(self.invoice_ids, {})
        latest: dict[str, PayoutInvoice] = {}
        hook = PayoutGatewayHook(self.payout_gateway_conn_id, **self.hook_params)
        if self.end_time is not None:  # no read or rate-limit wait goes past the end of the wait
            hook.deadline = time.monotonic() + max(0.0, self.end_time - time.time())
        try:
            async with hook:
                return await self._poll(hook, latest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken connection definition and the like: one error event
            return error_event(redact_text(f"Waiting for payouts failed: {exc}"), self.invoice_ids, latest)

    async def _poll(self, hook: PayoutGatewayHook, latest: dict[str, PayoutInvoice]) -> dict[str, Any]:
        """Read rounds until every invoice is settled, the wait ends, or reading fails for good."""
        ids = self.invoice_ids
        failures = 0
        interval = self.poll_interval
        semaphore = asyncio.Semaphore(max(1, self.concurrency))

        async def read(invoice_id: str) -> PayoutInvoice:
            async with semaphore:
                return await hook.aget_invoice(invoice_id)

        while True:
            round_started = time.time()
            pending = [i for i in ids if i not in latest or not is_settled(latest[i])]
            results = await asyncio.gather(*(read(i) for i in pending), return_exceptions=True)
            transient, busy, final = self._sort_round(dict(zip(pending, results, strict=True)), latest)
            if final is not None:
                return final
            failures = failures + 1 if transient else 0
            if transient:
                self.log.warning(
                    "Poll round failed for %d invoice(s) (%s); consecutive failed rounds %d/%d",
                    len(transient),
                    outcome_class(transient[0]),
                    failures,
                    self.max_consecutive_failures,
                )
                if failures >= self.max_consecutive_failures:
                    return error_event(
                        f"Gateway unreadable for {failures} consecutive poll round(s) "
                        f"(last: {outcome_class(transient[0])})",
                        ids,
                        latest,
                    )
            if busy:
                self.log.warning(
                    "Gateway busy for %d invoice(s) (%s): still waiting", len(busy), outcome_class(busy[0])
                )
            if all(i in latest and is_settled(latest[i]) for i in ids):
                return settled_event(ids, latest)
            now = time.time()
            if self.end_time is not None and now >= self.end_time:
                return timeout_event(ids, latest)
            sleep = interval if self.end_time is None else min(interval, max(0.0, self.end_time - now))
            if await self._sleep_unless_hinted(pending, sleep, round_started):
                interval = self.poll_interval  # a callback came: read now, then poll briskly
            else:
                interval = min(interval * self.backoff, self.max_poll_interval)

    def _sort_round(
        self, results: dict[str, PayoutInvoice | BaseException], latest: dict[str, PayoutInvoice]
    ) -> tuple[list[BaseException], list[BaseException], dict[str, Any] | None]:
        """Record a round's invoices in ``latest``; return its (transient, busy) failures, or the
        final event when one read decides the wait (an error, the end of the time budget)."""
        transient: list[BaseException] = []
        busy: list[BaseException] = []
        for invoice_id, result in results.items():
            if isinstance(result, PayoutInvoice):
                before = latest.get(invoice_id)
                if result.status.value == "unknown" and (before is None or before.status != result.status):
                    self.log.warning("Invoice %s has an unknown status: still waiting", invoice_id)
                latest[invoice_id] = result
            elif isinstance(result, asyncio.CancelledError):
                raise result
            elif isinstance(result, PayoutDeadlineError):
                return transient, busy, timeout_event(self.invoice_ids, latest)
            elif isinstance(result, KEEP_WAITING) and self.end_time is not None:
                busy.append(result)
            elif is_transient(result):
                transient.append(result)
            else:
                message = redact_text(f"Reading invoice {invoice_id} failed: {result}")
                return transient, busy, error_event(message, self.invoice_ids, latest)
        return transient, busy, None

    async def _sleep_unless_hinted(self, invoice_ids: Sequence[str], seconds: float, since: float) -> bool:
        """Sleep ``seconds``, or less when a signed callback for one of ``invoice_ids`` arrived
        after ``since`` (the start of the round's reads; see :mod:`payout_gateway.callbacks`); True
        when one did. The hint only ends the sleep: what counts is the read that follows."""
        store = CallbackStore()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(HINT_CHECK_SECONDS, left))
            try:
                if await asyncio.to_thread(store.hinted_since, invoice_ids, since):
                    self.log.info("A gateway callback arrived for a payout being waited for: reading now")
                    return True
            except Exception as exc:  # the store is an optimisation: polling goes on without it
                self.log.debug("Callback store unreadable (%s): polling on", type(exc).__name__)
        return False
