"""``[core] hostname_callable`` for ``make cluster-check``: one name per Celery worker on one host.

Airflow records ``hostname_callable()`` as the task instance's ``hostname`` (the task supervisor
sends it when the task starts). Two workers on one machine would both record the machine's name;
each worker of the check gets ``PAYOUT_CLUSTER_WORKER=w1`` (or ``w2``) and records
``w1@<host>``, the same name as its Celery node (``--celery-hostname w1@%h``).
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``<worker>@<host>`` when ``PAYOUT_CLUSTER_WORKER`` is set, else the host name."""
    fqdn = socket.gethostname()
    worker = os.environ.get("PAYOUT_CLUSTER_WORKER", "").strip()
    return f"{worker}@{fqdn}" if worker else fqdn
