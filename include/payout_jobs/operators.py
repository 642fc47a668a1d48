"""The jobs' operators: ``CreatePayoutFromParamsOperator`` (the provider's create operator, fed by
the trigger form) and ``PayoutApprovalOperator`` (four-eyes approval before anything is sent)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import TriggerRule
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.exceptions import AirflowFailException
from payout_gateway.identity import mask_field_values
from payout_gateway.operators import CreatePayoutInvoiceOperator

from payout_jobs import approval
from payout_jobs.single_payout import attributes_from_params

if TYPE_CHECKING:
    from airflow.sdk import Context


class CreatePayoutFromParamsOperator(CreatePayoutInvoiceOperator):
    """Create the invoice described by the run's params (``service``, ``currency``, ``amount``,
    ``fields``, ``description``, ``customer``, ``test_mode``), as the validate task checked it.

    :param validated: the validate task's result (templated, e.g. its XComArg):
        ``reference_id`` (computed once, by that task) and ``service_definition`` (the chosen
        service from the run's one prerequest; no second prerequest). The validate task checked
        these very params against that service, so the create does not check them again.

    The values are taken from ``context["params"]`` *after* template rendering, as data: a field
    value that happens to contain ``{{ ... }}`` is sent as typed, never rendered (rendering user
    input could leak secrets from the template context); they are read by the same function as the
    validate task's (:func:`payout_jobs.single_payout.attributes_from_params`). Everything else
    (idempotent create, re-attach on retry, ids-only XCom) is the provider's operator.
    """

    template_fields: Sequence[str] = (*CreatePayoutInvoiceOperator.template_fields, "validated")

    def __init__(self, *, validated: Any, **kwargs: Any) -> None:
        kwargs.setdefault("validate", False)  # validate_request checked this run's params already
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


class PayoutApprovalOperator(ApprovalOperator):
    """Four-eyes approval of what is about to be paid (``ApprovalOperator`` of the standard provider).

    ``request`` is an :class:`payout_jobs.approval.ApprovalRequest` (usually an XComArg of the
    task that checked the payouts). At run time, from the settings (:mod:`payout_jobs.approval`):

    - approval off, nothing to pay, or (for a run somebody triggered) every currency's total below
      the threshold: no question is asked; the log says why and the payouts go on;
    - otherwise the task waits in ``awaiting_input`` with the request's facts as subject and body,
      ``assigned_users`` = ``PAYOUT_APPROVERS`` without the user who triggered the run, and
      ``response_timeout`` = ``PAYOUT_APPROVAL_TIMEOUT`` (no answer = "Reject", the default).

    After the answer, an "Approve" counts only if the responder is an allowed approver and not the
    run's triggering user (Airflow enforces ``assigned_users`` only with its auth manager's help:
    this is checked again here). Anything but a valid approval skips the downstream tasks (nothing
    is sent). The return value is the decision (:func:`payout_jobs.approval.decision`) in every case.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "request")

    def __init__(self, *, request: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve payouts")
        kwargs.setdefault("retries", 0)  # a retry would ask again: clear the task to ask again
        # the wait is response_timeout (PAYOUT_APPROVAL_TIMEOUT), not the DAG's execution_timeout
        kwargs.setdefault("execution_timeout", None)
        dag_params = kwargs.get("params")  # the DAG's params, copied for this task by Airflow
        super().__init__(defaults=ApprovalOperator.REJECT, **kwargs)
        self.request = request
        # HITL treats ``params`` as form fields and keeps only task-level ones, leaving the task
        # without params; Airflow's ``process_params`` then resolves a run's conf into the DAG's
        # own Param objects (under ``dag.test()`` one run's conf leaked into the next). Keep the
        # task's copy, as every other operator does; the approval itself has no form fields.
        if dag_params:
            self.params = dag_params

    @property
    def serialized_params(self) -> dict[str, dict[str, Any]]:
        """No form fields: the approver only chooses Approve or Reject."""
        return {}

    def _maker(self, context: Context) -> str | None:
        return context["dag_run"].triggering_user_name or None

    def execute(self, context: Context) -> Any:
        request: approval.ApprovalRequest | None = self.request or None
        maker = self._maker(context)
        policy = self._policy()
        why_not = approval.why_no_approval(request, policy, maker)
        if why_not is not None:
            self.log.info("Approval: %s", why_not)
            return approval.decision(approval.NOT_REQUIRED, why_not, maker=maker)
        try:
            allowed = approval.allowed_approvers(policy, maker)
        except approval.ApprovalSettingError as exc:
            raise AirflowFailException(str(exc)) from None
        assert request is not None  # why_no_approval answered for an empty request
        self.subject = approval.subject(request)
        self.body = approval.body(request, policy, maker, allowed)
        self.assigned_users = [{"id": name, "name": name} for name in allowed]
        self.response_timeout = policy.timeout
        self.log.info(
            "Waiting up to %s for one of %s to approve (triggered by %s): %s",
            policy.timeout,
            ", ".join(allowed),
            maker or "nobody (scheduled run)",
            self.subject,
        )
        return super().execute(context)

    def _policy(self) -> approval.Policy:
        try:
            return approval.Policy.from_environment()
        except approval.ApprovalSettingError as exc:
            raise AirflowFailException(str(exc)) from None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        maker = self._maker(context)
        if "error" in event:  # a timeout without the default (older runs): not approved
            outcome = approval.decision(approval.NOT_APPROVED, "no answer in time", maker=maker)
        else:
            answer = HITLOperator.execute_complete(self, context=context, event=event)
            responder = answer.get("responded_by_user")
            at = answer["responded_at"].isoformat() if answer.get("responded_at") else None
            name = (responder or {}).get("name")
            if event.get("timedout"):
                outcome = approval.decision(
                    approval.NOT_APPROVED, f"no answer within {self._policy().timeout}", at=at, maker=maker
                )
            elif answer["chosen_options"] != [self.APPROVE]:
                outcome = approval.decision(
                    approval.NOT_APPROVED, f"rejected by {name}", by=name, at=at, maker=maker
                )
            elif refused := approval.refusal(responder, self._policy(), maker):
                self.log.error("Approval refused: %s", refused)
                outcome = approval.decision(
                    approval.NOT_APPROVED, f"approval refused: {refused}", by=name, at=at, maker=maker
                )
            else:
                outcome = approval.decision(
                    approval.APPROVED, f"approved by {name}", by=name, at=at, maker=maker
                )
        if outcome["approved"]:
            self.log.info("Approved by %s: the payouts go on", outcome["by"])
            return outcome
        self.log.warning("Not approved (%s): nothing is sent; skipping the payout tasks", outcome["reason"])
        # The payout tasks; a task that runs whatever happened upstream (the report) still runs.
        downstream = [
            t
            for t in context["task"].get_direct_relatives(upstream=False)
            if not t.is_teardown and t.trigger_rule != TriggerRule.ALL_DONE
        ]
        if downstream:
            # skip() ends the task (DownstreamTasksSkipped) before a return value is pushed: push
            # the decision first, for the report
            context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=outcome)
            self.skip(ti=context["ti"], tasks=downstream)
        return outcome
