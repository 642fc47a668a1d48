"""The connection's settings: one pydantic model, its bounds, and the connection form built from it.

:class:`GatewaySettings` is the only declaration of the extras this provider reads. The form's
``conn-fields`` (:func:`conn_fields`, used by ``get_provider_info``) are generated from it, and the
hook validates a connection against it when it loads it (sync and async alike): a bad extra fails
with :class:`~payout_gateway.exceptions.PayoutGatewayError` naming the extra, never its value.
No extra is ever sent as an HTTP header. This module imports nothing of Airflow at load time
(Airflow imports it through ``get_provider_info`` while it reads its configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def _secret(title: str, description: str) -> Any:
    return Field(
        None, title=title, description=description, repr=False, json_schema_extra={"format": "password"}
    )


class GatewaySettings(BaseModel):
    """Client settings: hook arguments win over connection extras, which win over these defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    public_key: str | None = _secret(
        "Public key", "Public key (pk_test_... / pk_live_...) for the prerequest and the public invoice read."
    )
    test_mode: bool | None = Field(
        None,
        title="Test mode",
        description="Send test_mode=true on new invoices unless a request says otherwise.",
        json_schema_extra={"form_default": True},
    )
    timeout: float = Field(
        30.0,
        gt=0,
        le=600,
        title="Request timeout (seconds)",
        description="Seconds to wait for each HTTP answer.",
    )
    max_retries: int = Field(
        5,
        ge=1,
        le=20,
        title="Max attempts per read",
        description="Attempts for a GET (exponential backoff with jitter). POSTs are never retried blindly.",
    )
    retry_delay: float = Field(
        0.5,
        ge=0,
        le=60,
        title="First retry wait (seconds)",
        description="First backoff wait; it doubles on every attempt.",
    )
    retry_max_wait: float = Field(
        30.0,
        ge=0,
        le=600,
        title="Max retry wait (seconds)",
        description="Cap on any wait between attempts, Retry-After included.",
    )
    create_rounds: int = Field(
        3,
        ge=1,
        le=10,
        title="Create/process rounds",
        description="POST attempts for one create or process, each only after a read proved the earlier "
        "one did not take effect.",
    )
    unique_references: bool = Field(
        True,
        title="Gateway refuses duplicate references",
        description="The gateway answers 409 to a second invoice with the same reference_id (as the "
        "documented API does): a fresh batch's first try then creates without a lookup and adopts on "
        "the 409. Off: every create looks its reference up first (one more GET a payout).",
    )
    dashboard_url_template: str | None = Field(
        None,
        title="Dashboard URL template",
        description="Link to an invoice in the gateway dashboard; {invoice_id} is replaced.",
        json_schema_extra={"format": "url"},
    )
    fingerprint_key: str | None = _secret(
        "Payout fingerprint key",
        "Secret key of the fingerprint sent in each invoice's metadata, which proves on every "
        "re-attach that an existing invoice is the same payout. Empty = derived from the API key: "
        "then rotating the API key makes older invoices fail as reference conflicts; set this "
        "(and keep it) before rotating.",
    )
    callback_secret: str | None = _secret(
        "Callback secret (live)",
        "Secret of the gateway's live-mode callbacks (X-Signature), checked by POST /payouts/callbacks.",
    )
    test_callback_secret: str | None = _secret(
        "Callback secret (test mode)",
        "Secret of the gateway's test-mode callbacks (X-Signature), checked by POST /payouts/callbacks.",
    )
    #: The HMAC key of payout fingerprints: from ``fingerprint_key``, else derived from the API key.
    fingerprint_secret: bytes | None = Field(None, repr=False, exclude=True)

    @classmethod
    def from_extra(
        cls,
        extra: Mapping[str, Any],
        overrides: Mapping[str, Any],
        *,
        api_key: str | None = None,
        conn_id: str = "the connection",
    ) -> GatewaySettings:
        """Settings from a connection's extras and the hook's arguments (None = not given).

        Empty extras mean "not set". ``api_key`` (the connection's password) keys payout
        fingerprints when ``fingerprint_key`` is not set.

        :raises PayoutGatewayError: an extra (or argument) is out of bounds or of the wrong type;
            the message names it and its rule, never its value.
        """
        # imported here: Airflow imports this module (through get_provider_info) while it loads its
        # configuration, before the provider's Airflow-dependent modules can be imported
        from payout_gateway.exceptions import PayoutGatewayError
        from payout_gateway.fingerprint import fingerprint_secret

        merged = {k: v for k, v in extra.items() if k in CONN_FIELD_KEYS and v not in (None, "")}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        key = merged.get("fingerprint_key")
        secret = fingerprint_secret(str(key) if key else None, api_key) if key or api_key else None
        try:
            return cls.model_validate({**merged, "fingerprint_secret": secret})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
            raise PayoutGatewayError(f"Connection {conn_id} has invalid extras: {problems}") from None


#: Connection extra keys this provider reads (the form's ``conn-fields``).
CONN_FIELD_KEYS: frozenset[str] = frozenset(GatewaySettings.model_fields) - {"fingerprint_secret"}


def conn_fields() -> dict[str, dict[str, Any]]:
    """The connection form's ``conn-fields``, generated from :class:`GatewaySettings`.

    Every field may be empty (``null``: the default applies), so a stored connection that lacks
    an extra still shows and saves the field on its edit form.
    """
    schema = GatewaySettings.model_json_schema()["properties"]
    fields: dict[str, dict[str, Any]] = {}
    for name, info in GatewaySettings.model_fields.items():
        if name not in CONN_FIELD_KEYS:
            continue
        prop = schema[name]
        kinds = [p["type"] for p in prop.get("anyOf", [prop]) if "type" in p]
        field_schema: dict[str, Any] = {"type": [*dict.fromkeys(k for k in kinds if k != "null"), "null"]}
        for key in ("minimum", "exclusiveMinimum", "maximum", "format"):
            if key in prop:
                field_schema[key] = prop[key]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = extra.get("form_default", info.default)
        if default is not None:
            field_schema["default"] = default
        fields[name] = {"label": info.title, "description": info.description, "schema": field_schema}
    return fields
