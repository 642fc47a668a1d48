"""Keep secrets and card/account numbers out of exception texts and messages (defence in depth).

The client never logs field values or credentials on purpose, and Airflow's secrets masker hides
what the hook registers with ``mask_secret`` in task logs. Texts built from gateway answers (error
details, exception messages) also go through :func:`redact_text`: it masks long digit runs (card
or account numbers), IBAN-like strings and the secrets a hook registered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***"

# 12+ digits, optionally split by spaces or dashes (card numbers, long account numbers).
_LONG_DIGITS = re.compile(r"(?<![\w*])\d(?:[ -]?\d){11,}(?![\w*])")
# IBAN-like: 2 letters, 2 digits, 11..30 alphanumerics.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact_text` replaces it."""
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
