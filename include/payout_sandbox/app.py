"""The FastAPI application: routers, error shapes, OpenAPI, and the background sweeper."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from payout_sandbox import admin, api, schemas
from payout_sandbox.callbacks import CallbackDispatcher
from payout_sandbox.errors import install_error_handlers
from payout_sandbox.faults import FaultInjector
from payout_sandbox.gateway import Gateway
from payout_sandbox.settings import Settings
from payout_sandbox.store import Store

log = logging.getLogger(__name__)


class Sweeper:
    """Finishes due invoices in the background so that their callbacks fire without a read."""

    def __init__(self, gateway: Gateway, interval: float) -> None:
        self.gateway = gateway
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payout-sandbox-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.gateway.settle_due()
            except Exception:
                log.exception("sweeper failed")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the request bodies that the routes parse themselves (for Decimal)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, defs = models_json_schema(
            [(m, "validation") for m in schemas.REQUEST_MODELS], ref_template="#/components/schemas/{model}"
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    """The sandbox app over the SQLite file in ``settings.db``."""
    store = Store(settings.db)
    gateway = Gateway(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = Sweeper(gateway, settings.sweep_interval)
        dispatcher = CallbackDispatcher(settings, store)
        sweeper.start()
        dispatcher.start()
        try:
            yield
        finally:
            sweeper.stop()
            dispatcher.stop()
            store.close()

    app = FastAPI(
        title="Payout gateway sandbox",
        version="1.0.0",
        description="A local sandbox of a Corefy-style 'payouts by reference details' gateway.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.faults = FaultInjector()
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(admin.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
