"""Identities of logical payouts: batch ids, item references, single-payout references.

The rule everywhere: a logical payout gets one reference, fixed before the first request, derived
from what the payout *is* (never from a try number, a clock or a random value), so that any rerun
of the same work re-attaches to the invoices it already made instead of paying again.

- A manual ``payout_by_reference`` run is one payout: its reference (when the user gives none) is
  derived from the DAG id, the run id and the payout's own parameters. Clearing or retrying the run
  keeps the run id, so it finds the same invoice. Triggering again makes a new run: a new payout.
- A batch item's reference is ``<batch_id>:<row reference_id>`` (the vendor's "batch id plus the
  row's reference"); ``:`` cannot occur in a batch id, so two batches never share a reference.
- A manual batch run's default batch id comes from the file's name and the run id: a rerun of
  the same run is idempotent, a new trigger on the same file is a new batch (as in the vendor's
  dashboard, where reusing a file means a new batch id). To resume a batch in a new run, pass its
  ``batch_id``.
- A batch picked up from the drop folder is identified by its file name alone, not by the run: if
  the same file is seen by two runs (a run failed before moving it away), the second re-attaches.

The file's *content* is deliberately not part of a batch id. The usual repair of a batch is to fix
its rejected rows and run it again; with the content in the id, that edit would make a new batch
and pay every good row a second time. With the name (and run) only, rows already paid re-attach
to their invoices, fixed rows are paid, and a row whose amount, service or fields were changed
after it was paid is refused by the gateway client as a reference reused for another payout.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from payout_gateway.references import derive_reference_id

BATCH_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"
ROW_REFERENCE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ITEM_SEPARATOR = ":"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _safe_stem(file_name: str) -> str:
    return _UNSAFE.sub("-", file_name.rsplit(".", 1)[0]).strip("-.") or "batch"


def manual_batch_id(file_name: str, run_id: str) -> str:
    """Default batch id of a manual run: ``<safe file stem>-<run hash>`` (<= 40 characters)."""
    return f"{_safe_stem(file_name)[:31]}-{_short_hash(run_id, 8)}"


def dropped_batch_id(file_name: str) -> str:
    """Batch id of a file from the drop folder: its safe file stem (<= 40 characters)."""
    return _safe_stem(file_name)[:40]


def item_reference(batch_id: str, row_reference_id: str) -> str:
    """The gateway reference of one batch row."""
    return f"{batch_id}{ITEM_SEPARATOR}{row_reference_id}"


def single_payout_reference(dag_id: str, run_id: str, payout: Mapping[str, Any]) -> str:
    """Reference of a manual single payout: the run (one trigger = one payout) and its parameters.

    ``payout`` holds service, currency, amount and fields; they are hashed in a canonical JSON form,
    so the reference also pins what is paid (a different payout can never adopt this invoice).
    """
    canonical = json.dumps(
        {k: payout.get(k) for k in ("service", "currency", "amount", "fields")},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return derive_reference_id("payout_by_reference", dag_id, run_id, canonical)
