"""The "Payout invoice" extra link: the invoice's page in the Payouts view of the Airflow UI, or
the gateway dashboard when the connection has a ``dashboard_url_template``. Never the raw API."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink, conf
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which payout tasks push the invoice's dashboard URL (only with a template).
DASHBOARD_URL_XCOM_KEY = "payout_invoice_url"
#: XCom key under which payout tasks push the id of the invoice they made, processed or read.
INVOICE_ID_XCOM_KEY = "payout_invoice_id"
#: Where the Payouts view plugin is mounted on the api-server.
PAYOUTS_VIEW_PREFIX = "/payouts"


def invoice_view_url(invoice_id: str) -> str:
    """``<[api] base_url>/payouts/invoices/<id>`` (a path on the UI's own origin without a base_url)."""
    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{PAYOUTS_VIEW_PREFIX}/invoices/{quote(invoice_id, safe='')}"


class PayoutInvoiceDashboardLink(BaseOperatorLink):
    """ "Payout invoice" button: the dashboard URL a task pushed, else the invoice's Payouts view page
    (empty when the task named no invoice)."""

    name = "Payout invoice"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if url := XCom.get_value(key=DASHBOARD_URL_XCOM_KEY, ti_key=ti_key):
            return str(url)
        invoice_id = XCom.get_value(key=INVOICE_ID_XCOM_KEY, ti_key=ti_key)
        return invoice_view_url(str(invoice_id)) if invoice_id else ""
