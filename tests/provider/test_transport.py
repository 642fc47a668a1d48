"""The deferrable sensor's trigger reaches the gateway like the operators do: TLS checks, a CA
bundle and a proxy from the connection's extras (one transport for sync and async).

Real parts: the sandbox behind a TLS front (self-signed certificate made here) or behind a
forward proxy, both started on 127.0.0.1 by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from payout_gateway.hooks import PayoutGatewayHook

from .test_trigger import events_of, payout, trigger_for

ONE_TRY = {"timeout": 2.0, "max_retries": 1, "retry_delay": 0.01, "retry_max_wait": 0.05, "create_rounds": 1}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "payout sandbox test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def tcp_front(
    target_port: int, *, tls: ssl.SSLContext | None = None, seen: list[bytes] | None = None
) -> AsyncIterator[int]:
    """A server on 127.0.0.1 that relays each connection to ``target_port``: TLS-terminating with
    ``tls``; with ``seen``, a forward proxy (it records each connection's first request line)."""

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        first = await client_reader.readline()
        if seen is not None:  # a proxy: record the absolute-form target, pass it on in origin form
            seen.append(first.strip())
            method, target, version = first.split(b" ", 2)
            first = b" ".join([method, b"/" + target.split(b"/", 3)[3], version])
            first += b"Connection: close\r\n"  # one request a connection: each one is seen here
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        upstream_writer.write(first)
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def connect(monkeypatch: pytest.MonkeyPatch, sandbox: Any, host: str, **extra: Any) -> None:
    document = json.loads(sandbox.airflow_connection(**extra))
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", json.dumps({**document, "host": host}))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.mark.parametrize("verify", ["false", "ca_bundle", "default"])
async def test_trigger_honours_the_tls_extras(
    hook: PayoutGatewayHook,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    certificate: tuple[Path, ssl.SSLContext],
    verify: str,
) -> None:
    invoice_id = payout(hook, f"ref-tls-{verify}")
    cert, server_tls = certificate
    extra = {"false": {"verify": False}, "ca_bundle": {"verify": str(cert)}, "default": {}}[verify]
    async with tcp_front(sandbox.port, tls=server_tls) as port:
        connect(monkeypatch, sandbox, f"https://127.0.0.1:{port}/api", **extra)
        (event,) = await events_of(trigger_for([invoice_id], hook_params=ONE_TRY, max_consecutive_failures=1))
        sync_ok, sync_message = await asyncio.to_thread(PayoutGatewayHook(**ONE_TRY).test_connection)
    if verify == "default":  # a self-signed certificate is refused unless the connection says otherwise
        assert event["status"] == "error" and "connection_error" in event["message"]
        assert not sync_ok and "CERTIFICATE_VERIFY_FAILED" in sync_message
    else:
        assert event["status"] == "success", event["message"]
        assert [i["id"] for i in event["invoices"]] == [invoice_id]
        assert sync_ok, sync_message


async def test_trigger_goes_through_the_proxy_extra(
    hook: PayoutGatewayHook, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice_id = payout(hook, "ref-proxy")
    seen: list[bytes] = []
    async with tcp_front(sandbox.port, seen=seen) as proxy_port:
        # a request that went through the proxy names its target in full (absolute form)
        connect(
            monkeypatch,
            sandbox,
            f"http://127.0.0.1:{sandbox.port}/api",
            proxies={"http": f"http://127.0.0.1:{proxy_port}"},
        )
        (event,) = await events_of(trigger_for([invoice_id], hook_params=ONE_TRY))
    assert event["status"] == "success", event["message"]
    assert seen and all(line.startswith(b"GET http://127.0.0.1:") for line in seen)
    assert seen[0].startswith(
        f"GET http://127.0.0.1:{sandbox.port}/api/payout-invoices/{invoice_id}".encode()
    )
