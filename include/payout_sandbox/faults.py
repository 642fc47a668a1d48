"""Fault injection: seeded rules that make chosen endpoints fail, slow down, drop or rate-limit."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
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
#: Kinds that answer at once, before the work is done (the first one drawn wins).
SHORT_CIRCUIT_KINDS = frozenset({"error_before", "rate_limit"})
#: Kinds that end the answer after the work is done (the first one drawn wins; delays add up).
AFTER_WORK_KINDS = frozenset({"error_after_commit", "reset"})


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


class FaultCounts(BaseModel):
    """What the injector saw since the start (or the last reset): calls and faults per endpoint."""

    requests: dict[str, int] = Field(description="Calls per endpoint that reached fault injection.")
    faulted_requests: dict[str, int] = Field(description="Calls per endpoint with at least one fault.")
    injected: dict[str, dict[str, int]] = Field(description="Faults applied, per endpoint and kind.")
    totals: dict[str, int] = Field(description="Sums: requests, faulted_requests, injected.")


def effective_rules(fired: list[FaultRule]) -> list[FaultRule]:
    """The drawn rules that take effect: the first short-circuit one alone, else every delay and
    the first of error_after_commit / reset (as the API applies them)."""
    first = next((r for r in fired if r.kind in SHORT_CIRCUIT_KINDS), None)
    if first is not None:
        return [first]
    ending = next((r for r in fired if r.kind in AFTER_WORK_KINDS), None)
    return [r for r in fired if r.kind == "delay"] + ([ending] if ending else [])


class FaultInjector:
    """Holds the current plan (in memory), draws per call which rules fire, and counts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._rng = random.Random(0)
        self._requests: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()
        self._injected: defaultdict[str, Counter[str]] = defaultdict(Counter)

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
        """The rules that take effect on this call of ``endpoint`` (each matching rule draws once,
        in order); the call and its faults are counted."""
        with self._lock:
            fired = [
                rule
                for rule in self._plan.rules
                if rule.endpoint in (endpoint, "*") and self._rng.random() < rule.rate
            ]
            applied = effective_rules(fired)
            self._requests[endpoint] += 1
            if applied:
                self._faulted[endpoint] += 1
            for rule in applied:
                self._injected[endpoint][rule.kind] += 1
            return applied

    def counts(self) -> FaultCounts:
        """Calls and applied faults per endpoint (and kind) since the start or the last reset."""
        with self._lock:
            injected = {e: dict(sorted(k.items())) for e, k in sorted(self._injected.items()) if k}
            return FaultCounts(
                requests=dict(sorted(self._requests.items())),
                faulted_requests=dict(sorted(self._faulted.items())),
                injected=injected,
                totals={
                    "requests": sum(self._requests.values()),
                    "faulted_requests": sum(self._faulted.values()),
                    "injected": sum(sum(k.values()) for k in self._injected.values()),
                },
            )

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faulted.clear()
            self._injected.clear()
