"""``POST /payouts/callbacks``: the gateway's signed callbacks, taken as hints.

In order: the body is at most :data:`~payout_gateway.callbacks.MAX_BODY_BYTES`; it names an
invoice; its ``X-Signature`` matches the connection's callback secret for the body's ``test_mode``
(``test_callback_secret`` / ``callback_secret``; constant-time; 401 otherwise, nothing recorded).
Then the hint is noted (waits for the invoice read it at once), and:

- a state already handled (a replay, a re-delivery) answers 200 ``duplicate``, nothing read;
- a callback older (``updated``) than the state recorded answers 200 ``stale``, nothing read;
- otherwise the invoice is read through :class:`~payout_gateway.hooks.PayoutGatewayHook` and what the
  gateway says is recorded (never over a newer record): 200 ``recorded``. A read that fails answers
  503, so the gateway delivers the callback again later.

Answers carry the outcome and ids only; the body is never echoed or logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from payout_gateway.callbacks import (
    MAX_BODY_BYTES,
    CallbackError,
    CallbackStore,
    parse_callback,
    secret_for,
    signature_valid,
)
from payout_gateway.exceptions import PayoutGatewayApiError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.redaction import register_secret
from payout_gateway.retries import outcome_class

log = logging.getLogger(__name__)

#: Client limits of the re-read (the gateway waits for our answer).
READ_HOOK_PARAMS: dict[str, Any] = {"timeout": 10, "max_retries": 2, "retry_max_wait": 2}


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to one callback."""

    status_code: int
    body: dict[str, Any]


def connection_extra(conn_id: str) -> dict[str, Any]:
    """The extras of the gateway connection (where the callback secrets are)."""
    hook = PayoutGatewayHook(conn_id)
    return dict(hook.get_connection(conn_id).extra_dejson)


def handle_callback(
    body: bytes,
    signature: str | None,
    *,
    conn_id: str = PayoutGatewayHook.default_conn_name,
    store: CallbackStore | None = None,
) -> Answer:
    """Verify, dedupe, order and record one callback (see the module docstring)."""
    if len(body) > MAX_BODY_BYTES:
        return Answer(413, {"result": "refused", "detail": "body too large"})
    try:
        callback = parse_callback(body)
    except CallbackError as exc:
        return Answer(400, {"result": "refused", "detail": str(exc)})
    try:
        extra = connection_extra(conn_id)
    except Exception as exc:
        log.warning("Callback not handled: connection %s unreadable (%s)", conn_id, type(exc).__name__)
        return Answer(503, {"result": "not_configured"})
    secret = secret_for(extra, callback.test_mode)
    if secret is None:
        mode = "test" if callback.test_mode else "live"
        log.warning("Callback refused: connection %s has no %s-mode callback secret", conn_id, mode)
        return Answer(401, {"result": "refused", "detail": "signature not valid"})
    register_secret(secret)
    if not signature_valid(secret, body, signature):
        log.warning("Callback for invoice %s refused: bad X-Signature", callback.invoice_id)
        return Answer(401, {"result": "refused", "detail": "signature not valid"})

    store = store or CallbackStore()
    store.note_hint(callback.invoice_id)
    ids = {"invoice_id": callback.invoice_id}
    if store.handled(callback.key):
        log.info("Callback for invoice %s: duplicate (already handled)", callback.invoice_id)
        return Answer(200, {"result": "duplicate", **ids})
    recorded = store.latest(callback.invoice_id)
    if (
        recorded is not None
        and recorded.get("updated") is not None
        and callback.updated is not None
        and callback.updated < recorded["updated"]
    ):
        store.mark_handled(callback.key, callback.invoice_id)
        log.info("Callback for invoice %s: older than the state recorded; ignored", callback.invoice_id)
        return Answer(200, {"result": "stale", **ids, "status": recorded["status"]})
    try:
        invoice = PayoutGatewayHook(conn_id, **READ_HOOK_PARAMS).get_invoice(callback.invoice_id)
    except PayoutGatewayApiError as exc:
        if exc.status_code != 404:
            return _read_failed(callback.invoice_id, exc)
        store.mark_handled(callback.key, callback.invoice_id)
        log.warning("Callback for invoice %s: the gateway has no such invoice; ignored", callback.invoice_id)
        return Answer(200, {"result": "unknown_invoice", **ids})
    except Exception as exc:
        return _read_failed(callback.invoice_id, exc)
    if invoice.id != callback.invoice_id:
        return Answer(502, {"result": "read_failed", **ids})
    newer = store.record(invoice, callback.key)
    log.info(
        "Callback for invoice %s: the gateway says %s (%s)%s",
        invoice.id,
        invoice.status.value,
        invoice.resolution or "no resolution",
        "" if newer else "; a newer state was recorded already",
    )
    status = invoice.status.value if newer else (store.latest(invoice.id) or {}).get("status")
    return Answer(200, {"result": "recorded" if newer else "stale", **ids, "status": status})


def _read_failed(invoice_id: str, exc: BaseException) -> Answer:
    """503: the gateway delivers the callback again later (nothing is marked handled)."""
    log.warning(
        "Callback for invoice %s: reading the invoice failed (%s); the gateway will deliver again",
        invoice_id,
        outcome_class(exc),
    )
    return Answer(503, {"result": "read_failed", "invoice_id": invoice_id})
