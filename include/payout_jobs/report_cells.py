"""What of an input cell a report may echo: only a value that passed its own grammar.

A rejected row can hold anything in any column (a shifted row puts a card number in
``service_amount``). Reports, summaries, XComs and logs show a cell only in its checked form:

- an amount only if it is valid money for its currency (:func:`payout_gateway.validation.quantize_amount`)
  and holds no card-like digit run; it is written as the quantized amount, never as the raw text;
- a currency only if it is a 3-letter code;
- a row reference only if it matches the row-reference pattern.

Anything else is shown as the empty cell. Free texts (reasons, descriptions) go through
:func:`payout_gateway.redaction.redact_text`; a row's payout fields only as :func:`recipient_cell`
(every value holding a digit masked to its last four characters).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import iso_time
from payout_gateway.money import format_amount
from payout_gateway.redaction import mask_number, redact_text
from payout_gateway.validation import quantize_amount

from payout_jobs.batch_file import parse_properties, safe_name
from payout_jobs.identity import ROW_REFERENCE_PATTERN, item_reference

CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
#: Gateway invoice ids (``cpoi_...``) and the words it uses for statuses and resolutions.
INVOICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
WORD_PATTERN = re.compile(r"[a-z0-9_]{1,64}")
#: What :func:`time_cell` writes: ISO-8601 UTC to the second.
TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: Longest digit-free field value shown in full (a holder's name); longer ones are left out.
MAX_NAME_LENGTH = 64


def currency_cell(value: Any) -> str:
    """``value`` if it is a 3-letter (ASCII upper-case) currency code, else empty."""
    text = value if isinstance(value, str) else ""
    return text if CURRENCY_PATTERN.fullmatch(text) else ""


def money_cell(value: Any, currency: str) -> str:
    """``value`` as the currency's amount text (``10`` USD -> ``10.00``) if it is valid money for a
    valid ``currency`` and no card-like number; else empty."""
    if value is None or value == "" or not currency_cell(currency):
        return ""
    try:
        amount = quantize_amount(value, currency)
    except (PayoutValidationError, TypeError, ValueError, ArithmeticError):
        return ""
    text = format_amount(amount, currency) or ""
    return text if redact_text(text) == text else ""  # a card-like digit run is never echoed


def money(text: str) -> Decimal | None:
    """A cell written by :func:`money_cell` as a Decimal (None for the empty cell)."""
    return Decimal(text) if text else None


def reference_cell(batch_id: str, row_reference: Any) -> str:
    """The gateway reference ``<batch_id>:<row reference>`` if the row reference is well formed."""
    text = row_reference if isinstance(row_reference, str) else ""
    return item_reference(batch_id, text) if re.fullmatch(ROW_REFERENCE_PATTERN, text) else ""


def invoice_id_cell(value: Any) -> str:
    """An invoice id if it looks like one, else empty."""
    text = value if isinstance(value, str) else ""
    return text if INVOICE_ID_PATTERN.fullmatch(text) else ""


def word_cell(value: Any) -> str:
    """A gateway word (a resolution such as ``insufficient_funds``) if it is one, else empty."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if WORD_PATTERN.fullmatch(text) else ""


def text_cell(value: Any) -> str:
    """Free text (a reason) with card-like numbers, IBANs and known secrets masked."""
    return redact_text("" if value is None else str(value))


def time_cell(value: Any) -> str:
    """A gateway time as ISO-8601 UTC (``2026-12-08T00:50:01Z``), else empty."""
    text = iso_time(value) or ""
    return text if TIME_PATTERN.fullmatch(text) else ""


def recipient_cell(fields_data: Any) -> str:
    """A row's payout fields (``key:value;...``) as ``key value`` pairs, every value that holds a
    digit (card, account, IBAN, codes) masked to its last four characters (``account ******3412``),
    a digit-free one (a holder's name) shown as text; empty when the fields do not parse."""
    try:
        fields = parse_properties(fields_data if isinstance(fields_data, str) else "", "fields_data")
    except ValueError:
        return ""
    shown = []
    for key, value in fields.items():
        if safe_name(key) is None or not value:
            continue
        if any(c.isdigit() for c in value):
            shown.append(f"{key} {mask_number(value)}")
        elif len(value) <= MAX_NAME_LENGTH:
            shown.append(f"{key} {value}")
    return text_cell("; ".join(shown))
