"""The ``payout-sandbox`` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from payout_sandbox.settings import Settings

DESCRIPTION = """\
A local sandbox of a Corefy-style "payouts by reference details" payout gateway.
Serves the API under http://HOST:PORT/api, the admin API under /_sandbox/ and the
OpenAPI schema at /openapi.json; keeps its state in the SQLite file --db.
"""

EPILOG = """\
public read (reconciliation), header X-Public-Key:
  GET /api/public/payout-invoices/{id}
  GET /api/public/payout-invoices?filter[reference_id]=REF

admin API (HTTP Basic, same credentials), for tests:
  PUT /_sandbox/faults     {"seed": N, "rules": [{"endpoint", "kind", "rate", "status", "seconds"}]}
  DELETE /_sandbox/faults  GET /_sandbox/ledger  POST /_sandbox/reset
  POST /_sandbox/clock {"advance_seconds": S}   PATCH /_sandbox/invoices/{id}   POST /_sandbox/invoices

environment:
  PAYOUT_SANDBOX_LOGIN            account id for HTTP Basic (default: merchant)
  PAYOUT_SANDBOX_PASSWORD         API key for HTTP Basic (default: sandbox-secret)
  PAYOUT_SANDBOX_PUBLIC_KEY       public key: prerequest body, X-Public-Key header
                                  (default: pk_test_sandbox)
  PAYOUT_SANDBOX_CALLBACK_SECRET  secret of the callbacks' X-Signature
                                  (default: sandbox-callback-secret)
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payout-sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port to listen on (default: %(default)s)")
    parser.add_argument(
        "--db",
        type=Path,
        required=True,
        metavar="PATH",
        help="SQLite file holding invoices and callbacks (created if missing)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random outcomes (test_details_success_rate, partial amounts); "
        "the same seed and reference_id give the same outcome (default: %(default)s)",
    )
    parser.add_argument(
        "--processing-delay",
        type=_positive_float,
        default=2.0,
        metavar="SECONDS",
        help="time an invoice stays 'processing' before its final status; 0 = final at once "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--invoice-lifetime",
        type=_positive_float,
        default=86400.0,
        metavar="SECONDS",
        help="an invoice not processed within this time becomes 'expired' (default: %(default)s)",
    )
    parser.add_argument(
        "--callback-retry-interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="unit of the callbacks' linear backoff: attempt n+1 waits n units after a non-200 "
        "(the vendor's +1, +2, +3 minutes, compressed; default: %(default)s)",
    )
    parser.add_argument(
        "--callback-max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="attempts per callback before giving up (default: %(default)s)",
    )
    parser.add_argument(
        "--callback-timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="timeout of one callback POST (default: %(default)s)",
    )
    parser.add_argument(
        "--external-callbacks",
        action="store_true",
        help="also send callbacks to URLs off this machine (default: only loopback URLs get them; "
        "others are logged as failed without a request)",
    )
    parser.add_argument(
        "--callback-url",
        default=None,
        metavar="URL",
        help="the account's callback URL: invoices created without a callback_url get their "
        "callbacks here (the vendor's account setting; default: none)",
    )
    parser.add_argument(
        "--sweep-interval",
        type=_positive_float,
        default=0.1,
        metavar="SECONDS",
        help="how often the background sweeper finishes due invoices and sends callbacks "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the options, then serve until interrupted."""
    args = build_parser().parse_args(argv)
    settings = Settings(
        db=args.db,
        seed=args.seed,
        processing_delay=args.processing_delay,
        invoice_lifetime=args.invoice_lifetime,
        callback_retry_interval=args.callback_retry_interval,
        callback_max_attempts=max(1, args.callback_max_attempts),
        callback_timeout=args.callback_timeout,
        sweep_interval=max(0.01, args.sweep_interval),
        external_callbacks=args.external_callbacks,
        callback_url=args.callback_url,
        **Settings.credentials_from_env(),
    )
    from payout_sandbox.server import serve  # the server (and uvicorn) only when serving

    serve(settings, args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
