"""Operators, one per gateway endpoint. XCom values are JSON-native and hold no card data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import NEVER_EXPIRE, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.identity import mask_field_values
from payout_gateway.links import DASHBOARD_URL_XCOM_KEY, INVOICE_ID_XCOM_KEY, PayoutInvoiceDashboardLink
from payout_gateway.models import CreatePayoutInvoiceRequest, PrerequestService
from payout_gateway.money import format_amount
from payout_gateway.references import derive_reference_id
from payout_gateway.validation import choose_service, coerce_request, validate_request

if TYPE_CHECKING:
    from airflow.sdk import Context

#: ``task_state_store`` key where CreatePayoutInvoiceOperator keeps its invoice across retries.
STATE_KEY = "payout_invoice"


class _PayoutGatewayOperator(BaseOperator):
    """Common parts: the connection id, hook arguments and the hook."""

    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        payout_gateway_conn_id: str = PayoutGatewayHook.default_conn_name,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.payout_gateway_conn_id = payout_gateway_conn_id
        self.hook_params = dict(hook_params or {})

    @cached_property
    def hook(self) -> PayoutGatewayHook:
        return PayoutGatewayHook(self.payout_gateway_conn_id, **self.hook_params)

    def _push_dashboard_url(self, context: Context, invoice_id: str) -> None:
        context["ti"].xcom_push(key=INVOICE_ID_XCOM_KEY, value=invoice_id)  # the "Payout invoice" link
        if url := self.hook.dashboard_url(invoice_id):
            context["ti"].xcom_push(key=DASHBOARD_URL_XCOM_KEY, value=url)


class PayoutPrerequestOperator(_PayoutGatewayOperator):
    """Services offered for a currency and amount (``POST /payout-prerequest``).

    Returns the prerequest as JSON (amounts as text): ``{"currency", "amount", "services": {code:
    {...fields, limits...}}, ...}``. Pass it (or one service of it) to
    ``CreatePayoutInvoiceOperator(service_definition=...)``.
    """

    template_fields: Sequence[str] = ("currency", "amount", "payout_gateway_conn_id")

    def __init__(self, *, currency: str, amount: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.currency = currency
        self.amount = amount

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.hook.prerequest(self.currency, self.amount)
        self.log.info(
            "Services for %s %s: %s", result.currency, result.amount, ", ".join(result.services) or "none"
        )
        return result.model_dump(mode="json")


class ListPayoutServicesOperator(_PayoutGatewayOperator):
    """Every payout service of the account (``GET /payout-services``, all pages)."""

    template_fields: Sequence[str] = ("payout_gateway_conn_id",)

    def __init__(self, *, page_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_size = page_size

    def execute(self, context: Context) -> list[dict[str, Any]]:
        services = self.hook.list_services(page_size=self.page_size)
        self.log.info("%d payout services", len(services))
        return [s.model_dump(mode="json") for s in services]


class GetPayoutServiceOperator(_PayoutGatewayOperator):
    """One payout service by id (``GET /payout-services/{id}``)."""

    template_fields: Sequence[str] = ("service_id", "payout_gateway_conn_id")

    def __init__(self, *, service_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.get_service(self.service_id).model_dump(mode="json")


class CreatePayoutInvoiceOperator(_PayoutGatewayOperator):
    """Create one payout invoice, exactly once per logical payout; returns the invoice id.

    Before anything is sent, the request is checked against the service from a prerequest
    (``service_definition``, or a prerequest made here): fields, regexps, required fields, unknown
    fields, limits and the currency's decimals. A bad request fails with the field and the reason.

    **Reference.** ``reference_id`` when given; otherwise derived with
    :func:`~payout_gateway.references.derive_reference_id` from ``dag_id``, ``task_id``,
    ``map_index`` and the *logical payout*: ``payout_key`` when given (e.g. the upstream payout or
    order id: recommended), else the run's logical date, else its ``run_id``. Never the try
    number: every retry and every clear of the same run derives the same reference.

    **Retries.** The invoice id is stored in ``task_state_store`` right after the create returns;
    a later try of the same task instance re-reads that invoice instead of creating. Before its
    first POST the hook also looks the reference up (``lookup_first``), which covers a crash between
    the 201 and the store write. Either way the existing invoice is adopted only after the hook's
    identity checks (its keyed fingerprint, test_mode, amount, currency, service, fields); a
    different payout fails the task with ``PayoutReferenceConflictError``.

    Card, account and customer data are masked in rendered templates and logs and never reach
    XCom: the return value is the invoice id; ``reference_id`` and the dashboard URL are pushed
    under their own keys.
    """

    template_fields: Sequence[str] = (
        "service",
        "currency",
        "amount",
        "fields",
        "reference_id",
        "payout_key",
        "description",
        "customer",
        "metadata",
        "options",
        "callback_url",
        "test_mode",
        "service_definition",
        "payout_gateway_conn_id",
    )
    template_fields_renderers = {"fields": "json", "customer": "json", "metadata": "json", "options": "json"}
    operator_extra_links = (PayoutInvoiceDashboardLink(),)

    def __init__(
        self,
        *,
        service: str,
        currency: str,
        amount: Any,
        fields: Mapping[str, Any] | None = None,
        reference_id: str | None = None,
        payout_key: str | None = None,
        description: str | None = None,
        customer: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
        test_mode: bool | None = None,
        service_definition: Mapping[str, Any] | None = None,
        validate: bool = True,
        lookup_first: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.currency = currency
        self.amount = amount
        self.fields = fields
        self.reference_id = reference_id
        self.payout_key = payout_key
        self.description = description
        self.customer = customer
        self.metadata = metadata
        self.options = options
        self.callback_url = callback_url
        self.test_mode = test_mode
        self.service_definition = service_definition
        self.validate = validate
        self.lookup_first = lookup_first

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render, then mask field values so they stay out of rendered templates and logs."""
        super().render_template_fields(context, jinja_env)
        mask_field_values(self.fields)

    def derive_reference(self, context: Context) -> str:
        """The reference of this task's logical payout (see the class docstring)."""
        if self.reference_id:
            return str(self.reference_id)
        ti = context["ti"]
        dag_run = context["dag_run"]
        map_index = getattr(ti, "map_index", None)
        if self.payout_key not in (None, ""):
            identity = f"payout_key={self.payout_key}"
        elif getattr(dag_run, "logical_date", None) is not None:
            identity = f"logical_date={dag_run.logical_date.isoformat()}"
        else:
            identity = f"run_id={dag_run.run_id}"
        return derive_reference_id(
            ti.dag_id, ti.task_id, str(-1 if map_index is None else map_index), identity
        )

    def build_request(self, reference_id: str) -> CreatePayoutInvoiceRequest:
        """The request model (raises :class:`PayoutValidationError` naming the bad field)."""
        values: dict[str, Any] = {
            "service": self.service,
            "currency": self.currency,
            "amount": self.amount,
            "reference_id": reference_id,
            "fields": dict(self.fields or {}),
            "description": self.description,
            "customer": self.customer,
            "metadata": self.metadata,
            "options": self.options,
            "callback_url": self.callback_url,
            "test_mode": self.test_mode,
        }
        return coerce_request({k: v for k, v in values.items() if v is not None})

    def service_for(self, request: CreatePayoutInvoiceRequest) -> PrerequestService:
        """The service to check against: from ``service_definition`` or a fresh prerequest."""
        if self.service_definition is not None:
            return choose_service(request, self.service_definition)
        return choose_service(request, self.hook.prerequest(request.currency, request.amount))

    def execute(self, context: Context) -> str:
        reference_id = self.derive_reference(context)
        request = self.build_request(reference_id)
        if self.validate:
            validate_request(request, self.service_for(request))
        store = context.get("task_state_store")
        stored = store.get(STATE_KEY) if store is not None else None
        if stored:
            invoice = self._reattach(request, stored)
        else:
            invoice = self.hook.create_invoice(request, lookup_first=self.lookup_first)
            if store is not None:
                store.set(
                    STATE_KEY,
                    {"invoice_id": invoice.id, "reference_id": reference_id},
                    retention=NEVER_EXPIRE,
                )
        self._push_dashboard_url(context, invoice.id)
        context["ti"].xcom_push(key="reference_id", value=reference_id)
        self.log.info(
            "Invoice %s for reference_id=%s: status %s, %s %s",
            invoice.id,
            reference_id,
            invoice.status.value,
            format_amount(invoice.amount, invoice.currency),
            invoice.currency,
        )
        return invoice.id

    def _reattach(self, request: CreatePayoutInvoiceRequest, stored: Mapping[str, Any]) -> Any:
        if stored.get("reference_id") != request.reference_id:
            raise AirflowFailException(
                f"An earlier try of this task created invoice {stored.get('invoice_id')} for reference_id "
                f"{stored.get('reference_id')}, but this try derives {request.reference_id}: refusing to "
                "create a second payout. Reconcile, then clear the task state if a new payout is wanted."
            )
        invoice = self.hook.adopt_invoice(
            request,
            self.hook.get_invoice(str(stored["invoice_id"])),
            "created by an earlier try of this task",
        )
        self.log.info("Re-attached to invoice %s created by an earlier try (no new invoice)", invoice.id)
        return invoice


class ProcessPayoutInvoiceOperator(_PayoutGatewayOperator):
    """Process an invoice (``POST /payout-invoices/{id}/process``) only if it is still ``created``.

    Returns the invoice summary (id, reference_id, status, resolution, amounts as text).
    """

    template_fields: Sequence[str] = ("invoice_id", "payout_gateway_conn_id")
    operator_extra_links = (PayoutInvoiceDashboardLink(),)

    def __init__(self, *, invoice_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.invoice_id = invoice_id

    def execute(self, context: Context) -> dict[str, Any]:
        invoice = self.hook.process_invoice(str(self.invoice_id))
        self._push_dashboard_url(context, invoice.id)
        return invoice.summary()


class GetPayoutInvoiceOperator(_PayoutGatewayOperator):
    """Read an invoice by id or by reference (``public=True`` uses the public-key read by id).

    Returns the invoice summary; None when looked up by reference and absent.
    """

    template_fields: Sequence[str] = ("invoice_id", "reference_id", "payout_gateway_conn_id")
    operator_extra_links = (PayoutInvoiceDashboardLink(),)

    def __init__(
        self,
        *,
        invoice_id: str | None = None,
        reference_id: str | None = None,
        public: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (invoice_id is None) == (reference_id is None):
            raise ValueError("GetPayoutInvoiceOperator needs exactly one of invoice_id or reference_id")
        if public and invoice_id is None:
            raise ValueError("public=True reads by invoice_id")
        self.invoice_id = invoice_id
        self.reference_id = reference_id
        self.public = public

    def execute(self, context: Context) -> dict[str, Any] | None:
        if self.invoice_id is not None:
            invoice_id = str(self.invoice_id)
            invoice = (
                self.hook.get_public_invoice(invoice_id) if self.public else self.hook.get_invoice(invoice_id)
            )
        else:
            invoice = self.hook.find_invoice_by_reference(str(self.reference_id))
            if invoice is None:
                self.log.info("No invoice for reference_id=%s", self.reference_id)
                return None
        self._push_dashboard_url(context, invoice.id)
        return invoice.summary()


class ListPayoutInvoicesOperator(_PayoutGatewayOperator):
    """Invoices of the account, walking the cursor (``GET /payout-invoices``).

    ``filters`` become ``filter[key]=value``; ``max_items`` bounds the XCom. Returns summaries.
    """

    template_fields: Sequence[str] = ("filters", "payout_gateway_conn_id")

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_items: int | None = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.page_size = page_size
        self.max_items = max_items

    def execute(self, context: Context) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        for invoice in self.hook.list_invoices(filters=self.filters, page_size=self.page_size):
            if self.max_items is not None and len(summaries) >= self.max_items:
                self.log.warning("Stopped at max_items=%d invoices", self.max_items)
                break
            summaries.append(invoice.summary())
        self.log.info("%d invoices", len(summaries))
        return summaries
