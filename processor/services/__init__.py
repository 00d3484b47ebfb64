"""Writes of the processor context: `saga` (the order saga's transitions, one per event) and
`recovery` (expiry, re-sent commands, resume). The services other code calls are importable from here."""

from processor.selectors import SAGA_STUCK_AFTER_SECONDS
from processor.services.recovery import (
    SAGA_MAX_RETRIES,
    StuckSweepResult,
    reservation_ttl,
    saga_expire_stalled,
    saga_resume,
    saga_retry_stuck,
)
from processor.services.saga import (
    reservation_for,
    saga_cancel,
    saga_complete,
    saga_release_complete,
    saga_reservation_confirm,
    saga_reservation_fail,
    saga_settle,
    saga_start,
)

__all__ = [
    "SAGA_MAX_RETRIES",
    "SAGA_STUCK_AFTER_SECONDS",
    "StuckSweepResult",
    "reservation_for",
    "reservation_ttl",
    "saga_cancel",
    "saga_complete",
    "saga_expire_stalled",
    "saga_release_complete",
    "saga_reservation_confirm",
    "saga_reservation_fail",
    "saga_resume",
    "saga_retry_stuck",
    "saga_settle",
    "saga_start",
]
