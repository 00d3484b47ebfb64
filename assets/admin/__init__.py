"""The employees' view of balances and reservations, and the deposit / withdraw forms: `balances`
(the balances and their forms) and `ledger` (movements, reservations, the internal tables).

Balances change only through `assets.services`: a deposit or withdrawal made here is the API's
`asset_deposit` / `asset_withdraw`, with the same checks (who may, the IBAN, what is usable). Each is
shown for confirmation first and leaves a `LogEntry` on the balance after it is made.
"""

from assets.admin import balances, ledger  # noqa: F401 (each registers its ModelAdmins)
