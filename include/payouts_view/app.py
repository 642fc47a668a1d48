"""The Payouts view: a FastAPI app that the plugin mounts on the api-server at ``/payouts``.

Pages (server-rendered HTML, every value escaped) behind Airflow's own authentication (a Bearer JWT
or the UI's ``_token`` cookie, and read access to DAG runs):

- ``/payouts/`` recent batches and payouts, filters ``?batch_id=`` (``-``: single payouts) and ``?status=``;
- ``/payouts/batches/{batch_id}`` totals and rows; ``.../report.csv`` and ``.../summary.json`` downloads;
- ``/payouts/invoices/{invoice_id}`` the invoice read live through the hook (fields masked);
- ``/payouts/reconciliation`` the latest reconciliation findings.

``POST /payouts/callbacks`` takes the gateway's signed callbacks (no Airflow login: the signature
is the authentication; see :mod:`payouts_view.callback_receiver`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader
from payout_gateway.callbacks import MAX_BODY_BYTES, CallbackStore, epoch
from payout_gateway.exceptions import PayoutGatewayApiError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.money import format_amount
from payout_gateway.redaction import mask_number
from payout_gateway.retries import outcome_class
from payout_gateway.statuses import PayoutStatus
from payout_jobs.identity import ITEM_SEPARATOR
from payout_jobs.reconciliation import CSV_COLUMNS
from payout_jobs.report_cells import INVOICE_ID_PATTERN

from payouts_view import PREFIX, reports
from payouts_view.callback_receiver import READ_HOOK_PARAMS, handle_callback
from payouts_view.reports import PathRefused, PayoutRow

CONN_ID_ENV = "PAYOUT_VIEW_CONN_ID"
#: Statuses offered by the filter: the gateway's, and the report's own row statuses.
FILTER_STATUSES = (
    *(s.value for s in PayoutStatus),
    "rejected",
    "refused",
    "conflict",
    "not_sent",
    "not approved",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_templates = Environment(loader=PackageLoader("payouts_view", "templates"), autoescape=True)
_templates.filters["seg"] = lambda value: quote(str(value), safe="")

ReadAccess = Depends(requires_access_dag("GET", DagAccessEntity.RUN))


def conn_id() -> str:
    """The gateway connection the view and the callbacks use (``PAYOUT_VIEW_CONN_ID``, default
    ``payout_gateway_default``)."""
    return os.environ.get(CONN_ID_ENV) or PayoutGatewayHook.default_conn_name


def ui_base() -> str:
    """The Airflow UI's base URL (``[api] base_url``), without a trailing slash; "" for the same origin."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def run_url(dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run."""
    return f"{ui_base()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def render(name: str, request: Request, user: Any, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(
        view_root=f"{ui_base()}{PREFIX}",
        run_url=run_url,
        user_name=getattr(user, "get_name", lambda: "")(),
        **values,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _filter_value(value: str | None, allowed: tuple[str, ...] | None = None, limit: int = 64) -> str:
    text = (value or "").strip()[:limit]
    if allowed is not None and text not in allowed:
        return ""
    return text


def _latest(rows: list[PayoutRow]) -> dict[str, dict[str, Any]]:
    """Recorded callback states of the rows' invoices."""
    try:
        return CallbackStore().latest_many(r.invoice_id for r in rows if r.invoice_id)
    except Exception:  # the store only adds the "gateway now" column
        return {}


def create_app() -> FastAPI:
    """The Payouts view app (mounted at ``/payouts`` by :class:`payouts_view.plugin.PayoutsViewPlugin`)."""
    app = FastAPI(
        title="Payouts",
        description="Payouts, batches and reconciliation findings; the gateway's signed callbacks.",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            html = _templates.get_template("unauthenticated.html").render(
                login_url=f"{ui_base()}/auth/login?next={quote(str(request.url), safe='')}"
            )
            return HTMLResponse(html, status_code=401, headers=SECURITY_HEADERS)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse, dependencies=[ReadAccess])
    def index(
        request: Request,
        user: GetUserDep,
        batch_id: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=64)] = None,
    ) -> HTMLResponse:
        batches = reports.list_batches()
        batch_filter = _filter_value(batch_id)
        status_filter = _filter_value(status, FILTER_STATUSES)
        rows: list[PayoutRow] = []
        if batch_filter in ("", "-"):
            rows.extend(reports.single_payouts())
        if batch_filter != "-":
            chosen = [b for b in batches if not batch_filter or b.batch_id == batch_filter]
            if batch_filter and not chosen:
                try:
                    found = reports.read_batch(batch_filter)
                except PathRefused:
                    raise HTTPException(400, "batch_id: not a batch id of the reports folder") from None
                chosen = [found] if found else []
            for batch in chosen:
                rows.extend(reports.batch_rows(batch))
        if status_filter:
            rows = [r for r in rows if r.status == status_filter]
        truncated = len(rows) > reports.MAX_ROWS
        rows = rows[: reports.MAX_ROWS]
        return render(
            "index.html",
            request,
            user,
            batches=batches,
            rows=rows,
            latest=_latest(rows),
            statuses=FILTER_STATUSES,
            batch_filter=batch_filter,
            status_filter=status_filter,
            truncated=truncated,
        )

    def _batch(batch_id: str) -> reports.Batch:
        try:
            batch = reports.read_batch(batch_id)
        except PathRefused:
            raise HTTPException(400, "batch_id: not a batch id of the reports folder") from None
        if batch is None:
            raise HTTPException(404, "no report for this batch")
        return batch

    @app.get("/batches/{batch_id}", response_class=HTMLResponse, dependencies=[ReadAccess])
    def batch_page(batch_id: str, request: Request, user: GetUserDep) -> HTMLResponse:
        batch = _batch(batch_id)
        rows = list(reports.batch_rows(batch))
        extra_columns = list(dict.fromkeys(k for r in rows for k in r.extra))
        return render(
            "batch.html",
            request,
            user,
            batch=batch,
            rows=rows,
            latest=_latest(rows),
            extra_columns=extra_columns,
        )

    def _download(batch_id: str, name: str, media_type: str) -> FileResponse:
        try:
            path = reports.batch_file(batch_id, name)
        except PathRefused:
            raise HTTPException(400, "batch_id: not a batch id of the reports folder") from None
        if not path.is_file():
            raise HTTPException(404, f"no {name} for this batch")
        return FileResponse(
            path,
            media_type=media_type,
            filename=f"{batch_id}-{name}",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    @app.get("/batches/{batch_id}/report.csv", dependencies=[ReadAccess])
    def report_csv(batch_id: str) -> FileResponse:
        return _download(batch_id, "report.csv", "text/csv; charset=utf-8")

    @app.get("/batches/{batch_id}/summary.json", dependencies=[ReadAccess])
    def summary_json(batch_id: str) -> FileResponse:
        return _download(batch_id, "summary.json", "application/json")

    @app.get("/invoices/{invoice_id}", response_class=HTMLResponse, dependencies=[ReadAccess])
    def invoice_page(
        invoice_id: Annotated[str, PathParam(pattern=INVOICE_ID_PATTERN.pattern)],
        request: Request,
        user: GetUserDep,
    ) -> HTMLResponse:
        values = read_invoice(invoice_id)
        return render("invoice.html", request, user, status_code=values.pop("status_code"), **values)

    @app.get("/reconciliation", response_class=HTMLResponse, dependencies=[ReadAccess])
    def reconciliation_page(request: Request, user: GetUserDep) -> HTMLResponse:
        return render(
            "reconciliation.html", request, user, days=reports.reconciliations(), columns=CSV_COLUMNS
        )

    @app.post("/callbacks")
    async def callbacks(request: Request) -> JSONResponse:
        body = bytearray()
        async for chunk in request.stream():  # read at most MAX_BODY_BYTES + 1, whatever it claims
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"result": "refused", "detail": "body too large"}, status_code=413)
        answer = await run_in_threadpool(
            handle_callback, bytes(body), request.headers.get("x-signature"), conn_id=conn_id()
        )
        return JSONResponse(answer.body, status_code=answer.status_code)

    return app


def _when(value: Any) -> str:
    seconds = epoch(value)
    return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def masked(value: Any) -> str:
    """A field value as the view shows it: as the gateway masked it, else its last four characters."""
    text = "" if value is None else str(value)
    return text if "*" in text else mask_number(text)


def read_invoice(invoice_id: str) -> dict[str, Any]:
    """The invoice page's values: the invoice read live, what callbacks recorded, the dashboard link."""
    values: dict[str, Any] = {"invoice_id": invoice_id, "invoice": None, "error": None, "status_code": 200}
    hook = PayoutGatewayHook(conn_id(), **READ_HOOK_PARAMS)
    try:
        invoice = hook.get_invoice(invoice_id)
    except PayoutGatewayApiError as exc:
        values["status_code"] = 404 if exc.status_code == 404 else 502
        values["error"] = (
            "The gateway has no such invoice."
            if exc.status_code == 404
            else f"The gateway could not be read (HTTP {exc.status_code})."
        )
    except Exception as exc:
        values["status_code"] = 502
        values["error"] = f"The gateway could not be read ({outcome_class(exc)})."
    else:
        cur = invoice.currency
        values["invoice"] = invoice
        values["details"] = [
            ("Reference", invoice.reference_id or ""),
            ("Status", invoice.status.value),
            ("Resolution", invoice.resolution or ""),
            ("Outcome", invoice.outcome.value),
            ("Moderation required", "yes" if invoice.moderation_required else "no"),
            ("Service", invoice.service or ""),
            ("Amount", f"{format_amount(invoice.amount, cur)} {cur}"),
            ("Processed amount", f"{format_amount(invoice.processed_amount, cur) or '-'} {cur}"),
            ("Fee", f"{format_amount(invoice.fee, cur) or '-'} {cur}"),
            ("Write-off", f"{format_amount(invoice.writeoff, cur) or '-'} {cur}"),
            (
                "Recipient gets",
                f"{format_amount(invoice.service_amount, invoice.service_currency) or '-'} "
                f"{invoice.service_currency or ''}",
            ),
            ("Description", invoice.description or ""),
            ("Test mode", "" if invoice.test_mode is None else ("yes" if invoice.test_mode else "no")),
            ("Created", _when(invoice.created)),
            ("Updated", _when(invoice.updated)),
            ("Processed", _when(invoice.processed)),
        ]
        values["fields"] = [(str(k), masked(v)) for k, v in sorted(invoice.fields.items())]
        reference = invoice.reference_id or ""
        if ITEM_SEPARATOR in reference:
            try:
                batch_id = reference.split(ITEM_SEPARATOR, 1)[0]
                reports.batch_folder(batch_id)
                values["batch_id"] = batch_id
            except PathRefused:
                pass
        try:
            url = hook.dashboard_url(invoice.id)
        except Exception:
            url = None
        values["dashboard_url"] = url if url and url.startswith(("https://", "http://")) else None
    try:
        recorded = CallbackStore().latest(invoice_id)
    except Exception:
        recorded = None
    if recorded:
        recorded["updated_text"] = _when(recorded.get("updated"))
    values["recorded"] = recorded
    return values
