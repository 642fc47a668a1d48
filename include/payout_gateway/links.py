"""Extra link from a payout task to the invoice in the gateway's dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which payout tasks push the invoice's dashboard URL.
DASHBOARD_URL_XCOM_KEY = "payout_invoice_url"


class PayoutInvoiceDashboardLink(BaseOperatorLink):
    """ "Payout invoice" button: the URL a payout task pushed to XCom (empty when none)."""

    name = "Payout invoice"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(key=DASHBOARD_URL_XCOM_KEY, ti_key=ti_key) or ""
