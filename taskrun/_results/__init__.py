"""Results: cache keys, policies, serializers, the record store, locks and transactions.

The engine reaches this package through :mod:`taskrun._results._service` only
(``results_config_from_options`` and the objects it returns). With caching and
persistence off that function returns ``None`` and nothing here is imported by a run.
"""
