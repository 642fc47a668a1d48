"""
### Batch payouts from a CSV file (hourly from the drop folder, or manual)

The file is the vendor's dashboard batch format: `service, service_amount, fields_data,
reference_id, description, customer, customer_metadata` plus an optional `currency` column
(`fields_data` as `key:value;key:value`). See `include/samples/`.

check every row (services from the gateway's prerequest: service exists, fields and regexps,
limits, the currency's decimals, duplicate references) → four-eyes approval (`approve_batch`: rows
to pay, rows rejected, totals per currency, the largest payouts, the file's digest; answered on the
run's **Required actions** page by a user of `PAYOUT_APPROVERS` other than the one who triggered
the run; reject or no answer within `PAYOUT_APPROVAL_TIMEOUT` = nothing is sent and the report
says "not approved"; `PAYOUT_APPROVAL_THRESHOLD`) → pay the valid rows in chunks (one mapped
task group per chunk: create + process with bounded concurrency, then a deferrable sensor) →
report (`<output_dir>/<batch_id>/report.csv` + `summary.json`, published as the asset
`payout_batch_reports`) → verdict (the run fails, red, when any row was rejected or did not
succeed; the report is written first).

**Which file.** Manual runs take `batch_file`. Scheduled runs (and manual runs without
`batch_file`) take the oldest `*.csv` in the drop folder (`PAYOUT_BATCH_DROP_DIR`) and move it to
`processed/` once reported. No file: the run is skipped. `batch_file` must be inside a folder of
`PAYOUT_INPUT_DIRS` and `output_dir` inside one of `PAYOUT_OUTPUT_DIRS` (symlinks and `..`
resolved); anything else fails `check_batch` before a byte is read or sent.

**Time bounds.** Every task has an `execution_timeout`. A chunk stops starting rows when its time
budget (rows x 30 s / concurrency, at most 30 min) is spent and reports the rest unresolved: its
retry re-attaches by reference. A 429 with `Retry-After` makes every request of the connection
wait until that one instant (a shared gate), so waits do not add up.

**Idempotency.** Each row's gateway reference is `<batch_id>:<row reference_id>`. The default
`batch_id` of a manual run is the file's name plus a hash of the run id: clearing or rerunning the
run re-attaches to the invoices it made (nothing is paid twice), a new trigger is a new batch, and
passing `batch_id` resumes an earlier batch. A drop-folder file's batch id is its name, whichever
run sees it. The file's content is not part of the id on purpose: fixing rejected rows and running
again pays the fixed rows and re-attaches the others (a paid row whose amount or fields changed is
refused as a reference reused for another payout). Use a new file name for a new batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, TaskInstance, TriggerRule, task, task_group
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.sensors import PayoutInvoiceSensor
from payout_jobs import batch_job, settings
from payout_jobs.chunks import ChunkSpec, lookup_before_create, run_chunk
from payout_jobs.gateway_pool import GATEWAY_POOL
from payout_jobs.identity import BATCH_ID_PATTERN
from payout_jobs.operators import PayoutApprovalOperator
from payout_jobs.single_payout import CURRENCIES, CURRENCY_LABELS

BATCH_REPORTS = Asset("payout_batch_reports")

with DAG(
    dag_id="payout_batch",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["payouts"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=15),
        "execution_timeout": settings.SHORT_TIMEOUT,
    },
    params={
        "batch_file": Param(
            "",
            type=["null", "string"],
            title="Batch file",
            description="Path of the CSV file (on the Airflow workers), inside a folder of "
            "PAYOUT_INPUT_DIRS. Empty: the oldest file in the drop folder.",
        ),
        "batch_id": Param(
            "",
            type=["null", "string"],
            pattern=f"^$|{BATCH_ID_PATTERN}",
            title="Batch id (optional)",
            description="Prefix of every row's reference. Empty: derived from the file (and this run).",
        ),
        "currency": Param(
            "USD",
            type="string",
            enum=list(CURRENCIES),
            values_display=CURRENCY_LABELS,
            title="Currency",
            description="Invoice currency of rows without a currency column.",
        ),
        "output_dir": Param(
            settings.reports_dir(),
            type="string",
            minLength=1,
            title="Output folder",
            description="Reports go to <output_dir>/<batch_id>/ (inside a folder of PAYOUT_OUTPUT_DIRS).",
        ),
        "chunk_size": Param(
            settings.DEFAULT_CHUNK_SIZE,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Rows per chunk",
            description="Rows per mapped task (10,000 rows at 250 = 40 tasks).",
        ),
        "chunk_concurrency": Param(
            settings.DEFAULT_CHUNK_CONCURRENCY,
            type="integer",
            minimum=1,
            maximum=32,
            title="Requests in flight per chunk",
        ),
    },
) as dag:

    @task(retries=1, show_return_value_in_logs=False, execution_timeout=settings.BATCH_FILE_TIMEOUT)
    def check_batch(
        params: dict | None = None, ti: TaskInstance | None = None, run_id: str | None = None
    ) -> list[ChunkSpec]:
        """Check every row (nothing is sent); return the chunks to pay (row numbers only)."""
        return batch_job.check_task(params, ti, run_id, PayoutGatewayHook())

    @task_group(group_id="chunk")
    def pay_chunk(spec: ChunkSpec) -> None:
        @task(
            multiple_outputs=True,
            show_return_value_in_logs=False,
            execution_timeout=settings.CHUNK_TIMEOUT,
            pool=GATEWAY_POOL,
        )
        def execute(spec: ChunkSpec, params: dict | None = None, ti: TaskInstance | None = None) -> dict:
            """Create + process every row of the chunk (idempotent by reference)."""
            return run_chunk(
                spec,
                PayoutGatewayHook,
                int(params["chunk_concurrency"]),
                lookup_first=lookup_before_create(params, ti.try_number),
            )

        sent = execute(spec)
        PayoutInvoiceSensor(
            task_id="wait",
            invoice_ids=sent["invoice_ids"],
            deferrable=True,
            fail_on_payout_failure=False,
            poke_interval=5,
            max_poll_interval=60,
            timeout=settings.CHUNK_WAIT_SECONDS,
            execution_timeout=settings.sensor_execution_timeout(settings.CHUNK_WAIT_SECONDS),
        )

    @task(
        trigger_rule=TriggerRule.ALL_DONE,
        outlets=[BATCH_REPORTS],
        retries=1,
        execution_timeout=settings.BATCH_FILE_TIMEOUT,
    )
    def report(
        approval: dict | None,
        ti: TaskInstance | None = None,
        run_id: str | None = None,
        outlet_events: Any = None,
    ) -> dict:
        """Write report.csv + summary.json (every row), whatever happened to the chunks."""
        summary = batch_job.make_report(
            ti.xcom_pull(task_ids="check_batch", key="batch"),
            ti.xcom_pull(task_ids=["chunk.execute"], key="invoices"),
            ti.xcom_pull(task_ids=["chunk.execute"], key="errors"),
            ti.xcom_pull(task_ids=["chunk.wait"]),
            PayoutGatewayHook,
            run_id,
            nothing_to_do=ti.xcom_pull(task_ids="check_batch", key="nothing_to_do"),
            approval_decision=approval,
        )
        outlet_events[BATCH_REPORTS].extra = {
            "batch_id": summary["batch_id"],
            "report_csv": summary["report_csv"],
            "summary_json": summary["summary_json"],
        }
        return summary

    @task(retries=0)
    def verdict(summary: dict) -> dict:
        """Log the summary table; fail the run when a row was rejected or did not succeed."""
        return batch_job.verdict(summary)

    chunks = check_batch()
    approve_batch = PayoutApprovalOperator(task_id="approve_batch", request=chunks["approval"])
    paid = pay_chunk.expand(spec=chunks)
    summary = report(approve_batch.output)
    chunks >> approve_batch >> paid >> summary
    chunks >> summary
    verdict(summary)
