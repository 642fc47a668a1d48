"""Keyed fingerprints of a payout's identity, sent in the invoice's ``metadata`` on create.

The gateway masks card and account numbers in what it returns (``******0010``), so comparing an
existing invoice with a request by what is visible can never prove that they are the same payout:
two accounts with the same last digits look alike. The fingerprint can: an HMAC-SHA256, under a
key from the connection, of a canonical JSON of service, currency, the amount quantized to the
currency, test_mode and every field. It is keyed because card numbers are few enough to
brute-force a bare hash; only who holds the key can make or check one.

Key: the connection's ``fingerprint_key`` extra when set, else one derived from the API key
(``HMAC(api_key, "payout-fingerprint-v1")``). Rotating the API key without setting
``fingerprint_key`` makes the invoices fingerprinted under the old key fail closed: they no longer
verify and are refused as reference conflicts (never adopted). To rotate the API key safely, first
set ``fingerprint_key`` to a secret of your own and keep it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from payout_gateway.models import CreatePayoutInvoiceRequest
from payout_gateway.validation import quantize_amount

#: Key of the fingerprint in the invoice's ``metadata``.
METADATA_KEY = "payout_fingerprint"
#: Version prefix of the fingerprint value (``v1:<64 hex digits>``).
VERSION = "v1"
_DERIVATION_LABEL = b"payout-fingerprint-v1"


class FingerprintCheck(enum.Enum):
    """What an existing invoice's fingerprint says about a request."""

    MATCH = "match"
    MISMATCH = "mismatch"
    ABSENT = "absent"  # made by another tool: only the visible comparison is possible


def fingerprint_secret(fingerprint_key: str | None, api_key: str | None) -> bytes:
    """The HMAC key: ``fingerprint_key`` when set, else one derived from the API key."""
    if fingerprint_key:
        return fingerprint_key.encode("utf-8")
    if not api_key:
        raise ValueError("a fingerprint needs a fingerprint_key or an API key")
    return hmac.new(api_key.encode("utf-8"), _DERIVATION_LABEL, hashlib.sha256).digest()


def canonical_identity(
    service: str,
    currency: str,
    amount: Decimal | str | int,
    test_mode: bool | None,
    fields: Mapping[str, str],
) -> bytes:
    """The payout's identity as canonical JSON (sorted keys, no spaces, ASCII): unambiguous bytes."""
    currency = currency.strip().upper()
    document: dict[str, Any] = {
        "amount": format(quantize_amount(amount, currency), "f"),
        "currency": currency,
        "fields": {str(key): value for key, value in fields.items()},
        "service": service,
        "test_mode": test_mode,
        "v": VERSION,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def payout_fingerprint(request: CreatePayoutInvoiceRequest, key: bytes) -> str:
    """``v1:<hex>``: the HMAC-SHA256 of the request's identity under ``key``."""
    identity = canonical_identity(
        request.service, request.currency, request.amount, request.test_mode, request.fields
    )
    return f"{VERSION}:{hmac.new(key, identity, hashlib.sha256).hexdigest()}"


def with_fingerprint(request: CreatePayoutInvoiceRequest, key: bytes) -> CreatePayoutInvoiceRequest:
    """``request`` with its fingerprint in ``metadata``: the caller's keys are kept (a caller's own
    ``payout_fingerprint`` is replaced)."""
    metadata = {**(request.metadata or {}), METADATA_KEY: payout_fingerprint(request, key)}
    return request.model_copy(update={"metadata": metadata})


def check_fingerprint(
    metadata: Mapping[str, Any] | None, request: CreatePayoutInvoiceRequest, key: bytes
) -> FingerprintCheck:
    """Whether an invoice's ``metadata`` carries ``request``'s fingerprint (constant-time compare).

    A fingerprint of another version or shape is a mismatch: what cannot be verified is not adopted.
    """
    found = (metadata or {}).get(METADATA_KEY)
    if found is None:
        return FingerprintCheck.ABSENT
    if not isinstance(found, str):
        return FingerprintCheck.MISMATCH
    expected = payout_fingerprint(request, key)
    same = hmac.compare_digest(found.encode("utf-8"), expected.encode("utf-8"))
    return FingerprintCheck.MATCH if same else FingerprintCheck.MISMATCH
