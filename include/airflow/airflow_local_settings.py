"""Local settings for the demo's Airflow home (copied to ``$AIRFLOW_HOME/config/`` by ``scripts/demo.py``).

Airflow imports this module in every component. It does two things:

- ``connect_args`` gives SQLite a 30 s busy timeout; ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS``
  points at it (``airflow_local_settings.connect_args``). With the default 5 s, the scheduler,
  triggerer and dag-processor die with "database is locked" under load on a 2-core machine.
- Any log server that Airflow starts binds 127.0.0.1 instead of every interface. The demo already runs
  the scheduler and triggerer with ``--skip-serve-logs``; this is the safety net for
  ``airflow standalone`` or a component started by hand, whose ``serve-logs`` calls
  ``uvicorn.run(host="")`` with no setting to change it in Airflow 3.3.2.
"""

from __future__ import annotations

from typing import Any

import uvicorn

connect_args: dict[str, Any] = {"timeout": 30}

_ALL_INTERFACES = ("", None, "0.0.0.0", "::")  # noqa: S104 - the values we replace


def _force_loopback(run: Any) -> Any:
    """Wrap ``uvicorn.run`` so that a server asked to bind every interface binds loopback only."""

    def loopback_run(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("host") in _ALL_INTERFACES:
            kwargs["host"] = "127.0.0.1"
        return run(*args, **kwargs)

    loopback_run._loopback_patched = True  # type: ignore[attr-defined]
    return loopback_run


if not getattr(uvicorn.run, "_loopback_patched", False):
    uvicorn.run = _force_loopback(uvicorn.run)
