"""Hostile trigger forms for ``payout_by_reference``: each conf is paid exactly as typed or refused
naming its field, and nothing is sent for a refused one.

The property runs the same steps as a trigger, on pure functions: Airflow's param validation (what
the REST API and the form do; a refusal creates no run), then the checks of ``discover_services``
(the amount, before its request) and ``validate_request`` against a real sandbox prerequest.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.validation import quantize_amount
from payout_jobs.single_payout import CURRENCIES, amount_text, request_from_params, validate_params

DAG_ID = "payout_by_reference"
PARAMS = ("service", "currency", "amount", "fields", "reference_id", "description", "customer", "test_mode")
CARDS = ("4111111111111111", "5123817234060000")
ARABIC_INDIC_123 = "\u0661\u0662\u0663"
FULL_WIDTH_12 = "\uff11\uff12"
ASCII_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,2})?")


def valid_conf(**overrides: Any) -> dict[str, Any]:
    conf = {"service": "test_usd", "currency": "USD", "amount": "10.00", "fields": {"account": "4000123412"}}
    return {**conf, **overrides}


def trigger(dag: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """What a trigger does with ``conf``: merge it into the DAG's params and validate them all
    (as ``create_dagrun`` does); ParamValidationError means no run is created."""
    params = copy.deepcopy(dag.params)
    for key, value in conf.items():
        if key in params:
            params.get_param(key).value = value
        else:
            params[key] = value
    return params.validate()


@pytest.fixture(scope="module")
def prerequests(session_sandbox: Any) -> dict[str, dict[str, Any]]:
    """The real sandbox's prerequest per currency, as the ``discover_services`` XCom holds it."""
    from payout_gateway.hooks import PayoutGatewayHook

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", session_sandbox.airflow_connection())
        hook = PayoutGatewayHook()
        return {c: hook.prerequest(c, "100").model_dump(mode="json") for c in CURRENCIES}


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", " ", "1e3", "1_000", " 10 ", "+10", "-0", "NaN", FULL_WIDTH_12, *CARDS]),
        st.sampled_from([ARABIC_INDIC_123, '=HYPERLINK("x")', "10\n", "9" * 5000, "{{ conn.password }}"]),
        st.text(max_size=10),
    )


MISSING = object()


@st.composite
def confs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid form with up to three params made hostile or left out."""
    valid = {
        "service": st.sampled_from(["test_usd", "card"]),
        "currency": st.just("USD"),
        "amount": st.from_regex(r"\A[1-9][0-9]{0,3}(\.[0-9]{1,2})?\Z"),
        "fields": st.integers(1, 10**15 - 1).map(lambda n: {"account": str(n)}),
        "reference_id": st.sampled_from(["", "order-1"]),
        "description": st.text(max_size=20),
        "customer": st.sampled_from([None, {"reference_id": "c-1"}]),
        "test_mode": st.just(True),
    }
    hostile = {
        "service": hostile_text() | st.none(),
        "currency": st.sampled_from([*CURRENCIES, "usd", "XXX", None]),
        "amount": st.one_of(
            hostile_text(),
            st.integers(-5, 10**6),
            st.floats(allow_nan=True, allow_infinity=True),
            st.none(),
            st.from_regex(r"\A[0-9]{1,16}(\.[0-9]{0,3})?\Z"),
        ),
        "fields": st.one_of(
            hostile_text().map(lambda v: {"account": v}),
            st.sampled_from([{}, {"account": 4000123412}, {CARDS[0]: "1"}, ["account"], "account:1", None]),
            st.sampled_from(CARDS).map(lambda c: {"card_number": c, "card_holder": "A B"}),
            st.dictionaries(hostile_text(), hostile_text(), max_size=3),
        ),
        "reference_id": hostile_text(),
        "description": hostile_text(),
        "customer": st.sampled_from([{}, "c-1", {"name": "x"}]),
        "test_mode": st.sampled_from([False, "yes", None]),
    }
    conf = {key: draw(strategy) for key, strategy in valid.items()}
    for key in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=3, unique=True)):
        value = draw(hostile[key] | st.just(MISSING))
        if value is MISSING:
            conf.pop(key)
        else:
            conf[key] = value
    return conf


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conf=confs())
def test_each_form_is_paid_as_typed_or_refused_naming_the_field(
    dagbag: Any, prerequests: dict[str, dict[str, Any]], conf: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    try:
        params = trigger(dagbag.get_dag(DAG_ID), conf)
    except ParamValidationError as exc:  # no run; REST answers 400 with this text
        named = re.match(r"Invalid input for param (\w+)", str(exc))
        assert named and named[1] in PARAMS, str(exc)
        event("refused by the form")
        return
    try:
        quantize_amount(amount_text(params), str(params.get("currency") or ""))  # discover_services' check
        reference = validate_params(prerequests[params["currency"]], params, DAG_ID, "manual__hostile")
        request = request_from_params(params, reference)
    except PayoutValidationError as exc:  # the validate task fails: nothing is created
        assert exc.field.split(".")[0] in PARAMS, exc.field
        assert not any(card in str(exc) for card in CARDS), str(exc)
        event("refused by the tasks")
        return
    event("paid")
    assert isinstance(conf["amount"], str) and ASCII_AMOUNT.fullmatch(conf["amount"])
    assert request.amount == Decimal(conf["amount"])  # paid exactly as typed
    assert request.fields == conf["fields"] and all(v.isascii() for v in request.fields.values())
    assert request.service == conf["service"]
    assert request.currency == conf.get("currency", "USD")


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({k: v for k, v in valid_conf().items() if k != "fields"}, "fields"),  # main paid the default
        ({k: v for k, v in valid_conf().items() if k != "amount"}, "amount"),
        ({k: v for k, v in valid_conf().items() if k != "service"}, "service"),
        (valid_conf(fields={}), "fields"),
        (valid_conf(fields={"account": 4000123412}), "fields"),
        (valid_conf(amount=12), "amount"),
        (valid_conf(amount=12.5), "amount"),
    ],
)
def test_a_form_without_beneficiary_or_amount_creates_no_run_and_sends_nothing(
    gateway_conn: Any, dagbag: Any, conf: dict[str, Any], field: str
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.get_dag(DAG_ID)
    for name in ("service", "amount", "fields"):
        assert not dag.params.get_param(name).has_value, f"{name} has a default"
    with pytest.raises(ParamValidationError, match=f"param {field}"):
        dag.test(run_conf=conf)
    assert gateway_conn.ledger()["references"] == {}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (valid_conf(fields=None), "fields"),
        (valid_conf(amount=""), "amount"),
        (valid_conf(amount=None), "amount"),
        (valid_conf(amount=ARABIC_INDIC_123), "amount"),
        (valid_conf(amount=12.5), "amount"),  # main: str(12.5) was accepted silently
        (valid_conf(amount=10), "amount"),
        (valid_conf(service=""), "service"),
        (valid_conf(fields={"account": ""}), "fields.account"),
        (valid_conf(fields={"account": ARABIC_INDIC_123}), "fields.account"),
        (valid_conf(amount="10\n"), "amount"),
        (valid_conf(service="4111 1111 1111 1111"), "service"),
        (valid_conf(reference_id="a" * 65), "reference_id"),
    ],
)
def test_the_validate_task_refuses_empty_or_non_text_values_itself(
    prerequests: dict[str, dict[str, Any]], params: dict[str, Any], field: str
) -> None:
    """Whatever the form let through, the server side refuses it naming the field."""
    with pytest.raises(PayoutValidationError) as caught:
        validate_params(prerequests["USD"], params, DAG_ID, "manual__x")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("conf", "refused_by"),
    [
        (valid_conf(currency="JPY", service="test_jpy", amount="10.00"), "discover_services"),  # main paid
        (valid_conf(amount=FULL_WIDTH_12), "discover_services"),  # main: \d took it, 12.00 was paid
        (valid_conf(reference_id="order 1"), "validate_request"),
        (valid_conf(fields={"account": ARABIC_INDIC_123}), "validate_request"),  # main paid
    ],
)
def test_a_refused_form_fails_the_run_before_any_create(
    gateway_conn: Any, run_dag: Callable[..., Any], conf: dict[str, Any], refused_by: str
) -> None:
    """The form checks types only (a JSON-schema refusal shows raw schema text and the value); the
    amount grammar and the service's (ASCII) regexp refuse these in the first tasks."""
    result = run_dag(DAG_ID, conf)

    assert result.state == "failed"
    assert result.tasks[refused_by] == "failed"
    assert result.tasks["create_invoice"] == "upstream_failed"
    assert gateway_conn.ledger()["references"] == {}
