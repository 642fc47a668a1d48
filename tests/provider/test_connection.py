"""The connection type as Airflow shows it, and what a connection's extras may (not) do."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest
from packaging.utils import canonicalize_name
from payout_gateway import DIST_NAME
from payout_gateway.get_provider_info import get_provider_info
from payout_gateway.hooks import CONN_FIELD_KEYS, GatewaySettings, PayoutGatewayHook

from .receiver import receiver

SAMPLES = Path(__file__).resolve().parents[1] / "spec_samples"


def test_provider_info_matches_airflow_schema_and_dist_name() -> None:
    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == canonicalize_name(DIST_NAME)


def test_airflow_lists_the_provider_and_its_form_fields() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert DIST_NAME in manager.providers
    widgets = {k for k in manager.connection_form_widgets if k.startswith("extra__payout_gateway__")}
    assert widgets == {f"extra__payout_gateway__{k}" for k in CONN_FIELD_KEYS}

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "payout_gateway"]
    assert meta.hook_class_name == "payout_gateway.hooks.PayoutGatewayHook"
    assert meta.hook_name == "Payout Gateway"
    standard = meta.standard_fields
    assert standard.host.title == "API base URL (including /api)"
    assert standard.login.title == "Account ID"
    assert standard.password.title == "API key"
    assert standard.port.hidden and standard.url_schema.hidden
    extra = meta.extra_fields
    assert set(extra) == CONN_FIELD_KEYS
    assert extra["public_key"]["schema"]["format"] == "password"
    assert extra["test_mode"]["schema"]["type"] == ["boolean", "null"]
    assert extra["timeout"]["value"] == 30
    assert "{invoice_id}" in extra["dashboard_url_template"]["description"]


def test_hook_identity() -> None:
    assert PayoutGatewayHook.conn_name_attr == "payout_gateway_conn_id"
    assert PayoutGatewayHook.default_conn_name == "payout_gateway_default"
    assert PayoutGatewayHook.conn_type == "payout_gateway"
    assert PayoutGatewayHook.hook_name == "Payout Gateway"


async def test_no_extra_is_ever_sent_as_a_header(monkeypatch: pytest.MonkeyPatch) -> None:
    invoice = json.loads((SAMPLES / "payout-invoices.get.private.response.json").read_text())
    prerequest = json.loads((SAMPLES / "prerequest.response.json").read_text())
    public = json.loads((SAMPLES / "payout-invoices.get.public.response.json").read_text())
    extras = {key: f"sentinel-{key}-value" for key in CONN_FIELD_KEYS}
    extras.update(
        timeout=5,
        max_retries=1,
        retry_delay=0,
        retry_max_wait=0,
        create_rounds=1,
        test_mode=True,
        unique_references=True,
    )
    extras["x_custom_header_like_secret"] = "sentinel-custom-value"
    with receiver(
        {
            "/api/payout-invoices/": invoice,
            "/api/payout-prerequest": prerequest,
            "/api/public/payout-invoices/": public,
        }
    ) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
            json.dumps(
                {
                    "conn_type": "payout_gateway",
                    "host": server.api_url,
                    "login": "merchant",
                    "password": "api-key-sentinel",
                    "extra": extras,
                }
            ),
        )
        hook = PayoutGatewayHook()
        hook.get_invoice("cpoi_VdHYVxq4RsLEebAQ")
        hook.prerequest("USD", 10)
        hook.get_public_invoice("cpoi_VdHYVxq4RsLEebAQ")
        await PayoutGatewayHook().aget_invoice("cpoi_VdHYVxq4RsLEebAQ")

    assert [(r.method, r.path.split("?")[0]) for r in server.requests] == [
        ("GET", "/api/payout-invoices/cpoi_VdHYVxq4RsLEebAQ"),
        ("POST", "/api/payout-prerequest"),
        ("GET", "/api/public/payout-invoices/cpoi_VdHYVxq4RsLEebAQ"),
        ("GET", "/api/payout-invoices/cpoi_VdHYVxq4RsLEebAQ"),
    ]
    for request in server.requests:
        names = {name.lower() for name in request.headers}
        assert not names & {k.lower() for k in extras}, request.headers
        values = [v for k, v in request.headers.items() if k != "X-Public-Key"]
        assert not any("sentinel-" in value for value in values), request.headers
    private, prereq, public_read, async_read = server.requests
    assert private.headers["Authorization"].startswith("Basic ")
    assert async_read.headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in prereq.headers and "Authorization" not in public_read.headers
    assert public_read.headers["X-Public-Key"] == "sentinel-public_key-value"
    assert json.loads(prereq.body) == {
        "currency": "USD",
        "amount": 10.00,
        "public_key": "sentinel-public_key-value",
    }
    assert b'"amount":10.00' in prereq.body


def test_airflow_cli_lists_the_provider() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    providers = {p["package_name"]: p for p in json.loads(result.stdout[result.stdout.index("[") :])}
    assert DIST_NAME in providers
    assert providers[DIST_NAME]["description"].startswith("Payouts by reference details")


def import_string(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_declared_module_and_class_imports() -> None:
    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for module in info[kind][0]["python-modules"]:
            importlib.import_module(module)
    for link in info["extra-links"]:
        import_string(link)
    (connection_type,) = info["connection-types"]
    hook_class = import_string(connection_type["hook-class-name"])
    assert hook_class.conn_type == connection_type["connection-type"]


def test_settings_precedence_hook_arguments_then_extras_then_defaults() -> None:
    extra = {"timeout": "12", "max_retries": 7, "test_mode": "false", "public_key": "pk_x", "verify": False}
    settings = GatewaySettings.from_extra(extra, {"timeout": 3.0, "max_retries": None})
    assert (settings.timeout, settings.max_retries, settings.test_mode, settings.public_key) == (
        3.0,
        7,
        False,
        "pk_x",
    )
    defaults = GatewaySettings.from_extra({}, {})
    assert (defaults.timeout, defaults.max_retries, defaults.create_rounds, defaults.retry_max_wait) == (
        30.0,
        5,
        3,
        30.0,
    )
