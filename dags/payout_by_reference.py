"""
### One payout by reference details (manual)

Trigger from the UI (**Trigger** button, fill the form) or the REST API with a `conf`.

discover services (prerequest) → validate the request against the chosen service (nothing is sent
if it fails; the error names the field) → `approve_payout` (four-eyes approval when the amount is at
or above `PAYOUT_APPROVAL_THRESHOLD`; see `payout_batch`) → create the invoice → process it → wait for a final
status (deferrable sensor) → summary (one readable block in the task log).

**Reference.** Leave `reference_id` empty and one is derived from this run and the payout's
parameters: one trigger is one payout, so clearing or retrying tasks of the run re-attaches to the
same invoice, and a new trigger is a new payout. Give your own `reference_id` (e.g. your payout or
order id) to make the payout idempotent across triggers too.

XCom carries the prerequest, the reference and invoice ids/statuses only: never account or card
numbers (those stay in the run's params and are masked in logs).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, TaskInstance, TriggerRule, task
from airflow.sdk.types import DagRunProtocol as DagRun
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.operators import PayoutPrerequestOperator, ProcessPayoutInvoiceOperator
from payout_gateway.sensors import PayoutInvoiceSensor
from payout_jobs import settings
from payout_jobs import single_payout as sp
from payout_jobs.operators import CreatePayoutFromParamsOperator, PayoutApprovalOperator

with DAG(
    dag_id="payout_by_reference",
    schedule=None,
    catchup=False,
    doc_md=__doc__,
    tags=["payouts"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": settings.REQUEST_TIMEOUT,
    },
    params={
        "service": Param(
            type="string",
            title="Service",
            description="Required: the payout service code, e.g. test_usd. The list suggests the "
            "services the gateway offered before (refreshed by each run); any code can be typed.",
            **sp.service_suggestions(),
        ),
        "currency": Param(
            "USD",
            type="string",
            enum=list(sp.CURRENCIES),
            values_display=sp.CURRENCY_LABELS,
            title="Currency",
            description="Invoice currency.",
        ),
        "amount": Param(type="string", title="Amount", description=sp.AMOUNT_HELP),
        "fields": Param(
            type="object",
            minProperties=1,
            additionalProperties={"type": "string"},
            title="Service fields",
            description="Required JSON object of the service's fields, values as text, e.g. "
            '{"account": "<account number>"} for test_usd or {"card_number": "<card number>"} for card. '
            "There is no default beneficiary.",
        ),
        "reference_id": Param(
            "",
            type=["null", "string"],
            title="Reference id (optional)",
            description="Your idempotency key for this payout: 1 to 64 letters, digits or _ . : - "
            "(e.g. order-1234). Empty: derived from this run.",
        ),
        "description": Param(
            "", type=["null", "string"], maxLength=255, title="Description", description="Free text."
        ),
        "customer": Param(
            None,
            type=["null", "object"],
            title="Customer (optional)",
            description='JSON object with at least reference_id, e.g. {"reference_id": "c-1", "name": "Al"}.',
        ),
        "test_mode": Param(True, type="boolean", title="Test mode", description="Create a test payout."),
    },
) as dag:
    discover_services = PayoutPrerequestOperator(
        task_id="discover_services", currency="{{ params.currency }}", amount="{{ params.amount }}"
    )

    @task(retries=0)
    def validate_request(
        prerequest: dict,
        params: dict | None = None,
        dag_run: DagRun | None = None,
        ti: TaskInstance | None = None,
    ) -> dict:
        """Check the request against the chosen service; return the reference and the service
        definition, and push what the approver is shown (nothing is sent)."""
        validated = sp.validated_payout(prerequest, params, dag_run.dag_id, dag_run.run_id)
        ti.xcom_push(key="approval", value=sp.approval_request(params, validated["reference_id"]))
        return validated

    validated = validate_request(discover_services.output)
    create_invoice = CreatePayoutFromParamsOperator(task_id="create_invoice", validated=validated)
    process_invoice = ProcessPayoutInvoiceOperator(
        task_id="process_invoice", invoice_id=create_invoice.output, do_xcom_push=False
    )
    wait_for_final_status = PayoutInvoiceSensor(
        task_id="wait_for_final_status",
        invoice_id=create_invoice.output,
        deferrable=True,
        fail_on_payout_failure=False,
        poke_interval=3,
        timeout=3600,
        execution_timeout=settings.sensor_execution_timeout(3600),
        retries=1,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def summary(approval: dict | None, ti: TaskInstance | None = None, dag_run: DagRun | None = None) -> dict:
        """Log the payout summary; fail the run unless the payout succeeded (fully or partly)."""
        invoice_id = ti.xcom_pull(task_ids="create_invoice")
        return sp.report_payout(
            invoice_id, dag_run.start_date, PayoutGatewayHook(), approval, dag_run=dag_run
        )

    approve_payout = PayoutApprovalOperator(task_id="approve_payout", request=validated["approval"])
    validated >> approve_payout >> create_invoice >> process_invoice >> wait_for_final_status
    wait_for_final_status >> summary(approve_payout.output)
