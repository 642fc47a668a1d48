"""Keep secrets and card/account numbers out of log lines and exception texts (defence in depth).

The client code never logs field values or credentials on purpose; this module catches the rest:
long digit runs (card or account numbers), IBAN-like strings, and the secrets a hook registered.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"

# 12+ digits, optionally split by spaces or dashes (card numbers, long account numbers).
_LONG_DIGITS = re.compile(r"(?<![\w*])\d(?:[ -]?\d){11,}(?![\w*])")
# IBAN-like: 2 letters, 2 digits, 11..30 alphanumerics.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact_text` and :class:`RedactingFilter` replace it."""
    if secret and len(secret) >= 4:
        with _lock:
            _known_secrets.add(secret)


def mask_number(value: str) -> str:
    """The last four characters only, as the gateway masks account numbers (``******1234``)."""
    return "******" + value[-4:] if len(value) > 4 else "****"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with registered and given secrets, long digit runs and IBANs masked."""
    with _lock:
        known = sorted({*_known_secrets, *(s for s in secrets if s)}, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    text = _LONG_DIGITS.sub(lambda m: mask_number(re.sub(r"[ -]", "", m.group(0))), text)
    return _IBAN.sub(lambda m: mask_number(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record through :func:`redact_text`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to the handler
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_filter(logger: Any) -> None:
    """Attach one :class:`RedactingFilter` to a standard-library ``logger`` (idempotent).

    Airflow's task-SDK loggers are structlog loggers: they already pass every line through
    Airflow's secrets masker (fed by ``mask_secret``), so they are left alone.
    """
    if isinstance(logger, logging.Logger) and not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
