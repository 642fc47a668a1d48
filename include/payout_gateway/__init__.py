"""Airflow provider for Corefy-style "payouts by reference details" gateways."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DIST_NAME = "airflow-provider-payout-gateway"

try:
    __version__ = version(DIST_NAME)
except PackageNotFoundError:  # not installed (source checkout on sys.path)
    __version__ = "0.0.0"

__all__ = ["DIST_NAME", "__version__"]
