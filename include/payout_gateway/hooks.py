"""``PayoutGatewayHook``: the client of a Corefy-style payout gateway, built on ``HttpHook``.

Safety rules (see ``FACTS.md`` "Retrying safely"):

* Reads (GET, and the side-effect-free prerequest) retry with exponential backoff and jitter,
  a bounded number of times. A 429 with ``Retry-After`` (capped) closes the connection's shared
  rate-limit gate until then: every request of the connection in this process waits there (see
  :class:`payout_gateway.retries.RateLimitGate`), and it costs a read time, not attempts.
* ``deadline`` (``time.monotonic()``, set by a caller with a time budget such as a batch chunk):
  no request is sent and no wait ends after it (:class:`PayoutDeadlineError`, nothing sent).
* A POST is never retried blindly. ``create_invoice`` resolves an unknown outcome (5xx, timeout,
  reset, 429) by looking the ``reference_id`` up and adopting what exists; it creates again only
  when the lookup answered "absent". A 409 adopts the existing invoice. An existing invoice that
  is a different payout raises :class:`PayoutReferenceConflictError`.
* ``process_invoice`` processes only an invoice that a fresh read shows as ``created`` and reads
  again after an ambiguous answer before any second attempt.
* No connection extra is ever sent as an HTTP header; secrets and field values are never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk.log import amask_secret, mask_secret, redact
from requests.auth import HTTPBasicAuth
from tenacity import AsyncRetrying, RetryCallState, Retrying

from payout_gateway import DIST_NAME, __version__
from payout_gateway.exceptions import (
    PayoutConflictError,
    PayoutDuplicateReferenceError,
    PayoutGatewayApiError,
    PayoutGatewayError,
    PayoutOutcomeUnknownError,
    PayoutRateLimitError,
    PayoutReferenceConflictError,
    api_error_class,
)
from payout_gateway.fingerprint import (
    FingerprintCheck,
    check_fingerprint,
    fingerprint_secret,
    with_fingerprint,
)
from payout_gateway.models import (
    ApiErrorItem,
    CreatePayoutInvoiceRequest,
    InvoicePage,
    PayoutInvoice,
    PayoutService,
    PrerequestResult,
    ServicePage,
    parse_error_body,
)
from payout_gateway.money import dumps
from payout_gateway.redaction import redact_text, register_secret
from payout_gateway.retries import (
    PayoutDeadlineError,
    PayoutMalformedResponseError,
    RateLimitGate,
    WaitRetryAfterOrBackoff,
    is_transient,
    outcome_class,
    parse_retry_after,
    rate_limit_gate,
    retry_kwargs,
)
from payout_gateway.statuses import PayoutStatus
from payout_gateway.validation import coerce_request, quantize_amount

#: What Airflow's secrets masker writes in place of a value it masks.
MASKED = "***"

#: Connection extra keys this provider reads (declared as ``conn-fields``; never sent as headers).
CONN_FIELD_KEYS: frozenset[str] = frozenset(
    {
        "public_key",
        "test_mode",
        "timeout",
        "max_retries",
        "retry_delay",
        "retry_max_wait",
        "create_rounds",
        "dashboard_url_template",
        "fingerprint_key",
    }
)
MAX_PAGES = 100_000


@dataclass(frozen=True)
class GatewaySettings:
    """Client settings: hook arguments win over connection extras, which win over defaults."""

    timeout: float = 30.0
    max_retries: int = 5
    retry_delay: float = 0.5
    retry_max_wait: float = 30.0
    create_rounds: int = 3
    public_key: str | None = field(default=None, repr=False)
    test_mode: bool | None = None
    dashboard_url_template: str | None = None
    #: The ``fingerprint_key`` extra (a secret; see :mod:`payout_gateway.fingerprint`).
    fingerprint_key: str | None = field(default=None, repr=False)
    #: The HMAC key of payout fingerprints: from ``fingerprint_key``, else derived from the API key.
    fingerprint_secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_extra(
        cls, extra: Mapping[str, Any], overrides: Mapping[str, Any], *, api_key: str | None = None
    ) -> GatewaySettings:
        """Settings from a connection's extras and the hook's arguments (None = not given).

        ``api_key`` (the connection's password) keys payout fingerprints when ``fingerprint_key``
        is not set.
        """
        merged = {k: v for k, v in extra.items() if k in CONN_FIELD_KEYS and v not in (None, "")}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        key = str(merged["fingerprint_key"]) if "fingerprint_key" in merged else None
        test_mode = merged.get("test_mode")
        if isinstance(test_mode, str):
            test_mode = test_mode.strip().lower() in {"1", "true", "yes", "on"}
        return cls(
            timeout=float(merged.get("timeout", cls.timeout)),
            max_retries=int(merged.get("max_retries", cls.max_retries)),
            retry_delay=float(merged.get("retry_delay", cls.retry_delay)),
            retry_max_wait=float(merged.get("retry_max_wait", cls.retry_max_wait)),
            create_rounds=int(merged.get("create_rounds", cls.create_rounds)),
            public_key=merged.get("public_key"),
            test_mode=test_mode,
            dashboard_url_template=merged.get("dashboard_url_template"),
            fingerprint_key=key,
            fingerprint_secret=fingerprint_secret(key, api_key) if key or api_key else None,
        )


def _field_matches(sent: str, returned: Any) -> bool:
    """Whether a field value we sent matches what the gateway returned (possibly masked)."""
    returned = str(returned)
    if "*" not in returned:
        return returned == sent
    prefix = returned[: returned.index("*")]
    suffix = returned[returned.rindex("*") + 1 :]
    return sent.startswith(prefix) and sent.endswith(suffix) and len(sent) >= len(prefix) + len(suffix)


def payout_differences(request: CreatePayoutInvoiceRequest, invoice: PayoutInvoice) -> list[str]:
    """Names of what visibly differs between ``request`` and an existing ``invoice`` (never values).

    Compares amount, currency, service, test_mode (when both are known) and fields; masked fields
    (``512381******0000``) compare through their visible characters, which cannot tell two
    numbers with the same visible digits apart: the fingerprint (see ``PayoutGatewayHook._adopt``)
    is what proves a payout's identity.
    """
    differences = []
    if Decimal(invoice.amount) != Decimal(request.amount):
        differences.append("amount")
    if invoice.currency.upper() != request.currency.upper():
        differences.append("currency")
    if invoice.service and invoice.service != request.service:
        differences.append("service")
    if (
        request.test_mode is not None
        and invoice.test_mode is not None
        and invoice.test_mode != request.test_mode
    ):
        differences.append("test_mode")
    for key in sorted(set(request.fields) | set(invoice.fields)):
        returned = invoice.fields.get(key)
        if key not in request.fields:
            if returned not in (None, ""):
                differences.append(f"fields.{key}")
        elif (
            key in invoice.fields
            and returned is not None
            and not _field_matches(request.fields[key], returned)
        ):
            differences.append(f"fields.{key}")
    return differences


def mask_field_values(values: Iterable[str]) -> None:
    """Register card/account-like field values (6+ digits) with Airflow's secrets masker: only
    those it does not mask yet, all in one call.

    Airflow 3.3's ``mask_secret`` recompiles the masker's pattern and sends one message to the
    task's supervisor per call: a batch chunk registers its rows' values once (one message), and
    each row's create then finds them masked and sends nothing.
    """
    new = [v for v in values if sum(ch.isdigit() for ch in v) >= 6 and redact(v) != MASKED]
    if new:
        mask_secret(new)


class PayoutGatewayHook(HttpHook):
    """Interact with a payout gateway ("payouts by reference details").

    :param payout_gateway_conn_id: connection of type ``payout_gateway``: host = API base URL
        including ``/api``, login = account id, password = API key, extras as declared in
        ``get_provider_info`` (``public_key``, ``test_mode``, ``timeout``, ...).
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
        self._session: requests.Session | None = None
        self._public_session: requests.Session | None = None
        self._aconn: Any = None
        self._aiohttp: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------------------ connection
    @property
    def settings(self) -> GatewaySettings:
        """Settings resolved from the connection (loaded once)."""
        if self._settings is None:
            connection = self.get_connection(self.payout_gateway_conn_id)
            self._settings = self._load_settings(connection, connection.extra_dejson)
        return self._settings

    def _load_settings(self, connection: Any, extra: Mapping[str, Any]) -> GatewaySettings:
        if not connection.host:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} has no host (the API base URL including /api)"
            )
        if not connection.login or not connection.password:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} needs login (account id) and password (API key)"
            )
        settings = GatewaySettings.from_extra(extra, self._overrides, api_key=connection.password)
        for secret in (connection.password, settings.public_key, settings.fingerprint_key):
            if secret:
                register_secret(secret)
                mask_secret(secret)
        return settings

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """A session with Basic auth and the connection's TLS/proxy options (cached per hook)."""
        if headers or extra_options:
            return super().get_conn(headers, extra_options)
        if self._session is None:
            _ = self.settings  # validates the connection and registers its secrets first
            self._session = super().get_conn()
        return self._session

    def _get_public_session(self) -> requests.Session:
        """A session without Basic auth, for the public endpoints."""
        if self._public_session is None:
            _ = self.settings
            session = super().get_conn()
            session.auth = None
            self._public_session = session
        return self._public_session

    def _extract_auth(self, connection: Any) -> Any | None:
        return HTTPBasicAuth(connection.login, connection.password) if connection.login else None

    def _configure_session_from_extra(
        self, session: requests.Session, connection: Any, extra_options: dict[str, Any]
    ) -> requests.Session:
        """HttpHook's TLS/proxy handling, minus its habit of sending extras as HTTP headers."""
        headers_before = dict(session.headers)
        session = super()._configure_session_from_extra(session, connection, extra_options)
        session.headers.clear()
        session.headers.update(headers_before)
        return session

    def dashboard_url(self, invoice_id: str) -> str | None:
        """The invoice's dashboard URL from the ``dashboard_url_template`` extra (None if unset)."""
        template = self.settings.dashboard_url_template
        return template.replace("{invoice_id}", quote(invoice_id, safe="")) if template else None

    # --------------------------------------------------------------------------------- plumbing
    def _url(self, endpoint_or_link: str) -> str:
        """An absolute URL for an endpoint (``payout-invoices``) or a link the API returned.

        Links may be relative to the host (``/api/...``) or absolute; links to another host are
        refused, so credentials never leave the configured gateway.
        """
        if not self.base_url:
            self.get_conn()
        base = self.base_url.rstrip("/")
        if endpoint_or_link.startswith(("http://", "https://", "/")):
            url = urljoin(base + "/", endpoint_or_link)
            if urlsplit(url)[:2] != urlsplit(base)[:2]:
                raise PayoutGatewayError("Refusing to follow a link to another host than the connection's")
            return url
        return f"{base}/{endpoint_or_link.lstrip('/')}"

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
        session = self._get_public_session() if public else self.get_conn()
        url = self._url(endpoint)
        self.rate_limit_gate.wait(self.deadline)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise PayoutDeadlineError(f"{method} {urlsplit(url).path}: this job's time budget ran out")
        data = dumps(body).encode("utf-8") if body is not None else None
        request = requests.Request(
            method, url, params=dict(params or {}), data=data, headers=dict(headers or {})
        )
        prepared = session.prepare_request(request)
        environment = session.merge_environment_settings(
            prepared.url, session.proxies, session.stream, session.verify, session.cert
        )
        response = session.send(
            prepared,
            timeout=self.settings.timeout,
            allow_redirects=method == "GET",
            **environment,
        )
        try:
            self.check_response(response)
        except PayoutRateLimitError as exc:
            self._hold_gate(exc, f"{method} {urlsplit(url).path}")
            raise
        try:
            return response.json()
        except ValueError:
            raise PayoutMalformedResponseError(
                f"{method} {urlsplit(url).path} answered HTTP {response.status_code} without a JSON body"
            ) from None

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed :class:`PayoutGatewayApiError` subclass for an error status (3xx-5xx)."""
        if response.status_code < 300:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        raise self._api_error(
            response.status_code,
            body,
            response.text,
            response.headers.get("Retry-After"),
            response.request.method if response.request else "",
            urlsplit(response.url or "").path,
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
        """How long one read may spend waiting on 429s: as long as its attempts could wait."""
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

    def _read(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """A request without side effects, retried on transient failures (429s cost time, see
        :meth:`_rate_limit_seconds`; never past :attr:`deadline`)."""
        what = f"{method} {endpoint.split('?')[0]}"
        for attempt in Retrying(
            **retry_kwargs(
                attempts=self.settings.max_retries,
                wait=self._wait(),
                before_sleep=self._log_retry(what),
                rate_limit_seconds=self._rate_limit_seconds(),
                deadline=self.deadline,
            )
        ):
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

    def _log_post(
        self, action: str, reference_id: str | None, attempt: int, outcome: str, **extra: Any
    ) -> None:
        details = "".join(f" {k}={v}" for k, v in extra.items() if v is not None)
        self.log.info(
            "POST %s reference_id=%s attempt=%d outcome=%s%s", action, reference_id, attempt, outcome, details
        )

    # ------------------------------------------------------------------------------- reads
    def prerequest(self, currency: str, amount: Decimal | str | int | float) -> PrerequestResult:
        """``POST /payout-prerequest``: services offered for ``currency`` and ``amount`` (public key)."""
        if not self.settings.public_key:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} has no public_key extra; the prerequest needs it"
            )
        currency = currency.strip().upper()
        body = {
            "currency": currency,
            "amount": quantize_amount(amount, currency),
            "public_key": self.settings.public_key,
        }
        return PrerequestResult.model_validate(
            self._read("POST", "payout-prerequest", body=body, public=True)
        )

    def list_services(self, page_size: int | None = None) -> list[PayoutService]:
        """``GET /payout-services``, every page."""
        params = {"page[number]": 1, **({"page[size]": page_size} if page_size else {})}
        return [item for page in self._walk("payout-services", params, ServicePage) for item in page.items]

    def get_service(self, service_id: str) -> PayoutService:
        """``GET /payout-services/{id}``."""
        return PayoutService.model_validate(
            self._read("GET", f"payout-services/{quote(service_id, safe='')}")
        )

    def get_invoice(self, invoice_id: str) -> PayoutInvoice:
        """``GET /payout-invoices/{id}``."""
        return PayoutInvoice.model_validate(
            self._read("GET", f"payout-invoices/{quote(invoice_id, safe='')}")
        )

    def get_public_invoice(self, invoice_id: str) -> PayoutInvoice:
        """``GET /public/payout-invoices/{id}`` with the public key (flat shape, no fields)."""
        if not self.settings.public_key:
            raise PayoutGatewayError(f"Connection {self.payout_gateway_conn_id} has no public_key extra")
        return PayoutInvoice.model_validate(
            self._read(
                "GET",
                f"public/payout-invoices/{quote(invoice_id, safe='')}",
                public=True,
                headers={"X-Public-Key": self.settings.public_key},
            )
        )

    def list_invoices(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        reference_id: str | None = None,
    ) -> Iterator[PayoutInvoice]:
        """``GET /payout-invoices``, walking the cursor; each invoice once.

        ``filters`` become ``filter[key]=value`` query parameters.
        """
        params: dict[str, Any] = {f"filter[{k}]": v for k, v in (filters or {}).items()}
        if reference_id is not None:
            params["filter[reference_id]"] = reference_id
        if page_size:
            params["page[size]"] = page_size
        seen: set[str] = set()
        for page in self._walk("payout-invoices", params, InvoicePage):
            for invoice in page.items:
                if invoice.id not in seen:
                    seen.add(invoice.id)
                    yield invoice

    def find_invoices_by_reference(self, reference_id: str) -> list[PayoutInvoice]:
        """Every invoice whose ``reference_id`` is exactly ``reference_id``."""
        return [i for i in self.list_invoices(reference_id=reference_id) if i.reference_id == reference_id]

    def find_invoice_by_reference(self, reference_id: str) -> PayoutInvoice | None:
        """The invoice for ``reference_id``; None when the gateway answered that there is none.

        Raises :class:`PayoutDuplicateReferenceError` when there is more than one.
        """
        found = self.find_invoices_by_reference(reference_id)
        if len(found) > 1:
            raise PayoutDuplicateReferenceError(reference_id, [i.id for i in found])
        return found[0] if found else None

    def test_connection(self) -> tuple[bool, str]:
        """A harmless read: the first page of payout services."""
        try:
            page = ServicePage.model_validate(
                self._read("GET", "payout-services", params={"page[number]": 1, "page[size]": 1})
            )
        except Exception as exc:
            return False, redact_text(str(exc))
        return (
            True,
            f"Connection works: {page.total if page.total is not None else len(page.items)} payout services",
        )

    # ------------------------------------------------------------------------------ writes
    def create_invoice(
        self, request: CreatePayoutInvoiceRequest | Mapping[str, Any], *, lookup_first: bool = True
    ) -> PayoutInvoice:
        """Create a payout invoice, idempotently by ``reference_id``.

        :param request: the request model, or a dict of its attributes (as the create sample's
            ``data.attributes``) or the whole document.
        :param lookup_first: look the reference up before the first POST and adopt what exists
            (costs one GET; the gateway's 409 covers the same case when it enforces uniqueness).
        :return: the new invoice, or the existing one for this reference.
        :raises PayoutValidationError: the request is invalid; nothing was sent.
        :raises PayoutReferenceConflictError: the reference belongs to a different payout.
        :raises PayoutOutcomeUnknownError: the outcome stayed unknown; reconcile by reference.

        The invoice's ``metadata`` carries a keyed fingerprint of the payout
        (:mod:`payout_gateway.fingerprint`) beside the caller's keys; every adoption (found before
        the create, after a 409, after an unknown outcome) is checked against it.
        """
        req = self._prepare(request)
        reference_id = req.reference_id
        if lookup_first:
            existing = self.find_invoice_by_reference(reference_id)
            if existing is not None:
                return self._adopt(req, existing, "found before create")
        body = with_fingerprint(req, self._fingerprint_secret()).to_document()
        last: BaseException | None = None
        for attempt in range(1, self.settings.create_rounds + 1):
            try:
                document = self._send("POST", "payout-invoices", body=body)
                invoice = PayoutInvoice.model_validate(document)
            except PayoutConflictError as exc:
                self._log_post("create", reference_id, attempt, "conflict", http_status=exc.status_code)
                return self._adopt_after_conflict(req, exc)
            except Exception as exc:
                if not is_transient(exc):
                    status = exc.status_code if isinstance(exc, PayoutGatewayApiError) else None
                    self._log_post("create", reference_id, attempt, outcome_class(exc), http_status=status)
                    raise
                last = exc
                self._log_post("create", reference_id, attempt, f"unknown:{outcome_class(exc)}")
                time.sleep(self._wait().for_exception(exc, attempt))
                existing = self._lookup_after_ambiguous("create", reference_id, attempt, exc)
                if existing is not None:
                    return self._adopt(req, existing, "found after an unknown outcome")
                self.log.warning(
                    "create reference_id=%s: lookup answered absent after attempt %d; creating again",
                    reference_id,
                    attempt,
                )
                continue
            self._log_post("create", reference_id, attempt, "created", invoice_id=invoice.id)
            return invoice
        raise PayoutOutcomeUnknownError(
            "create",
            reference_id,
            self.settings.create_rounds,
            f"{outcome_class(last)}; lookups found nothing",
        )

    def _lookup_after_ambiguous(
        self, action: str, reference_id: str, attempt: int, cause: BaseException
    ) -> PayoutInvoice | None:
        try:
            return self.find_invoice_by_reference(reference_id)
        except PayoutDuplicateReferenceError:
            raise
        except Exception as exc:
            raise PayoutOutcomeUnknownError(
                action,
                reference_id,
                attempt,
                f"{outcome_class(cause)}, then the lookup failed: {outcome_class(exc)}",
            ) from exc

    def _adopt_after_conflict(
        self, req: CreatePayoutInvoiceRequest, exc: PayoutConflictError
    ) -> PayoutInvoice:
        existing: PayoutInvoice | None = None
        invoice_id = exc.meta("invoice_id")
        if invoice_id:
            existing = self.get_invoice(invoice_id)
            if existing.reference_id not in (None, req.reference_id):
                existing = None
        if existing is None:
            existing = self._lookup_after_ambiguous("create", req.reference_id, 1, exc)
        if existing is None:
            raise PayoutOutcomeUnknownError(
                "create", req.reference_id, 1, "409 conflict but no invoice was found"
            )
        return self._adopt(req, existing, "gateway answered 409")

    def _prepare(self, request: CreatePayoutInvoiceRequest | Mapping[str, Any]) -> CreatePayoutInvoiceRequest:
        """The request as a model, its field values masked, ``test_mode`` from the connection if unset."""
        req = coerce_request(request)
        mask_field_values(req.fields.values())
        if req.test_mode is None and self.settings.test_mode is not None:
            req = req.model_copy(update={"test_mode": self.settings.test_mode})
        return req

    def _fingerprint_secret(self) -> bytes:
        secret = self.settings.fingerprint_secret
        if not secret:
            raise PayoutGatewayError(
                f"Connection {self.payout_gateway_conn_id} has neither a fingerprint_key nor an API key"
            )
        return secret

    def adopt_invoice(
        self, request: CreatePayoutInvoiceRequest | Mapping[str, Any], invoice: PayoutInvoice, why: str
    ) -> PayoutInvoice:
        """Adopt ``invoice``, found by the caller (e.g. by an id kept across retries), for ``request``.

        The same checks as every adoption of :meth:`create_invoice`.

        :raises PayoutReferenceConflictError: ``invoice`` is not this payout (or cannot be proven to be).
        """
        return self._adopt(self._prepare(request), invoice, why)

    def _adopt(self, req: CreatePayoutInvoiceRequest, invoice: PayoutInvoice, why: str) -> PayoutInvoice:
        """Return ``invoice`` if it is ``req``'s payout, else raise PayoutReferenceConflictError.

        An invoice made by this provider carries a keyed fingerprint of the payout in its metadata:
        it must match. One without (made by another tool) can only be compared by what the gateway
        shows (masked fields by their visible characters); the log says so.
        """
        differences = payout_differences(req, invoice)
        check = check_fingerprint(invoice.metadata, req, self._fingerprint_secret())
        if check is FingerprintCheck.MISMATCH:
            differences.append("fingerprint")
        elif check is FingerprintCheck.ABSENT:
            self.log.warning(
                "Invoice %s has no payout fingerprint (made by another tool?): compared by amount, "
                "currency, service, test_mode and the visible part of masked fields only",
                invoice.id,
            )
            if req.test_mode is not None and invoice.test_mode is None and "test_mode" not in differences:
                differences.append("test_mode")  # unknown mode, no fingerprint: cannot be proven
        if differences:
            self.log.error(
                "reference_id=%s is used by invoice %s (status %s) for a different payout (differs in: %s)",
                req.reference_id,
                invoice.id,
                invoice.status.value,
                ", ".join(differences),
            )
            raise PayoutReferenceConflictError(
                req.reference_id,
                invoice.id,
                differences,
                invoice_status=invoice.status.value,
                invoice_resolution=invoice.resolution,
                invoice_amount=invoice.amount,
                invoice_currency=invoice.currency,
            )
        self.log.info(
            "Adopted invoice %s (status %s) for reference_id=%s: %s",
            invoice.id,
            invoice.status.value,
            req.reference_id,
            why,
        )
        return invoice

    def process_invoice(self, invoice_id: str, *, current: PayoutInvoice | None = None) -> PayoutInvoice:
        """Process an invoice that a fresh read shows as ``created``; never twice.

        Any other status returns the invoice unchanged. After an ambiguous answer the invoice is
        read again and processed again only if it is still ``created``. A 409 ("not processable")
        means processing is done or under way: the current invoice is returned.

        :param current: the invoice as the gateway just returned it (the create's answer, or the
            read that adopted it): no read before the first POST; the gateway's 409 covers a
            change since (another worker processed it).
        """
        fresh = current is not None and current.id == invoice_id
        invoice = current if fresh and current is not None else self.get_invoice(invoice_id)
        reference_id = invoice.reference_id
        if invoice.status is not PayoutStatus.CREATED:
            self.log.info("Invoice %s is %s: not processing it", invoice_id, invoice.status.value)
            return invoice
        path = f"payout-invoices/{quote(invoice_id, safe='')}/process"
        last: BaseException | None = None
        for attempt in range(1, self.settings.create_rounds + 1):
            try:
                processed = PayoutInvoice.model_validate(self._send("POST", path))
            except PayoutConflictError:
                self._log_post("process", reference_id, attempt, "conflict", invoice_id=invoice_id)
                current = self.get_invoice(invoice_id)
                self.log.info("Invoice %s is already %s", invoice_id, current.status.value)
                return current
            except Exception as exc:
                if not is_transient(exc):
                    self._log_post(
                        "process", reference_id, attempt, outcome_class(exc), invoice_id=invoice_id
                    )
                    raise
                last = exc
                self._log_post(
                    "process", reference_id, attempt, f"unknown:{outcome_class(exc)}", invoice_id=invoice_id
                )
                time.sleep(self._wait().for_exception(exc, attempt))
                try:
                    current = self.get_invoice(invoice_id)
                except Exception as read_exc:
                    raise PayoutOutcomeUnknownError(
                        "process", reference_id, attempt, f"{outcome_class(exc)}, then the read failed"
                    ) from read_exc
                if current.status is not PayoutStatus.CREATED:
                    self.log.info(
                        "Invoice %s is %s after an unknown outcome", invoice_id, current.status.value
                    )
                    return current
                continue
            self._log_post("process", reference_id, attempt, "ok", invoice_id=invoice_id)
            return processed
        raise PayoutOutcomeUnknownError(
            "process", reference_id, self.settings.create_rounds, f"{outcome_class(last)}; still created"
        )

    def create_and_process(
        self, request: CreatePayoutInvoiceRequest | Mapping[str, Any], *, lookup_first: bool = True
    ) -> PayoutInvoice:
        """Create idempotently, then process if the invoice is still ``created``."""
        invoice = self.create_invoice(request, lookup_first=lookup_first)
        if invoice.status is PayoutStatus.CREATED:
            return self.process_invoice(invoice.id, current=invoice)
        return invoice

    # ------------------------------------------------------------------------------- async
    async def _asettings(self) -> tuple[GatewaySettings, Any]:
        if self._aconn is None:
            connection = await self.aget_connection(self.payout_gateway_conn_id)
            extra = await connection.aextra_dejson()
            if not connection.host or not connection.login or not connection.password:
                raise PayoutGatewayError(
                    f"Connection {self.payout_gateway_conn_id} needs host, login (account id) and password"
                )
            self._settings = GatewaySettings.from_extra(extra, self._overrides, api_key=connection.password)
            for secret in (connection.password, self._settings.public_key, self._settings.fingerprint_key):
                if secret:
                    register_secret(secret)
                    await amask_secret(secret)
            self._aconn = connection
        assert self._settings is not None
        return self._settings, self._aconn

    async def __aenter__(self) -> PayoutGatewayHook:
        await self._asettings()
        if self._aiohttp is None:
            self._aiohttp = aiohttp.ClientSession(headers=self.default_headers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the async HTTP session (if open)."""
        if self._aiohttp is not None:
            await self._aiohttp.close()
            self._aiohttp = None

    async def _aget_json(self, endpoint: str) -> Any:
        settings, connection = await self._asettings()
        host = (
            connection.host
            if "://" in connection.host
            else f"{connection.schema or 'http'}://{connection.host}"
        )
        if connection.port:
            host = f"{host}:{connection.port}"
        url = f"{host.rstrip('/')}/{endpoint}"
        await self.rate_limit_gate.await_open(self.deadline)
        own_session = self._aiohttp is None
        session = self._aiohttp or aiohttp.ClientSession(headers=self.default_headers)
        try:
            async with session.get(
                url,
                headers={"Authorization": aiohttp.encode_basic_auth(connection.login, connection.password)},
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
            ) as response:
                text = await response.text()
                if response.status >= 300:
                    try:
                        body = json.loads(text)
                    except ValueError:
                        body = None
                    error = self._api_error(
                        response.status,
                        body,
                        text,
                        response.headers.get("Retry-After"),
                        "GET",
                        urlsplit(url).path,
                    )
                    if isinstance(error, PayoutRateLimitError):
                        self._hold_gate(error, f"GET {urlsplit(url).path}")
                    raise error
                try:
                    return json.loads(text)
                except ValueError:
                    raise PayoutMalformedResponseError(
                        f"GET {urlsplit(url).path} answered without JSON"
                    ) from None
        finally:
            if own_session:
                await session.close()

    async def aget_invoice(self, invoice_id: str) -> PayoutInvoice:
        """``GET /payout-invoices/{id}`` with aiohttp, retried like every read (for triggers)."""
        settings, _ = await self._asettings()
        endpoint = f"payout-invoices/{quote(invoice_id, safe='')}"
        async for attempt in AsyncRetrying(
            **retry_kwargs(
                attempts=settings.max_retries,
                wait=WaitRetryAfterOrBackoff(
                    settings.retry_delay,
                    settings.retry_max_wait,
                    gate=self.rate_limit_gate,
                    deadline=self.deadline,
                ),
                before_sleep=self._log_retry(f"GET {endpoint}"),
                rate_limit_seconds=self._rate_limit_seconds(),
                deadline=self.deadline,
            )
        ):
            with attempt:
                return PayoutInvoice.model_validate(await self._aget_json(endpoint))
        raise AssertionError("unreachable")  # pragma: no cover
