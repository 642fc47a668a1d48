"""Serving the app with uvicorn, on an HTTP protocol that lets the app drop a connection (reset fault)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from payout_sandbox.api import TRANSPORT_KEY
from payout_sandbox.app import create_app
from payout_sandbox.settings import Settings


class DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the connection's transport to the app in the ASGI scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[TRANSPORT_KEY] = transport
            await inner(scope, receive, send)

        self.app = app


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    """Run the sandbox until interrupted (SIGINT / SIGTERM)."""
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        http=DroppableH11Protocol,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
