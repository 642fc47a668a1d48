"""The sandbox's settings: command-line options and credentials from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LOGIN = "merchant"
DEFAULT_PASSWORD = "sandbox-secret"  # noqa: S105 - the documented default of a local sandbox
DEFAULT_PUBLIC_KEY = "pk_test_sandbox"
DEFAULT_CALLBACK_SECRET = "sandbox-callback-secret"  # noqa: S105 - the documented default


@dataclass(frozen=True)
class Settings:
    """Everything a running sandbox needs to know."""

    db: Path
    seed: int = 0
    processing_delay: float = 2.0
    invoice_lifetime: float = 86400.0
    callback_retry_interval: float = 1.0
    callback_max_attempts: int = 5
    callback_timeout: float = 5.0
    sweep_interval: float = 0.1
    external_callbacks: bool = False
    #: The account's callback URL, for invoices created without their own ``callback_url``.
    callback_url: str | None = None
    login: str = DEFAULT_LOGIN
    password: str = DEFAULT_PASSWORD
    public_key: str = DEFAULT_PUBLIC_KEY
    callback_secret: str = DEFAULT_CALLBACK_SECRET

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"Settings(db={self.db!s}, seed={self.seed}, processing_delay={self.processing_delay})"

    @classmethod
    def credentials_from_env(cls) -> dict[str, str]:
        """Credentials from PAYOUT_SANDBOX_LOGIN / _PASSWORD / _PUBLIC_KEY / _CALLBACK_SECRET."""
        env = os.environ
        return {
            "login": env.get("PAYOUT_SANDBOX_LOGIN") or DEFAULT_LOGIN,
            "password": env.get("PAYOUT_SANDBOX_PASSWORD") or DEFAULT_PASSWORD,
            "public_key": env.get("PAYOUT_SANDBOX_PUBLIC_KEY") or DEFAULT_PUBLIC_KEY,
            "callback_secret": env.get("PAYOUT_SANDBOX_CALLBACK_SECRET") or DEFAULT_CALLBACK_SECRET,
        }
