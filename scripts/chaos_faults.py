"""The fault plan of a chaos run, and the tally of the faults the sandbox injected.

Every endpoint gets every kind (``error_before``, ``error_after_commit``, ``delay``, ``reset``,
``rate_limit``) at the same rate per rule; the sandbox draws each rule per call, so with rate r a
call is faulted with probability ``1 - (1 - r) ** 5`` (r = 0.08: 34 %). ``delay`` sleeps longer
than the client's timeout, so the answer is lost after the work is done. The sandbox keeps its
counters in memory: :class:`FaultTally` adds up the counts of each sandbox lifetime (read them
before a restart).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import httpx
from payout_sandbox.faults import Endpoint, FaultKind

#: What the sandbox can fault (its own declarations, so a new endpoint or kind is covered at once).
ENDPOINTS: tuple[str, ...] = tuple(e for e in get_args(Endpoint) if e != "*")
KINDS: tuple[str, ...] = get_args(FaultKind)
#: Endpoints a batch run must call (the batch DAG never lists or reads services one by one).
BATCH_ENDPOINTS = ("prerequest", "create_invoice", "process_invoice", "get_invoice", "list_invoices")
ERROR_STATUSES = (500, 502, 503, 504)
MIN_FAULTED_SHARE = 0.30
#: An endpoint called at least this often must have seen every kind; one called less (the batch
#: asks the prerequest once per currency and amount) must have seen at least one fault.
EVERY_KIND_FROM_CALLS = 50


def faulted_share(rate_per_rule: float, kinds: int = len(KINDS)) -> float:
    """The share of calls with at least one fault drawn, for a rate per rule."""
    return 1 - (1 - rate_per_rule) ** kinds


def fault_plan(rate: float, delay_seconds: float, retry_after_seconds: float, seed: int) -> dict[str, Any]:
    """Every kind on every endpoint at ``rate`` (5xx statuses vary by endpoint)."""
    rules = []
    for n, endpoint in enumerate(ENDPOINTS):
        status = ERROR_STATUSES[n % len(ERROR_STATUSES)]
        rules += [
            {"endpoint": endpoint, "kind": "error_before", "rate": rate, "status": status},
            {"endpoint": endpoint, "kind": "error_after_commit", "rate": rate, "status": 500},
            {"endpoint": endpoint, "kind": "delay", "rate": rate, "seconds": delay_seconds},
            {"endpoint": endpoint, "kind": "reset", "rate": rate},
            {"endpoint": endpoint, "kind": "rate_limit", "rate": rate, "seconds": retry_after_seconds},
        ]
    return {"seed": seed, "rules": rules}


def put_plan(base_url: str, auth: tuple[str, str], plan: Mapping[str, Any]) -> None:
    httpx.put(f"{base_url}/_sandbox/faults", json=dict(plan), auth=auth, timeout=30).raise_for_status()


def clear_plan(base_url: str, auth: tuple[str, str]) -> None:
    httpx.delete(f"{base_url}/_sandbox/faults", auth=auth, timeout=30).raise_for_status()


def read_counts(base_url: str, auth: tuple[str, str]) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/_sandbox/faults/counts", auth=auth, timeout=30)
    response.raise_for_status()
    return response.json()


@dataclass
class FaultTally:
    """Calls and faults over one or more sandbox lifetimes."""

    requests: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, counts: Mapping[str, Any]) -> None:
        """Add what ``GET /_sandbox/faults/counts`` answered."""
        self.requests.update(counts.get("requests", {}))
        self.faulted.update(counts.get("faulted_requests", {}))
        for endpoint, kinds in counts.get("injected", {}).items():
            for kind, n in kinds.items():
                self.injected[(endpoint, kind)] += n

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    @property
    def share(self) -> float:
        """Faulted calls / calls."""
        total = sum(self.requests.values())
        return sum(self.faulted.values()) / total if total else 0.0

    def gaps(self, required: Iterable[str] = BATCH_ENDPOINTS) -> list[str]:
        """What the run did not cover: a required endpoint never called or never faulted, a kind
        never injected on an endpoint called often, or less than 30 % of the calls faulted."""
        problems = [f"{e} was never called" for e in required if not self.requests.get(e)]
        for endpoint in ENDPOINTS:
            calls = self.requests.get(endpoint, 0)
            if calls >= EVERY_KIND_FROM_CALLS:
                problems += [f"no {k} on {endpoint}" for k in KINDS if not self.injected.get((endpoint, k))]
            elif calls and not self.faulted.get(endpoint):
                problems.append(f"no fault on {endpoint} ({calls} calls)")
        if self.share < MIN_FAULTED_SHARE:
            problems.append(f"only {self.share:.0%} of the calls were faulted (need {MIN_FAULTED_SHARE:.0%})")
        return problems

    def table(self) -> list[str]:
        """One line per endpoint: calls, faulted calls, faults by kind."""
        out = []
        for endpoint in ENDPOINTS:
            calls = self.requests.get(endpoint, 0)
            kinds = " ".join(f"{k}={self.injected.get((endpoint, k), 0)}" for k in KINDS)
            share = f"{self.faulted.get(endpoint, 0) / calls:.0%}" if calls else "-"
            out.append(f"  {endpoint:<16} {calls:>6} calls, {share:>4} faulted: {kinds}")
        return out
