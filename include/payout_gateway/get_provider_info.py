"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Airflow 3.3 builds the connection form from ``connection-types`` below (``ui-field-behaviour``
and ``conn-fields``, generated from :class:`payout_gateway.settings.GatewaySettings`); it does not
import the hook for that.
"""

from __future__ import annotations

from typing import Any

from payout_gateway import DIST_NAME, __version__
from payout_gateway.settings import conn_fields

INTEGRATION = "Payout Gateway"


#: The connection form's extra fields, generated from the settings model (one declaration).
CONN_FIELDS: dict[str, dict[str, Any]] = conn_fields()


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
