"""The connection's settings: one model, its bounds enforced when the hook loads the connection."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from payout_gateway.exceptions import PayoutGatewayError
from payout_gateway.get_provider_info import get_provider_info
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.settings import CONN_FIELD_KEYS, GatewaySettings


def connection_uri(extra: dict[str, Any]) -> str:
    return json.dumps(
        {
            "conn_type": "payout_gateway",
            "host": "http://127.0.0.1:9/api",
            "login": "merchant",
            "password": "sk_test_settings",
            "extra": extra,
        }
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"create_rounds": 0}, "create_rounds"),
        ({"create_rounds": "0"}, "create_rounds"),
        ({"max_retries": 21}, "max_retries"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "thirty"}, "timeout"),
        ({"retry_delay": 61}, "retry_delay"),
        ({"test_mode": "maybe"}, "test_mode"),
        ({"create_rounds": 2.5}, "create_rounds"),
    ],
)
def test_a_bad_extra_is_refused_on_load_naming_it(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], named: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", connection_uri(extra))
    hook = PayoutGatewayHook()
    with pytest.raises(PayoutGatewayError, match=f"invalid extras: {named}:") as err:
        hook.get_invoice("cpoi_x")  # nothing is sent: the settings fail first (the host is closed)
    assert str(extra[named]) not in str(err.value)  # the rule, never the value


async def test_the_async_path_validates_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", connection_uri({"create_rounds": 0}))
    with pytest.raises(PayoutGatewayError, match="invalid extras: create_rounds"):
        await PayoutGatewayHook().aget_invoice("cpoi_x")


def test_hook_arguments_are_held_to_the_same_bounds() -> None:
    with pytest.raises(PayoutGatewayError, match="create_rounds"):
        GatewaySettings.from_extra({}, {"create_rounds": 0})


def test_the_form_is_generated_from_the_model() -> None:
    (connection_type,) = get_provider_info()["connection-types"]
    fields = connection_type["conn-fields"]
    assert set(fields) == CONN_FIELD_KEYS == set(GatewaySettings.model_fields) - {"fingerprint_secret"}
    rounds = fields["create_rounds"]["schema"]
    model = GatewaySettings.model_fields["create_rounds"]
    assert rounds["type"] == ["integer", "null"]
    assert (rounds["minimum"], rounds["maximum"], rounds["default"]) == (1, 10, model.default)
    assert fields["fingerprint_key"]["schema"]["format"] == "password"
    assert fields["public_key"]["schema"]["format"] == "password"
    # every field may be empty on an existing connection (then the default applies)
    assert all("null" in f["schema"]["type"] for f in fields.values())


@pytest.mark.parametrize(
    "module", ["payout_gateway.exceptions", "payout_gateway.hooks", "payout_jobs.batch_job"]
)
def test_each_module_imports_first_in_a_fresh_process(module: str) -> None:
    """Airflow loads ``get_provider_info`` (and so the settings model) while it reads its
    configuration: importing any provider module first must not go round in a circle."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
