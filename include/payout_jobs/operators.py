"""``CreatePayoutFromParamsOperator``: the provider's create operator, fed by the trigger form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from payout_gateway.identity import mask_field_values
from payout_gateway.operators import CreatePayoutInvoiceOperator

from payout_jobs.single_payout import attributes_from_params

if TYPE_CHECKING:
    from airflow.sdk import Context


class CreatePayoutFromParamsOperator(CreatePayoutInvoiceOperator):
    """Create the invoice described by the run's params (``service``, ``currency``, ``amount``,
    ``fields``, ``description``, ``customer``, ``test_mode``), as the validate task checked it.

    :param validated: the validate task's result (templated, e.g. its XComArg):
        ``reference_id`` (computed once, by that task) and ``service_definition`` (the chosen
        service from the run's one prerequest: the request is checked against it, no second
        prerequest).

    The values are taken from ``context["params"]`` *after* template rendering, as data: a field
    value that happens to contain ``{{ ... }}`` is sent as typed, never rendered (rendering user
    input could leak secrets from the template context); they are read by the same function as the
    validate task's (:func:`payout_jobs.single_payout.attributes_from_params`). Everything else
    (idempotent create, re-attach on retry, ids-only XCom) is the provider's operator.
    """

    template_fields: Sequence[str] = (*CreatePayoutInvoiceOperator.template_fields, "validated")

    def __init__(self, *, validated: Any, **kwargs: Any) -> None:
        super().__init__(service="", currency="", amount="", **kwargs)
        self.validated = validated

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        attributes = attributes_from_params(context["params"], self.validated["reference_id"])
        mask_field_values(attributes["fields"])
        self.service = attributes["service"]
        self.currency = attributes["currency"]
        self.amount = attributes["amount"]  # text only: a JSON number is refused, never made a float
        self.fields = attributes["fields"]
        self.description = attributes["description"]
        self.customer = attributes["customer"]
        self.test_mode = attributes["test_mode"]
        self.reference_id = attributes["reference_id"]
        self.service_definition = self.validated["service_definition"]
