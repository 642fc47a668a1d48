"""The Airflow plugin that mounts the Payouts view on the api-server and adds it to the UI's menu."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from payouts_view.app import PREFIX, create_app


class PayoutsViewPlugin(AirflowPlugin):
    """``/payouts`` on the api-server (behind Airflow's login; callbacks by signature) and a
    "Payouts" entry in the navigation bar."""

    name = "payouts_view"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "Payouts"}]
    external_views = [
        {
            "name": "Payouts",
            "href": f"{PREFIX}/",
            "destination": "nav",
            "url_route": "payouts",
        }
    ]
