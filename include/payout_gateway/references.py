"""Deterministic reference ids: one per logical payout, fixed before the first request."""

from __future__ import annotations

import hashlib

PREFIX = "af-"


def derive_reference_id(*parts: str) -> str:
    """A reference id made from ``parts`` (same parts -> same id, in any process, on any machine).

    The parts are length-prefixed before hashing, so ``("ab", "c")`` and ``("a", "bc")`` differ.
    The result is ``af-`` plus 40 hex digits (43 characters). Never pass a try number or a random
    value: a retry must derive the same id.
    """
    if not parts:
        raise ValueError("derive_reference_id needs at least one part")
    digest = hashlib.sha256()
    for part in parts:
        encoded = str(part).encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return PREFIX + digest.hexdigest()[:40]
