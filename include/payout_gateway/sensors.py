"""``PayoutInvoiceSensor``: wait until payout invoices are final (deferrable by default)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException

from payout_gateway.events import EVENT_STATUSES, error_event, is_settled, settled_event
from payout_gateway.exceptions import (
    PayoutGatewayError,
    PayoutInvoiceFailedError,
    PayoutNeedsPersonError,
    PayoutWaitTimeoutError,
)
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.links import DASHBOARD_URL_XCOM_KEY, INVOICE_ID_XCOM_KEY, PayoutInvoiceDashboardLink
from payout_gateway.models import PayoutInvoice
from payout_gateway.retries import PayoutDeadlineError, is_transient, outcome_class
from payout_gateway.triggers import PayoutInvoiceTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


def default_deferrable() -> bool:
    """Whether payout sensors defer by default.

    True when Airflow's ``[operators] default_deferrable`` is on; otherwise
    ``[payout_gateway] default_deferrable`` (default True). Airflow ships ``default_deferrable =
    False``, which cannot tell "the user chose poke" from "nobody set it".
    """
    if conf.getboolean("operators", "default_deferrable", fallback=False):
        return True
    return conf.getboolean("payout_gateway", "default_deferrable", fallback=True)


def normalize_invoice_ids(value: str | Sequence[str | Mapping[str, Any]] | None) -> list[str]:
    """Invoice ids, each once, from one id or a list of ids or of invoice summaries (``{"id": ...}``,
    as ``sent["invoice_ids"]`` or this sensor's own result). A text that looks like a list (a
    template rendered to text) is refused: pass the XComArg itself, or render natively."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            raise PayoutGatewayError(
                "invoice_ids is the text of a list: pass the XComArg (e.g. task.output) or set the "
                "DAG's render_template_as_native_obj=True"
            )
        return [text] if text else []
    ids = (item.get("id") if isinstance(item, Mapping) else item for item in value)
    return list(dict.fromkeys(str(i) for i in ids if i))


class PayoutInvoiceSensor(BaseSensorOperator):
    """Wait until one or many payout invoices are final (or wait for a person).

    :param invoice_id: one invoice id (templated, e.g. ``{{ ti.xcom_pull('create') }}``).
    :param invoice_ids: many ids, or invoice summaries with an ``id`` (templated).
    :param deferrable: wait in the triggerer (default True; see :func:`default_deferrable`);
        False pokes with the sync hook.
    :param fail_on_payout_failure: True (default): a failed payout fails the task without retry
        and one waiting for a person fails it too. False: return the invoice list (XCom) as soon as
        every invoice is final or waits for a person, so one failed payout does not fail a chunk.
    :param poll_backoff: factor applied to the poll interval after each round (deferrable mode).
    :param max_poll_interval: cap on the poll interval in seconds (deferrable mode).
    :param max_consecutive_failures: failed poll rounds in a row before the wait errors out.
    :param concurrency: reads in flight at once in the trigger.
    :param hook_params: keyword arguments for :class:`PayoutGatewayHook`, passed to the trigger too.

    Returns (XCom) the list of invoice summaries. Outcomes: every invoice processed or partially
    processed -> success (partial ones logged as warnings with the processed amount); a failure ->
    :class:`PayoutInvoiceFailedError`; a person needed -> :class:`PayoutNeedsPersonError`; the wait
    ran out -> :class:`PayoutWaitTimeoutError` (a retry waits again); the gateway unreadable ->
    :class:`PayoutGatewayError`. Nothing else counts as success.
    """

    template_fields: Sequence[str] = ("invoice_id", "invoice_ids", "payout_gateway_conn_id")
    operator_extra_links = (PayoutInvoiceDashboardLink(),)
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        invoice_id: str | None = None,
        invoice_ids: Any = None,
        payout_gateway_conn_id: str = PayoutGatewayHook.default_conn_name,
        deferrable: bool | None = None,
        fail_on_payout_failure: bool = True,
        poll_backoff: float = 1.5,
        max_poll_interval: float = 300.0,
        max_consecutive_failures: int = 5,
        concurrency: int = 10,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if invoice_id is None and invoice_ids is None:
            raise ValueError("PayoutInvoiceSensor needs invoice_id or invoice_ids")
        self.invoice_id = invoice_id
        self.invoice_ids = invoice_ids
        self.payout_gateway_conn_id = payout_gateway_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.fail_on_payout_failure = fail_on_payout_failure
        self.poll_backoff = poll_backoff
        self.max_poll_interval = max_poll_interval
        self.max_consecutive_failures = max_consecutive_failures
        self.concurrency = concurrency
        self.hook_params = dict(hook_params or {})

    @cached_property
    def hook(self) -> PayoutGatewayHook:
        return PayoutGatewayHook(self.payout_gateway_conn_id, **self.hook_params)

    def _ids(self) -> list[str]:
        return normalize_invoice_ids([self.invoice_id] if self.invoice_id else self.invoice_ids)

    def _read_all(self, ids: Sequence[str]) -> dict[str, PayoutInvoice]:
        return {invoice_id: self.hook.get_invoice(invoice_id) for invoice_id in ids}

    def _read_before_waiting(self, ids: Sequence[str]) -> dict[str, PayoutInvoice]:
        """Read each invoice once (all settled: no wait at all). Stops at the first 429 or
        transient failure: the wait itself (concurrent reads, ``Retry-After`` honoured) reads the
        rest, so a rate-limited gateway does not get the reads one after the other here."""
        gate = self.hook.rate_limit_gate
        seen = gate.rate_limited
        latest: dict[str, PayoutInvoice] = {}
        for invoice_id in ids:
            try:
                latest[invoice_id] = self.hook.get_invoice(invoice_id)
            except Exception as exc:
                if not is_transient(exc) and not isinstance(exc, PayoutDeadlineError):
                    raise
                self.log.warning("Reading the invoices failed (%s); waiting for them", outcome_class(exc))
                break
            if gate.rate_limited != seen:
                self.log.info("The gateway rate-limits reads: waiting for the invoices instead")
                break
        return latest

    def _push_link(self, context: Context, ids: Sequence[str]) -> None:
        if len(ids) == 1:
            context["ti"].xcom_push(key=INVOICE_ID_XCOM_KEY, value=ids[0])
        if len(ids) == 1 and (url := self.hook.dashboard_url(ids[0])):
            context["ti"].xcom_push(key=DASHBOARD_URL_XCOM_KEY, value=url)

    def execute(self, context: Context) -> Any:
        ids = self._ids()
        if not ids:
            self.log.info("No invoices to wait for")
            return []
        self._push_link(context, ids)
        latest = self._read_before_waiting(ids)
        if len(latest) == len(ids) and all(is_settled(i) for i in latest.values()):
            return self.complete(settled_event(ids, latest))
        if not self.deferrable:
            return super().execute(context)
        self.log.info(
            "Deferring: waiting for %d invoice(s)",
            len(ids) - sum(is_settled(i) for i in latest.values()),
        )
        self.defer(
            trigger=PayoutInvoiceTrigger(
                invoice_ids=ids,
                payout_gateway_conn_id=self.payout_gateway_conn_id,
                poll_interval=self.poke_interval,
                backoff=self.poll_backoff,
                max_poll_interval=self.max_poll_interval,
                end_time=time.time() + self.timeout,
                max_consecutive_failures=self.max_consecutive_failures,
                concurrency=self.concurrency,
                hook_params=self.hook_params,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 60),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        ids = self._ids()
        try:
            latest = self._read_all(ids)
        except Exception as exc:
            if is_transient(exc):
                self.log.warning("Reading the invoices failed (%s); poking again later", outcome_class(exc))
                return False
            return PokeReturnValue(is_done=True, xcom_value=self.complete(error_event(str(exc), ids, {})))
        if not all(is_settled(i) for i in latest.values()):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.complete(settled_event(ids, latest)))

    def _dashboard_urls(self, invoices: Sequence[dict[str, Any]]) -> list[str]:
        try:
            return [u for i in invoices if i.get("id") and (u := self.hook.dashboard_url(str(i["id"])))]
        except Exception:  # the URL is a convenience: never hide the real outcome behind it
            self.log.warning("Could not build dashboard URLs", exc_info=True)
            return []

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Map the trigger's event: each status explicitly; nothing falls through to success."""
        return self.complete(event)

    def complete(self, event: Any) -> list[dict[str, Any]]:
        """Return the invoice list for a success (or a settled wait with ``fail_on_payout_failure=False``),
        raise for everything else."""
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise AirflowException(f"Unexpected payout wait event: {event!r}")
        status, message = event["status"], str(event.get("message", ""))
        invoices: list[dict[str, Any]] = list(event.get("invoices") or [])
        for invoice in invoices:
            if invoice.get("status") == "partially_processed":
                self.log.warning(
                    "Invoice %s (reference_id %s) partially processed: %s of %s %s",
                    invoice.get("id"),
                    invoice.get("reference_id"),
                    invoice.get("processed_amount"),
                    invoice.get("amount"),
                    invoice.get("currency"),
                )
        if status == "success":
            self.log.info("%s", message)
            return invoices
        if status in ("failed", "needs_person") and not self.fail_on_payout_failure:
            self.log.warning("%s (not failing: fail_on_payout_failure=False)", message)
            return invoices
        if status == "failed":
            raise PayoutInvoiceFailedError(message)
        if status == "needs_person":
            urls = self._dashboard_urls(
                [i for i in invoices if i.get("outcome") == "needs_person"] or invoices
            )
            where = f" ({', '.join(urls[:5])})" if urls else ""
            raise PayoutNeedsPersonError(
                f"{message}. A person must review it in the gateway dashboard{where}."
            )
        if status == "timeout":
            raise PayoutWaitTimeoutError(
                f"{message}. The payouts were left as they are; a retry waits again."
            )
        if status == "error":
            raise PayoutGatewayError(message)
        raise AirflowException(f"Unhandled payout wait event status {status!r}")  # pragma: no cover
