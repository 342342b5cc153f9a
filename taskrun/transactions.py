"""Transactions: commit the records of several task runs together, or none of them.

Example::

    import taskrun.transactions as tx

    with tx.transaction() as txn:          # also `async with`
        txn.on_rollback(lambda t: print("nothing was saved"))
        extract.submit(day).result()
        load.submit(day).result()

See :mod:`taskrun._results._transaction` for how nested blocks behave.
"""

from __future__ import annotations

from ._results._transaction import CommitMode, Transaction, TransactionState, get_transaction, transaction

__all__ = ["CommitMode", "Transaction", "TransactionState", "get_transaction", "transaction"]
