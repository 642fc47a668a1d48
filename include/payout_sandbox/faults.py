"""Fault injection: seeded rules that make chosen endpoints fail, slow down, drop or rate-limit."""

from __future__ import annotations

import random
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Endpoint = Literal[
    "prerequest",
    "list_services",
    "get_service",
    "create_invoice",
    "process_invoice",
    "get_invoice",
    "list_invoices",
    "*",
]
FaultKind = Literal["error_before", "error_after_commit", "delay", "reset", "rate_limit"]


class FaultRule(BaseModel):
    """One rule: on ``endpoint``, with probability ``rate``, apply ``kind``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: Endpoint = Field(description="Endpoint name, or * for all of them.")
    kind: FaultKind = Field(
        description="error_before: fail without doing anything; error_after_commit: do the work, then "
        "answer 5xx; delay: do the work, sleep `seconds`, then answer; reset: do the work, then drop "
        "the TCP connection without an answer; rate_limit: 429 with Retry-After = `seconds`."
    )
    rate: float = Field(1.0, ge=0, le=1, description="Probability (0..1) that the rule fires on a call.")
    status: int | None = Field(
        None, description="HTTP status for error_* (500..504, default 500) and rate_limit (429)."
    )
    seconds: float = Field(1.0, ge=0, le=120, description="Sleep of delay; Retry-After of rate_limit.")

    @model_validator(mode="after")
    def _status_fits_kind(self) -> FaultRule:
        if self.kind in ("error_before", "error_after_commit"):
            self.status = self.status or 500
            if not 500 <= self.status <= 504:
                raise ValueError("status must be 500..504 for error faults")
        elif self.kind == "rate_limit":
            self.status = self.status or 429
            if self.status != 429:
                raise ValueError("status must be 429 for rate_limit")
        return self


class FaultPlan(BaseModel):
    """The body of ``PUT /_sandbox/faults``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the draws: the same seed and calls give the same faults.")
    rules: list[FaultRule] = Field(default_factory=list)


class FaultInjector:
    """Holds the current plan (in memory) and draws, per call, which rules fire."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._rng = random.Random(0)

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)

    def clear(self) -> None:
        self.set(FaultPlan())

    def draw(self, endpoint: str) -> list[FaultRule]:
        """The rules that fire on this call of ``endpoint`` (each matching rule draws once, in order)."""
        with self._lock:
            return [
                rule
                for rule in self._plan.rules
                if rule.endpoint in (endpoint, "*") and self._rng.random() < rule.rate
            ]
