"""The project's exceptions, one root with a small leaf per area.

BatchwireError
├── ConfigError            a setting in the environment is malformed
├── InUse                  the worker's web port or data dir is another process's
├── BrokerError            the local Kafka broker cannot be fetched, started or reached
├── TopicsMissing          the pipeline's topics are gone from the cluster
├── ClusterChanged         the Kafka cluster answering is not the one the worker started on
├── CodecError             a message cannot be encoded or decoded
│   └── UnknownSchemaError a single-object message names a fingerprint we do not know
└── SubmissionError        a submission breaks the contract; carries the contract's code
"""

from __future__ import annotations

from typing import Any


class BatchwireError(Exception):
    """Root of every error batchwire raises on purpose."""


class ConfigError(BatchwireError):
    """A setting in the environment is malformed."""


class InUse(BatchwireError):
    """The worker's web port or data dir is taken by another process (another worker)."""


class BrokerError(BatchwireError):
    """The local Kafka broker cannot be fetched, started or reached."""


class TopicsMissing(BatchwireError):
    """Topics the worker reads or writes have been missing from the cluster for a while
    (deleted, or the broker came back without its data); `streams.cluster_watch`."""


class ClusterChanged(BatchwireError):
    """The Kafka cluster at the bootstrap address is not the one the worker started on (a
    broker that came back without its data); `streams.cluster_watch`."""


class CodecError(BatchwireError):
    """A message cannot be encoded or decoded."""


class UnknownSchemaError(CodecError):
    """A single-object encoded message carries a fingerprint of no known schema."""


class SubmissionError(BatchwireError):
    """A submission breaks the contract.

    `code` is one of the contract's error codes; `details` holds one entry per problem,
    each with the JSON path of the offending value.
    """

    def __init__(
        self, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def as_error(self) -> dict[str, Any]:
        """The contract's error object `{code, message, details}`."""
        return {"code": self.code, "message": self.message, "details": self.details}
