"""Domain exceptions: services raise these, and `brokage.api.exception_handler` maps them to HTTP."""


class DomainError(Exception):
    status_code = 400
    default_detail = "Invalid request."
    # Seconds after which the same request may well succeed (sent as `Retry-After`); None: final.
    retry_after: int | None = None

    def __init__(self, detail: str | dict | None = None, **extra) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.extra = extra
        super().__init__(str(self.detail))


class InvalidInput(DomainError):
    status_code = 400


class PermissionDenied(DomainError):
    status_code = 403
    default_detail = "You do not have permission to do that."


class NotFound(DomainError):
    status_code = 404
    default_detail = "Not found."


class ConflictError(DomainError):
    status_code = 409
    default_detail = "The request conflicts with the current state."


class Contention(ConflictError):
    """Someone else's concurrent request holds what this one needs: retrying soon will succeed.
    Its 409 carries `Retry-After`, and an idempotency key does not remember it."""

    default_detail = "Another request is changing this right now; try again."
    retry_after = 1


class IdempotencyMismatch(DomainError):
    status_code = 422
    default_detail = "This Idempotency-Key was used with a different request."
