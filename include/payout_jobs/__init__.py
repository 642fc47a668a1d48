"""Payout jobs: the business logic behind the DAGs (batch files, reports, reconciliation)."""
