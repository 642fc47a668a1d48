"""A local sandbox of a Corefy-style "payouts by reference details" gateway (FastAPI + SQLite).

Run it with ``payout-sandbox --help``. It must never import ``payout_gateway`` (the provider).
"""
