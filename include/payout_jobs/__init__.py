"""Payout jobs: the business logic behind the payout DAGs (the DAG files only wire it up).

- :mod:`payout_jobs.identity`: references and batch ids (one per logical payout, deterministic).
- :mod:`payout_jobs.single_payout`, :mod:`payout_jobs.operators`: ``payout_by_reference``.
- :mod:`payout_jobs.batch_file`, :mod:`payout_jobs.batch_requests`, :mod:`payout_jobs.batch_validation`,
  :mod:`payout_jobs.chunks`, :mod:`payout_jobs.batch_report`, :mod:`payout_jobs.batch_job`:
  ``payout_batch``.
- :mod:`payout_jobs.reconciliation`: ``payout_reconciliation``.
- :mod:`payout_jobs.settings`: where batch files are picked up and reports written.
"""
