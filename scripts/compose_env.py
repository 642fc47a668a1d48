"""Write the ``.env`` of docker-compose.yaml from ``.env.example``, with fresh random secrets.

    python3 scripts/compose_env.py            # writes .env (mode 600); refuses to overwrite one
    python3 scripts/compose_env.py --force    # replaces it (new secrets: the database's password
                                              # is only set when its volume is first created)

Every ``change-me`` value is replaced: the Fernet key by a valid key, the JWT secret by 64 random
bytes, passwords by URL-safe random text. While the DAGs use the sandbox, the gateway API key
and the sandbox's password get the same value. ``AIRFLOW_UID`` becomes your user id (unless root).
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "change-me"


def secret_for(name: str) -> str:
    """A fresh value for the placeholder of ``name``."""
    if name == "AIRFLOW_FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if name == "AIRFLOW_JWT_SECRET":
        return secrets.token_urlsafe(64)
    return secrets.token_urlsafe(18)


def render(example: str, uid: int) -> str:
    """``example`` with every placeholder replaced (and the sandbox key shared with the gateway's)."""
    values: dict[str, str] = {}
    lines = []
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            if value == PLACEHOLDER:
                value = values.get("PAYOUT_GATEWAY_API_KEY") if name == "SANDBOX_PASSWORD" else None
                value = value or secret_for(name)
            if name == "AIRFLOW_UID" and uid != 0:
                value = str(uid)
            values[name] = value
            line = f"{name}={value}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing .env")
    parser.add_argument("--output", type=Path, default=PROJECT / ".env")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"{args.output} exists; keeping it (--force replaces it)", file=sys.stderr)
        return 1
    text = render((PROJECT / ".env.example").read_text(encoding="utf-8"), os.getuid())
    descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"Wrote {args.output} with fresh secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
