"""Observability: run events, run records, progress, reports and traces.

The engine feeds this package through one hook (:mod:`._events`); everything
else here is built on subscriptions to it. Nothing in this package is imported
by ``import taskrun`` unless a user or the engine asks for it.
"""
