"""The Payouts view: an Airflow plugin (FastAPI app on the api-server at ``/payouts``, a "Payouts"
entry in the UI's navigation) listing payouts, batches and reconciliation findings, and receiving
the gateway's signed callbacks. Registered by ``plugins/payouts_view_plugin.py``."""

#: Where the api-server mounts the view.
PREFIX = "/payouts"
