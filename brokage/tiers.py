"""Customer tiers as the matching order sees them: VIP is served before PREMIUM before STANDARD.

Events carry only a customer's tier code, so the contexts that order confirmed orders (the
processor's matching queue, the orders console's match review) share these seeded priorities
rather than reading the customers context's table.
"""

TIER_PRIORITY = {"VIP": 1, "PREMIUM": 2, "STANDARD": 3}
DEFAULT_TIER = "STANDARD"


def tier_priority(tier_code: str) -> int:
    """1 is served first; an unknown tier is served as STANDARD."""
    return TIER_PRIORITY.get(tier_code, TIER_PRIORITY[DEFAULT_TIER])
