"""Contract errors as HTTP answers: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

from typing import Any

from streams.errors import BatchwireError, SubmissionError

HTTP_STATUS = {
    "invalid_json": 400,
    "invalid_batch_format": 422,
    "empty_parameter": 422,
    "duplicate_item_id": 422,
    "empty_batch": 422,
    "too_many_items": 413,
    "unauthorized": 401,
    "tenant_not_allowed": 403,
    "too_many_active_batches": 429,
    "batch_conflict": 409,
    "not_found": 404,
    # not a contract code: Kafka or another worker did not answer (`streams.api.kafka_sends`)
    "unavailable": 503,
}

#: seconds a client is asked to wait before it tries again (429, 503)
RETRY_AFTER_S = 5


class ApiError(BatchwireError):
    """A request the API answers with a contract error."""

    def __init__(
        self,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    @classmethod
    def of(cls, error: SubmissionError) -> ApiError:
        return cls(error.code, error.message, error.details)

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def body_too_large(limit: int) -> ApiError:
    """The contract's answer to a request body over `limit` bytes."""
    return ApiError("too_many_items", f"the body is larger than {limit} bytes")
