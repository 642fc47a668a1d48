"""Splitting a batch into chunks and paying one chunk: create + process each row, a few at a time.

A chunk is one mapped task instance (10,000 rows at 250 per chunk = 40 task instances, not one per
payout). Its XCom input is the batch identity and the row numbers; the task re-reads the rows from
the file (so card and account numbers never go through XCom) after checking that the file still
has the content that was validated. Each row is created and processed with the hook's
``create_and_process``, which is idempotent by reference: a retried chunk re-attaches to the
invoices it made and sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from payout_gateway.exceptions import (
    PayoutAuthenticationError,
    PayoutBadRequestError,
    PayoutDuplicateReferenceError,
    PayoutPermissionError,
    PayoutReferenceConflictError,
    PayoutUnprocessableError,
    PayoutValidationError,
)
from payout_gateway.identity import mask_field_values
from payout_gateway.retries import PayoutDeadlineError

from payout_jobs import settings
from payout_jobs.batch_file import BatchRow, file_digest, read_rows
from payout_jobs.batch_requests import build_request
from payout_jobs.gateway_client import GatewayFactory, PayoutGateway, per_thread

log = logging.getLogger(__name__)

#: Errors that settle a row for good: the gateway refused it, nothing was made for it.
ROW_REFUSED = (
    PayoutValidationError,
    PayoutUnprocessableError,
    PayoutBadRequestError,
)
#: Errors that settle a row for good although an invoice exists for its reference: it is not ours
#: to adopt (another payout under the reference, or several invoices for it). A person decides.
ROW_CONFLICT = (PayoutReferenceConflictError, PayoutDuplicateReferenceError)
#: Errors that no retry can fix (credentials, permissions): the whole chunk stops.
CONFIGURATION_ERRORS = (PayoutAuthenticationError, PayoutPermissionError)


class ChunkSpec(TypedDict):
    """What a chunk task gets through XCom: identities and row numbers only."""

    index: int
    batch_id: str
    batch_file: str
    file_digest: str
    currency: str
    rows: list[int]


class ChunkResult(TypedDict):
    """What a chunk task returns: ``[row, invoice_id]`` pairs in ``invoices``; in ``errors``,
    ``[row, reason]`` for a refusal and ``[row, reason, conflict]`` for a conflict, where
    ``conflict`` is :func:`conflict_details` (JSON: ids, statuses and amounts, no fields)."""

    index: int
    invoice_ids: list[str]
    invoices: list[list[Any]]
    errors: list[list[Any]]


def plan_chunks(
    valid_rows: Sequence[int], chunk_size: int, *, batch_id: str, batch_file: str, digest: str, currency: str
) -> list[ChunkSpec]:
    """Consecutive slices of ``valid_rows`` of at most ``chunk_size`` rows each."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [
        ChunkSpec(
            index=i,
            batch_id=batch_id,
            batch_file=batch_file,
            file_digest=digest,
            currency=currency,
            rows=list(valid_rows[start : start + chunk_size]),
        )
        for i, start in enumerate(range(0, len(valid_rows), chunk_size))
    ]


def conflict_details(exc: BaseException) -> dict[str, Any]:
    """What a conflict error tells of the invoice(s) that hold the reference (JSON-native).

    Read with ``getattr``: the status, resolution, amount and currency are filled by clients that
    know them, and are None otherwise (the report then reads the invoice).
    """
    if isinstance(exc, PayoutDuplicateReferenceError):
        return {"invoice_ids": [str(i) for i in exc.invoice_ids], "duplicate": True}
    amount = getattr(exc, "invoice_amount", None)
    return {
        "invoice_ids": [str(exc.invoice_id)] if getattr(exc, "invoice_id", None) else [],
        "differences": [str(d) for d in getattr(exc, "differences", None) or []],
        "duplicate": False,
        "invoice_status": getattr(exc, "invoice_status", None),
        "invoice_resolution": getattr(exc, "invoice_resolution", None),
        "invoice_amount": None if amount is None else str(amount),
        "invoice_currency": getattr(exc, "invoice_currency", None),
    }


def _load_rows(spec: ChunkSpec) -> list[BatchRow]:
    path = Path(spec["batch_file"])
    if file_digest(path) != spec["file_digest"]:
        raise AirflowFailException(
            f"{path} changed after it was validated; nothing of chunk {spec['index']} was sent. "
            "Trigger a new run for the new content."
        )
    rows = list(read_rows(path, only=spec["rows"]))
    if len(rows) != len(spec["rows"]):
        raise AirflowFailException(f"{path} lacks some rows of chunk {spec['index']}; nothing was sent")
    return rows


def lookup_before_create(params: Mapping[str, Any], try_number: int) -> bool:
    """Whether a chunk looks each reference up before creating it.

    Not on the first try of a fresh batch (a manual run without ``batch_id``: its batch id is
    derived from the run id, so no invoice can hold its references yet; an unknown outcome is
    still looked up before anything is resent, and a 409 adopts). Yes on a retry and on a resumed
    batch (``batch_id`` given, or a drop-folder file, picked or given, whose batch id is its
    name), where many
    references may exist already and one read beats a POST answered 409.
    """
    given = (params.get("batch_file") or "").strip()
    if try_number > 1 or (params.get("batch_id") or "").strip() or not given:
        return True
    return Path(given).resolve().parent == Path(settings.drop_dir()).resolve()  # named by the file


def run_chunk(
    spec: ChunkSpec,
    hook_factory: GatewayFactory,
    max_workers: int = 8,
    time_budget: float | None = None,
    *,
    lookup_first: bool = True,
) -> ChunkResult:
    """Create and process every row of the chunk with up to ``max_workers`` requests in flight.

    Rows the gateway refuses are returned with their reason. If any row's outcome stays unknown
    (gateway or network trouble), the chunk raises after all other rows are done, so that Airflow
    retries it; the retry re-attaches by reference. Credentials errors stop the chunk at once.
    ``time_budget`` (default :func:`payout_jobs.settings.chunk_time_budget`): past it no row is
    started and no request sent (the hooks share the deadline); those rows are unresolved too.
    ``lookup_first``: see :func:`lookup_before_create` (the gateway's 409 adopts otherwise).
    """
    rows = _load_rows(spec)
    budget = settings.chunk_time_budget(len(rows), max_workers) if time_budget is None else time_budget
    deadline = time.monotonic() + budget

    def with_deadline() -> PayoutGateway:
        client = hook_factory()
        client.deadline = deadline
        return client

    hook = per_thread(with_deadline)  # one client (and HTTP session) a worker thread, one deadline

    requests = {row.row: build_request(row, spec["batch_id"], spec["currency"]) for row in rows}
    # one registration with the secrets masker for the whole chunk (linear, one supervisor message)
    mask_field_values(*(request.fields for request in requests.values()))

    def pay(row: BatchRow) -> tuple[int, str | None, list[Any] | None, BaseException | None]:
        if time.monotonic() >= deadline:
            return row.row, None, None, PayoutDeadlineError("not started: the chunk's time budget ran out")
        request = requests[row.row]
        try:
            invoice = hook().create_and_process(request, lookup_first=lookup_first)
        except CONFIGURATION_ERRORS:
            raise
        except ROW_REFUSED as exc:
            return row.row, None, [row.row, str(exc)], None
        except ROW_CONFLICT as exc:
            return row.row, None, [row.row, str(exc), conflict_details(exc)], None
        except Exception as exc:  # unknown outcome: retried by Airflow, re-attached by reference
            return row.row, None, None, exc
        return row.row, invoice.id, None, None

    started = time.monotonic()
    invoices: list[list[Any]] = []
    errors: list[list[Any]] = []
    unresolved: list[tuple[int, BaseException]] = []
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="payout-chunk") as pool:
        try:
            for number, invoice_id, refusal, exc in pool.map(pay, rows):
                if invoice_id:
                    invoices.append([number, invoice_id])
                elif refusal:
                    errors.append(refusal)
                elif exc is not None:
                    unresolved.append((number, exc))
        except BaseException:  # credentials, or Airflow's timeout: start no queued row
            deadline = time.monotonic()
            raise
    log.info(
        "Chunk %d of batch %s: %d rows sent, %d refused by the gateway, %d unresolved, in %.1f s",
        spec["index"],
        spec["batch_id"],
        len(invoices),
        len(errors),
        len(unresolved),
        time.monotonic() - started,
    )
    if unresolved:
        sample = ", ".join(f"row {n}: {type(e).__name__}" for n, e in unresolved[:5])
        raise AirflowException(
            f"{len(unresolved)} row(s) of chunk {spec['index']} have an unknown outcome ({sample}); "
            "the retry looks them up by reference and sends nothing twice"
        )
    return ChunkResult(
        index=spec["index"],
        invoice_ids=[invoice_id for _, invoice_id in invoices],
        invoices=invoices,
        errors=errors,
    )
