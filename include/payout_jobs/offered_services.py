"""The services the gateway offered, cached in a small JSON file for the trigger form.

The form of ``payout_by_reference`` suggests service codes (a free-text field with a list of
suggestions: Airflow's form shows a string param's ``examples`` as such a list). DAG files are
parsed without network calls, so the codes come from :func:`~payout_jobs.settings.services_file`,
which the ``validate_request`` task refreshes from the prerequest it already made. No file yet (a
fresh install) means no suggestions, never a parse error; a person can always type a code.

File: ``{"services": {"<code>": ["<invoice currency>", ...]}, "updated": "<ISO time>"}``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from payout_jobs.atomic_files import atomic_write

log = logging.getLogger(__name__)

#: What a service code looks like (the gateway's codes: ``test_usd``, ``bank_transfer_zar``).
SERVICE_CODE = re.compile(r"[a-z0-9_]{1,64}")
#: A cache larger than this is not read at parse time (it is a short list of codes).
MAX_FILE_BYTES = 256 * 1024
_CURRENCY = re.compile(r"[A-Z]{3}")


def _read(path: Path) -> dict[str, list[str]]:
    """The cached codes and their currencies; empty when the file is missing, too big or not ours."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            log.warning("%s is larger than %d bytes: not read.", path, MAX_FILE_BYTES)
            return {}
        services = json.loads(path.read_text(encoding="utf-8")).get("services")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(services, dict):
        return {}
    return {
        code: sorted({c for c in currencies if isinstance(c, str) and _CURRENCY.fullmatch(c)})
        for code, currencies in services.items()
        if isinstance(code, str) and SERVICE_CODE.fullmatch(code) and isinstance(currencies, list)
    }


def cached_service_codes(path: Path) -> list[str]:
    """The service codes in the cache, sorted (empty without a usable cache); never raises."""
    return sorted(_read(path))


def remember_offered(path: Path, currency: str, codes: Iterable[str]) -> None:
    """Add ``codes`` (offered for ``currency``) to the cache. A failure is logged, never raised:
    the cache only feeds the form's suggestions."""
    offered = [c for c in codes if isinstance(c, str) and SERVICE_CODE.fullmatch(c)]
    if not offered or not _CURRENCY.fullmatch(currency):
        return
    services = _read(path)
    if all(currency in services.get(code, ()) for code in offered):
        return
    for code in offered:
        services[code] = sorted({*services.get(code, ()), currency})
    document = {"services": dict(sorted(services.items())), "updated": datetime.now(UTC).isoformat()}
    try:
        atomic_write(path, lambda h: json.dump(document, h, indent=2))
    except OSError as exc:
        log.warning("Could not update the services cache %s (%s).", path, type(exc).__name__)
