"""Properties of the payout fingerprint: equal payouts agree, any one change differs, the key matters."""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from payout_gateway.fingerprint import (
    METADATA_KEY,
    FingerprintCheck,
    canonical_identity,
    check_fingerprint,
    fingerprint_secret,
    payout_fingerprint,
    with_fingerprint,
)
from payout_gateway.hooks import GatewaySettings
from payout_gateway.models import CreatePayoutInvoiceRequest
from payout_gateway.validation import coerce_request

KEY = fingerprint_secret(None, "sk_test_api_key")
CURRENCIES = {2: ["USD", "EUR", "GBP", "ZAR"], 0: ["JPY", "KRW", "CLP"]}

services = st.from_regex(r"[a-z0-9_]{1,64}", fullmatch=True)
texts = st.text(max_size=40)
field_maps = st.dictionaries(st.text(min_size=1, max_size=20), texts, max_size=5)
modes = st.sampled_from([True, False, None])


@st.composite
def payouts(draw: st.DrawFn) -> dict[str, Any]:
    """Attributes of a valid request: the amount fits the currency's decimals."""
    exponent = draw(st.sampled_from([0, 2]))
    return {
        "service": draw(services),
        "currency": draw(st.sampled_from(CURRENCIES[exponent])),
        "amount": Decimal(draw(st.integers(1, 10**12))).scaleb(-exponent),
        "test_mode": draw(modes),
        "fields": draw(field_maps),
    }


def request(payout: dict[str, Any], **extra: Any) -> CreatePayoutInvoiceRequest:
    attributes = {"reference_id": "ref-1", **payout, **extra}
    return coerce_request({k: v for k, v in attributes.items() if v is not None})


@given(payouts(), st.text(min_size=1, max_size=30), st.dictionaries(st.text(max_size=5), texts))
def test_equal_payouts_have_equal_fingerprints(payout: dict[str, Any], reference: str, meta: Any) -> None:
    first = payout_fingerprint(request(payout), KEY)
    # another reference, other metadata, the amount written differently: still the same payout
    same = {
        **payout,
        "amount": format(payout["amount"].normalize(), "f"),
        "currency": payout["currency"].lower(),
    }
    assert payout_fingerprint(request(same, reference_id=reference, metadata=meta), KEY) == first
    assert re.fullmatch(r"v1:[0-9a-f]{64}", first)


@given(payouts(), st.data())
def test_any_one_change_changes_the_fingerprint(payout: dict[str, Any], data: st.DataObject) -> None:
    what = data.draw(st.sampled_from(["service", "currency", "amount", "test_mode", "field", "new_field"]))
    changed = {**payout, "fields": dict(payout["fields"])}
    exponent = 0 if payout["currency"] in CURRENCIES[0] else 2
    if what == "service":
        changed["service"] = data.draw(services.filter(lambda s: s != payout["service"]))
    elif what == "currency":
        changed["currency"] = data.draw(
            st.sampled_from([c for c in CURRENCIES[exponent] if c != payout["currency"]])
        )
    elif what == "amount":
        step = Decimal(1).scaleb(-exponent)
        changed["amount"] = payout["amount"] + data.draw(st.sampled_from([step, -step, 100 * step]))
        if changed["amount"] <= 0:
            changed["amount"] = payout["amount"] + step
    elif what == "test_mode":
        changed["test_mode"] = data.draw(modes.filter(lambda m: m is not payout["test_mode"]))
    elif what == "field" and payout["fields"]:
        key = data.draw(st.sampled_from(sorted(payout["fields"])))
        changed["fields"][key] = data.draw(texts.filter(lambda v: v != payout["fields"][key]))
    else:
        key = data.draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in payout["fields"]))
        changed["fields"][key] = data.draw(texts)
    assert payout_fingerprint(request(changed), KEY) != payout_fingerprint(request(payout), KEY)


@given(payouts(), st.text(min_size=1), st.text(min_size=1))
def test_the_key_matters(payout: dict[str, Any], key_a: str, key_b: str) -> None:
    req = request(payout)
    if key_a != key_b:
        a, b = fingerprint_secret(key_a, "api"), fingerprint_secret(key_b, "api")
        assert payout_fingerprint(req, a) != payout_fingerprint(req, b)
    derived_a, derived_b = fingerprint_secret(None, key_a), fingerprint_secret(None, key_a + "x")
    assert payout_fingerprint(req, derived_a) != payout_fingerprint(req, derived_b)
    # keyed, never a bare hash of what is paid (card numbers are few enough to brute-force)
    identity = canonical_identity(req.service, req.currency, req.amount, req.test_mode, req.fields)
    assert payout_fingerprint(req, derived_a) != "v1:" + hashlib.sha256(identity).hexdigest()


def test_key_comes_from_fingerprint_key_else_from_the_api_key() -> None:
    derived = hmac.new(b"sk_live_1", b"payout-fingerprint-v1", hashlib.sha256).digest()
    assert GatewaySettings.from_extra({}, {}, api_key="sk_live_1").fingerprint_secret == derived
    dedicated = GatewaySettings.from_extra({"fingerprint_key": "own-secret"}, {}, api_key="sk_live_1")
    assert dedicated.fingerprint_secret == b"own-secret"
    assert "own-secret" not in repr(dedicated) and "sk_live_1" not in repr(dedicated)


def test_fingerprint_goes_beside_the_callers_metadata_and_is_checked() -> None:
    req = request(
        {"service": "test_usd", "currency": "USD", "amount": "10", "fields": {"account": "4000100010"}},
        metadata={"batch_id": "b1", "row": 3},
    )
    stamped = with_fingerprint(req, KEY)
    assert stamped.metadata == {"batch_id": "b1", "row": 3, METADATA_KEY: payout_fingerprint(req, KEY)}
    assert check_fingerprint(stamped.metadata, req, KEY) is FingerprintCheck.MATCH
    other = req.model_copy(update={"fields": {"account": "9999900010"}})
    assert check_fingerprint(stamped.metadata, other, KEY) is FingerprintCheck.MISMATCH
    assert check_fingerprint({"batch_id": "b1"}, req, KEY) is FingerprintCheck.ABSENT
    assert check_fingerprint(None, req, KEY) is FingerprintCheck.ABSENT
    for forged in ("", "v2:" + "0" * 64, 42, ["v1:"]):
        assert check_fingerprint({METADATA_KEY: forged}, req, KEY) is FingerprintCheck.MISMATCH
