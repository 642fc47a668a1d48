"""``CreatePayoutFromParamsOperator``: the provider's create operator, fed by the trigger form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from payout_gateway.identity import mask_field_values
from payout_gateway.operators import CreatePayoutInvoiceOperator

from payout_jobs.single_payout import amount_text, payout_reference, required_text

if TYPE_CHECKING:
    from airflow.sdk import Context


class CreatePayoutFromParamsOperator(CreatePayoutInvoiceOperator):
    """Create the invoice described by the run's params (``service``, ``currency``, ``amount``,
    ``fields``, ``description``, ``customer``, ``test_mode``, optional ``reference_id``).

    The values are taken from ``context["params"]`` *after* template rendering, as data: a field
    value that happens to contain ``{{ ... }}`` is sent as typed, never rendered (rendering user
    input could leak secrets from the template context). The amount must be text (a Decimal is made
    from it by the amount grammar; a JSON number is refused). The reference is the user's, or the
    one derived from the run and the payout (:func:`payout_jobs.single_payout.payout_reference`).
    Everything else (validation against the service, idempotent create, re-attach on retry,
    ids-only XCom) is the provider's operator.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(service="", currency="", amount="", **kwargs)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        params = context["params"]
        self.service = required_text(params, "service")
        self.currency = required_text(params, "currency")
        self.amount = amount_text(params)  # text only: a JSON number is refused, never made a float
        self.fields = dict(params.get("fields") or {})
        self.description = params.get("description") or None
        self.customer = params.get("customer") or None
        self.test_mode = params.get("test_mode")
        self.reference_id = payout_reference(params, context["dag"].dag_id, context["run_id"])
        mask_field_values(self.fields)
