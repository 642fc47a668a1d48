"""``PayoutGatewayHook``: the client of a Corefy-style payout gateway.

What it does lives in modules that say what they hold:

* :mod:`payout_gateway.settings`: the connection's extras (one pydantic model, with bounds; the
  connection form is generated from it), validated when the hook loads the connection;
* :mod:`payout_gateway.transport`: base URL, Basic auth, TLS and proxies, shared by the sync
  session and the async client (triggers);
* :mod:`payout_gateway.reads`: GETs and the prerequest, retried on transient failures;
* :mod:`payout_gateway.writes`: POSTs, never sent again before a read-back proved the earlier
  one did not take effect;
* :mod:`payout_gateway.identity`: whether an existing invoice is this payout, and masking.

This module holds the plumbing they share: one request (sync and async), typed errors, the
connection's shared rate-limit gate (a 429 with ``Retry-After`` makes every request of the
connection in this process wait; see :class:`payout_gateway.retries.RateLimitGate`) and the
caller's ``deadline`` (``time.monotonic()``; nothing is sent and no wait ends after it). No
connection extra is ever sent as an HTTP header; secrets and field values are never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk.log import amask_secret, mask_secret
from tenacity import RetryCallState, Retrying

from payout_gateway import DIST_NAME, __version__
from payout_gateway.exceptions import PayoutGatewayApiError, PayoutRateLimitError, api_error_class
from payout_gateway.identity import mask_field_values, payout_differences
from payout_gateway.models import ApiErrorItem, parse_error_body
from payout_gateway.money import dumps
from payout_gateway.reads import GatewayReads
from payout_gateway.redaction import register_secret
from payout_gateway.retries import (
    PayoutDeadlineError,
    PayoutMalformedResponseError,
    RateLimitGate,
    WaitRetryAfterOrBackoff,
    outcome_class,
    parse_retry_after,
    rate_limit_gate,
    retry_kwargs,
)
from payout_gateway.settings import CONN_FIELD_KEYS, GatewaySettings
from payout_gateway.transport import Transport
from payout_gateway.writes import GatewayWrites

__all__ = [
    "CONN_FIELD_KEYS",
    "GatewaySettings",
    "PayoutGatewayHook",
    "mask_field_values",
    "payout_differences",
]

MAX_PAGES = 100_000


class PayoutGatewayHook(GatewayReads, GatewayWrites, HttpHook):
    """Interact with a payout gateway ("payouts by reference details").

    :param payout_gateway_conn_id: connection of type ``payout_gateway``: host = API base URL
        including ``/api``, login = account id, password = API key, extras as declared by
        :class:`~payout_gateway.settings.GatewaySettings` (``public_key``, ``test_mode``,
        ``timeout``, ...) plus ``HttpHook``'s ``verify``, ``cert``, ``proxies``.
    :param timeout: seconds per HTTP request (default: connection extra ``timeout``, else 30).
    :param max_retries: attempts per read (default: extra ``max_retries``, else 5).
    :param retry_delay: first backoff wait in seconds (default 0.5).
    :param retry_max_wait: cap on any wait, ``Retry-After`` included (default 30).
    :param create_rounds: POST attempts for one create or process while each earlier attempt
        was proven not to have taken effect (default 3).
    """

    #: ``time.monotonic()`` after which nothing is sent (None: no limit); see the module docstring.
    deadline: float | None = None

    conn_name_attr = "payout_gateway_conn_id"
    default_conn_name = "payout_gateway_default"
    conn_type = "payout_gateway"
    hook_name = "Payout Gateway"
    default_headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"{DIST_NAME}/{__version__}",
    }

    def __init__(
        self,
        payout_gateway_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_max_wait: float | None = None,
        create_rounds: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=payout_gateway_conn_id, **kwargs)
        self.payout_gateway_conn_id = payout_gateway_conn_id
        self._overrides = {
            "timeout": timeout,
            "max_retries": max_retries,
            "retry_delay": retry_delay,
            "retry_max_wait": retry_max_wait,
            "create_rounds": create_rounds,
        }
        self._settings: GatewaySettings | None = None
        self._transport: Transport | None = None
        self._sessions: dict[bool, requests.Session] = {}
        self._aiohttp: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------------------ connection
    def _configure(self, connection: Any, extra: Mapping[str, Any]) -> list[str]:
        """Validate the connection into settings and a transport; return the secrets to mask."""
        conn_id = self.payout_gateway_conn_id
        transport = Transport.from_connection(connection, extra, conn_id)
        settings = GatewaySettings.from_extra(
            extra, self._overrides, api_key=connection.password, conn_id=conn_id
        )
        self._transport, self._settings = transport, settings
        secrets = [s for s in (connection.password, settings.public_key, settings.fingerprint_key) if s]
        for secret in secrets:
            register_secret(secret)
        return secrets

    @property
    def settings(self) -> GatewaySettings:
        """Settings resolved from the connection (loaded and validated once)."""
        if self._settings is None:
            connection = self.get_connection(self.payout_gateway_conn_id)
            for secret in self._configure(connection, connection.extra_dejson):
                mask_secret(secret)
        assert self._settings is not None
        return self._settings

    @property
    def transport(self) -> Transport:
        """How to reach the gateway (loaded with :attr:`settings`)."""
        _ = self.settings
        assert self._transport is not None
        return self._transport

    async def _aload(self) -> GatewaySettings:
        """:attr:`settings` for coroutines (the connection is read without blocking the loop)."""
        if self._settings is None:
            connection = await self.aget_connection(self.payout_gateway_conn_id)
            for secret in self._configure(connection, await connection.aextra_dejson()):
                await amask_secret(secret)
        assert self._settings is not None
        return self._settings

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """A session with Basic auth and the connection's TLS/proxy options (cached per hook)."""
        return self._session(authenticated=True)

    def _session(self, *, authenticated: bool) -> requests.Session:
        if authenticated not in self._sessions:
            self.base_url = self.transport.base_url
            self._sessions[authenticated] = self.transport.session(
                self.default_headers, authenticated=authenticated
            )
        return self._sessions[authenticated]

    def dashboard_url(self, invoice_id: str) -> str | None:
        """The invoice's dashboard URL from the ``dashboard_url_template`` extra (None if unset)."""
        template = self.settings.dashboard_url_template
        return template.replace("{invoice_id}", quote(invoice_id, safe="")) if template else None

    # ------------------------------------------------------------------------------- requests
    def _before_send(self, method: str, url: str) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise PayoutDeadlineError(f"{method} {urlsplit(url).path}: this job's time budget ran out")

    def _send(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        public: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One HTTP request; returns the decoded JSON body or raises a typed error.

        Waits at the connection's rate-limit gate first, and closes it on a 429 with
        ``Retry-After``. Past :attr:`deadline`, raises :class:`PayoutDeadlineError` unsent.
        """
        session = self._session(authenticated=not public)
        url = self.transport.url(endpoint)
        self.rate_limit_gate.wait(self.deadline)
        self._before_send(method, url)
        data = dumps(body).encode("utf-8") if body is not None else None
        request = requests.Request(
            method, url, params=dict(params or {}), data=data, headers=dict(headers or {})
        )
        prepared = session.prepare_request(request)
        environment = session.merge_environment_settings(
            prepared.url, session.proxies, session.stream, session.verify, session.cert
        )
        response = session.send(
            prepared, timeout=self.settings.timeout, allow_redirects=method == "GET", **environment
        )
        return self._decode(
            method, url, response.status_code, response.text, response.headers.get("Retry-After")
        )

    async def _asend(self, method: str, endpoint: str) -> Any:
        """:meth:`_send` with aiohttp, through the same transport (auth, TLS, proxy)."""
        settings = await self._aload()
        url = self.transport.url(endpoint)
        await self.rate_limit_gate.await_open(self.deadline)
        self._before_send(method, url)
        own_session = self._aiohttp is None
        session = self._aiohttp or self._new_aiohttp_session()
        try:
            async with session.request(
                method,
                url,
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
                allow_redirects=method == "GET",
                **self.transport.aiohttp_options(url),
            ) as response:
                text = await response.text()
                return self._decode(method, url, response.status, text, response.headers.get("Retry-After"))
        finally:
            if own_session:
                await session.close()

    def _decode(self, method: str, url: str, status: int, text: str, retry_after: str | None) -> Any:
        """The JSON body of a success, or the typed error of an error status (3xx-5xx)."""
        path = urlsplit(url).path
        if status >= 300:
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            error = self._api_error(status, body, text, retry_after, method, path)
            if isinstance(error, PayoutRateLimitError):
                self._hold_gate(error, f"{method} {path}")
            raise error
        try:
            return json.loads(text)
        except ValueError:
            raise PayoutMalformedResponseError(
                f"{method} {path} answered HTTP {status} without a JSON body"
            ) from None

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed :class:`PayoutGatewayApiError` subclass for an error status (3xx-5xx)."""
        if response.status_code >= 300:
            method = response.request.method if response.request else ""
            self._decode(
                method or "",
                response.url or "",
                response.status_code,
                response.text,
                response.headers.get("Retry-After"),
            )

    @staticmethod
    def _api_error(
        status: int, body: Any, text: str, retry_after: str | None, method: str | None, path: str
    ) -> PayoutGatewayApiError:
        errors = parse_error_body(body)
        if not errors and text:
            errors = [ApiErrorItem(detail=text[:200])]
        return api_error_class(status)(
            status, errors, method=method or "", endpoint=path, retry_after=parse_retry_after(retry_after)
        )

    # ---------------------------------------------------------------------------- retries
    @property
    def rate_limit_gate(self) -> RateLimitGate:
        """The connection's rate-limit gate, shared by every hook of the connection in this process."""
        return rate_limit_gate(self.payout_gateway_conn_id)

    def _hold_gate(self, exc: PayoutRateLimitError, what: str) -> None:
        """A 429: close the gate for ``Retry-After`` (capped), else for the first backoff wait."""
        seconds = exc.retry_after if exc.retry_after is not None else self.settings.retry_delay
        closed_for = self.rate_limit_gate.hold(min(float(seconds), self.settings.retry_max_wait))
        self.log.warning(
            "%s rate limited (429): every request of %s waits %.2f s",
            what,
            self.payout_gateway_conn_id,
            closed_for,
        )

    def _rate_limit_seconds(self) -> float:
        """How long one request may spend waiting on 429s: as long as its attempts could wait."""
        return self.settings.max_retries * self.settings.retry_max_wait

    def _wait(self) -> WaitRetryAfterOrBackoff:
        return WaitRetryAfterOrBackoff(
            self.settings.retry_delay,
            self.settings.retry_max_wait,
            gate=self.rate_limit_gate,
            deadline=self.deadline,
        )

    def _log_retry(self, what: str) -> Any:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, PayoutRateLimitError) and exc.retry_after is not None:
                self.log.info(
                    "%s rate limited, attempt %d; retrying once the gate opens", what, state.attempt_number
                )
                return
            self.log.warning(
                "%s failed (%s), attempt %d/%d; retrying in %.2f s",
                what,
                outcome_class(exc),
                state.attempt_number,
                self.settings.max_retries,
                state.upcoming_sleep,
            )

        return before_sleep

    def _read_retry(self, what: str) -> dict[str, Any]:
        """Tenacity arguments of one read (sync or async)."""
        return retry_kwargs(
            attempts=self.settings.max_retries,
            wait=self._wait(),
            before_sleep=self._log_retry(what),
            rate_limit_seconds=self._rate_limit_seconds(),
            deadline=self.deadline,
        )

    def _read(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """A request without side effects, retried on transient failures (429s cost time, see
        :meth:`_rate_limit_seconds`; never past :attr:`deadline`)."""
        for attempt in Retrying(**self._read_retry(f"{method} {endpoint.split('?')[0]}")):
            with attempt:
                return self._send(method, endpoint, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    def _walk(self, endpoint: str, params: Mapping[str, Any] | None, page_model: type) -> Iterator[Any]:
        """Pages of a list endpoint, following ``links.next`` until it is empty."""
        seen: set[str] = set()
        document = self._read("GET", endpoint, params=params)
        for _ in range(MAX_PAGES):
            page = page_model.model_validate(document)
            yield page
            link = page.next_link
            if not link or link in seen:
                return
            seen.add(link)
            document = self._read("GET", link)

    # ------------------------------------------------------------------------------- async
    def _new_aiohttp_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers=self.default_headers, trust_env=self.transport.trust_env)

    async def __aenter__(self) -> PayoutGatewayHook:
        await self._aload()
        if self._aiohttp is None:
            self._aiohttp = self._new_aiohttp_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the async HTTP session (if open)."""
        if self._aiohttp is not None:
            await self._aiohttp.close()
            self._aiohttp = None
