"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Airflow 3.3 builds the connection form from ``connection-types`` below (``ui-field-behaviour``
and ``conn-fields``); it does not import the hook for that.
"""

from __future__ import annotations

from typing import Any

from payout_gateway import DIST_NAME, __version__

INTEGRATION = "Payout Gateway"


def _field(label: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "public_key": _field(
        "Public key",
        "Public key (pk_test_... / pk_live_...) for the prerequest and the public invoice read.",
        {"type": ["string", "null"], "format": "password"},
    ),
    "test_mode": _field(
        "Test mode",
        "Send test_mode=true on new invoices unless a request says otherwise.",
        {"type": ["boolean", "null"], "default": True},
    ),
    "timeout": _field(
        "Request timeout (seconds)",
        "Seconds to wait for each HTTP answer.",
        {"type": ["number", "null"], "default": 30, "minimum": 1, "maximum": 600},
    ),
    "max_retries": _field(
        "Max attempts per read",
        "Attempts for a GET (exponential backoff with jitter). POSTs are never retried blindly.",
        {"type": ["integer", "null"], "default": 5, "minimum": 1, "maximum": 20},
    ),
    "retry_delay": _field(
        "First retry wait (seconds)",
        "First backoff wait; it doubles on every attempt.",
        {"type": ["number", "null"], "default": 0.5, "minimum": 0, "maximum": 60},
    ),
    "retry_max_wait": _field(
        "Max retry wait (seconds)",
        "Cap on any wait between attempts, Retry-After included.",
        {"type": ["number", "null"], "default": 30, "minimum": 0, "maximum": 600},
    ),
    "create_rounds": _field(
        "Create/process rounds",
        "POST attempts for one create or process, each only after a read proved the earlier one "
        "did not take effect.",
        {"type": ["integer", "null"], "default": 3, "minimum": 1, "maximum": 10},
    ),
    "dashboard_url_template": _field(
        "Dashboard URL template",
        "Link to an invoice in the gateway dashboard; {invoice_id} is replaced.",
        {"type": ["string", "null"], "format": "url"},
    ),
    "callback_secret": _field(
        "Callback secret (live)",
        "Secret of the gateway's live-mode callbacks (X-Signature), checked by POST /payouts/callbacks.",
        {"type": ["string", "null"], "format": "password"},
    ),
    "test_callback_secret": _field(
        "Callback secret (test mode)",
        "Secret of the gateway's test-mode callbacks (X-Signature), checked by POST /payouts/callbacks.",
        {"type": ["string", "null"], "format": "password"},
    ),
    "fingerprint_key": _field(
        "Payout fingerprint key",
        "Secret key of the fingerprint sent in each invoice's metadata, which proves on every "
        "re-attach that an existing invoice is the same payout. Empty = derived from the API key: "
        "then rotating the API key makes older invoices fail as reference conflicts; set this "
        "(and keep it) before rotating.",
        {"type": ["string", "null"], "format": "password"},
    ),
}


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata (``package-name`` must equal the distribution name)."""
    return {
        "package-name": DIST_NAME,
        "name": INTEGRATION,
        "description": "Payouts by reference details through a Corefy-style payout gateway.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.corefy.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["payout_gateway.hooks"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["payout_gateway.operators"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["payout_gateway.sensors"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["payout_gateway.triggers"]}],
        "extra-links": ["payout_gateway.links.PayoutInvoiceDashboardLink"],
        "config": {
            "payout_gateway": {
                "description": "Defaults of the payout gateway provider.",
                "options": {
                    "default_deferrable": {
                        "description": "Whether PayoutInvoiceSensor defers by default. Airflow's own "
                        "[operators] default_deferrable turns deferral on when set to True; this option "
                        "(default True) decides otherwise.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "payout_gateway",
                "hook-class-name": "payout_gateway.hooks.PayoutGatewayHook",
                "hook-name": "Payout Gateway",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API base URL (including /api)",
                        "login": "Account ID",
                        "password": "API key",
                    },
                    "placeholders": {
                        "host": "https://api.example.com/api",
                        "login": "account id",
                        "password": "sk_test_...",
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
