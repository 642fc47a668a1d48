"""Where and how to reach the gateway: base URL, Basic auth, TLS and proxies, for requests and aiohttp.

One :class:`Transport` is built from the Airflow connection (host, schema, port, login, password
and ``HttpHook``'s standard extras ``verify``/``verify_ssl``, ``cert``, ``proxies``/``proxy``,
``trust_env``) and gives both the sync session (:meth:`Transport.session`) and the per-request
options of the async client (:meth:`Transport.aiohttp_options`), so the operators and the
deferrable sensor reach the gateway the same way. No extra is ever sent as an HTTP header.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import requests
from requests.auth import HTTPBasicAuth

from payout_gateway.exceptions import PayoutGatewayError


def base_url_of(host: str, schema: str | None, port: int | None) -> str:
    """The API base URL as ``HttpHook`` builds it: ``host`` if it has a scheme, else ``schema://host``."""
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    if port:
        url = f"{url}:{port}"
    return url.rstrip("/")


@dataclass(frozen=True)
class Transport:
    """How to reach the gateway (see the module docstring)."""

    base_url: str
    login: str = field(repr=False)
    password: str = field(repr=False)
    #: True, False (no TLS check) or the path of a CA bundle.
    verify: bool | str = True
    #: A client certificate: a path, or (cert, key) paths.
    cert: str | tuple[str, str] | None = None
    #: Proxies by URL scheme, as requests takes them (``{"https": "http://proxy:3128"}``).
    proxies: Mapping[str, str] = field(default_factory=dict)
    #: Whether environment proxies (HTTPS_PROXY, NO_PROXY) and CA settings apply (requests' default).
    trust_env: bool = True

    @classmethod
    def from_connection(cls, connection: Any, extra: Mapping[str, Any], conn_id: str) -> Transport:
        """The transport of an Airflow connection; :class:`PayoutGatewayError` names what is missing."""
        if not connection.host:
            raise PayoutGatewayError(f"Connection {conn_id} has no host (the API base URL including /api)")
        if not connection.login or not connection.password:
            raise PayoutGatewayError(f"Connection {conn_id} needs login (account id) and password (API key)")
        verify = extra.get("verify", extra.get("verify_ssl", True))
        if isinstance(verify, str) and verify.strip().lower() in {"true", "false"}:
            verify = verify.strip().lower() == "true"
        if not isinstance(verify, bool | str):
            raise PayoutGatewayError(
                f"Connection {conn_id}: extra verify must be true, false or a CA bundle path"
            )
        cert = extra.get("cert")
        if isinstance(cert, list):
            cert = tuple(cert)
        proxies = extra.get("proxies", extra.get("proxy")) or {}
        if not isinstance(proxies, Mapping) or not all(isinstance(v, str) for v in proxies.values()):
            raise PayoutGatewayError(
                f"Connection {conn_id}: extra proxies must map a URL scheme to a proxy URL"
            )
        return cls(
            base_url=base_url_of(connection.host, connection.schema, connection.port),
            login=connection.login,
            password=connection.password,
            verify=verify,
            cert=cert or None,
            proxies=dict(proxies),
            trust_env=bool(extra.get("trust_env", True)),
        )

    def url(self, endpoint_or_link: str) -> str:
        """An absolute URL for an endpoint (``payout-invoices``) or a link the API returned.

        Links may be relative to the host (``/api/...``) or absolute; links to another host are
        refused, so credentials never leave the configured gateway.
        """
        if endpoint_or_link.startswith(("http://", "https://", "/")):
            url = urljoin(self.base_url + "/", endpoint_or_link)
            if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]:
                raise PayoutGatewayError("Refusing to follow a link to another host than the connection's")
            return url
        return f"{self.base_url}/{endpoint_or_link.lstrip('/')}"

    def session(self, headers: Mapping[str, str], *, authenticated: bool = True) -> requests.Session:
        """A requests session with these settings (Basic auth unless ``authenticated`` is False)."""
        session = requests.Session()
        session.headers.update(headers)
        session.auth = HTTPBasicAuth(self.login, self.password) if authenticated else None
        session.verify = self.verify
        session.cert = self.cert
        session.proxies.update(self.proxies)
        session.trust_env = self.trust_env
        return session

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp's ``ssl=`` takes for :attr:`verify` and :attr:`cert`."""
        if self.verify is False:
            return False
        context = ssl.create_default_context(cafile=self.verify if isinstance(self.verify, str) else None)
        if self.cert:
            certfile, keyfile = self.cert if isinstance(self.cert, tuple) else (self.cert, None)
            context.load_cert_chain(certfile, keyfile)
        return context

    def aiohttp_options(self, url: str, *, authenticated: bool = True) -> dict[str, Any]:
        """Keyword arguments of an aiohttp request to ``url``: auth, TLS and the scheme's proxy."""
        scheme = urlsplit(url).scheme
        proxy = self.proxies.get(scheme) or self.proxies.get("all")
        auth = (
            {"Authorization": aiohttp.encode_basic_auth(self.login, self.password)} if authenticated else {}
        )
        return {
            "headers": auth,
            "ssl": self.ssl_context,
            "proxy": proxy,
        }
