"""JSON in and out with exact Decimal numbers (never binary floats)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def loads(raw: bytes | str) -> Any:
    """Parse JSON with every fractional number as Decimal; NaN and Infinity are rejected."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)


def dumps(value: Any) -> str:
    """Serialize to JSON, writing Decimals as exact JSON numbers (``Decimal('10.50')`` -> ``10.50``)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class DecimalJSONResponse(JSONResponse):
    """A JSON response whose Decimals stay exact."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
