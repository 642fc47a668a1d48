"""Registers the Payouts view (the code lives in the ``payouts_view`` package under ``include/``)."""

from payouts_view.plugin import PayoutsViewPlugin

__all__ = ["PayoutsViewPlugin"]
