"""The Airflow plugin that mounts the Payouts view on the api-server and adds it to the UI's menu.

Every Airflow process loads plugins (task runners do, for macros and listeners), so this module
imports nothing heavy: the FastAPI app is built on the api-server's first request to it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from payouts_view import PREFIX


class LazyPayoutsApp:
    """An ASGI app that builds :func:`payouts_view.app.create_app` when it first serves a request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from payouts_view.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class PayoutsViewPlugin(AirflowPlugin):
    """``/payouts`` on the api-server (behind Airflow's login; callbacks by signature) and a
    "Payouts" entry in the navigation bar."""

    name = "payouts_view"
    fastapi_apps = [{"app": LazyPayoutsApp(), "url_prefix": PREFIX, "name": "Payouts"}]
    external_views = [
        {
            "name": "Payouts",
            "href": f"{PREFIX}/",
            "destination": "nav",
            "url_route": "payouts",
        }
    ]
