"""
### Daily payout reconciliation

Walks the gateway's invoice list with the cursor for the run's data interval (extended back by
`lookback_days`, so that late reversals and invoices stuck since earlier days are seen again)
and reports:

- invoices **stuck** in a non-final status for longer than `stuck_after_minutes`,
- error-group resolutions / `moderation_required` invoices **waiting for a person**,
- **reversals** of earlier successes (processed, then in the cancel family),
- **references with more than one invoice** (a payout made twice),
- `partially_processed` invoices and final **failures** (for the record).

- invoices in a status the gateway does not document (**unknown_status**, e.g. `refunded`).

A reversal is any move away from success: an invoice that was processed (a processed time or
amount) and is now anything but `processed`/`partially_processed`.

Writes `<output_dir>/reconciliation/<day>/reconciliation.csv` and `summary.json` (`output_dir`
must be inside `PAYOUT_OUTPUT_DIRS`); the run fails (red) when a stuck invoice, a person-needed
invoice, a reversal, an unknown status or a duplicate reference is found. A manual run with
`through_now` covers its data interval and today up to now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task
from payout_gateway.hooks import PayoutGatewayHook
from payout_jobs import reconciliation, settings

with DAG(
    dag_id="payout_reconciliation",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["payouts"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": settings.SHORT_TIMEOUT,
    },
    params={
        "stuck_after_minutes": Param(
            60,
            type="integer",
            minimum=1,
            title="Stuck after (minutes)",
            description="A non-final invoice not updated for longer than this is reported as stuck.",
        ),
        "lookback_days": Param(
            7,
            type="integer",
            minimum=0,
            maximum=90,
            title="Look back (days)",
            description="Also re-check invoices created this many days before the interval.",
        ),
        "as_of": Param(
            "",
            type=["null", "string"],
            title="As of (optional)",
            pattern=r"^$|^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$",
            description="Judge ages as of this ISO-8601 time (audits of a past day). Empty: now.",
        ),
        "through_now": Param(
            False,
            type="boolean",
            title="Up to now",
            description="Extend the window to now (a manual run covering today so far).",
        ),
        "output_dir": Param(
            settings.reports_dir(),
            type="string",
            minLength=1,
            title="Output folder",
            description="Inside one of the folders of PAYOUT_OUTPUT_DIRS.",
        ),
    },
) as dag:

    @task(show_return_value_in_logs=False, execution_timeout=settings.RECONCILE_TIMEOUT)
    def reconcile(
        params: dict | None = None,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> dict:
        """Walk the invoice list for the window; write reconciliation.csv + summary.json."""
        return reconciliation.reconciliation_task(
            params, data_interval_start, data_interval_end, PayoutGatewayHook()
        )

    @task(retries=0)
    def needs_person(summary: dict) -> None:
        """Fail the run when a finding needs a person."""
        reconciliation.verdict(summary)

    needs_person(reconcile())
