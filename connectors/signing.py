"""Standard Webhooks signatures for callback POSTs (https://www.standardwebhooks.com).

Every callback carries three headers:

- `webhook-id`: the message id, the same on every retry of one message (an idempotency key);
- `webhook-timestamp`: the attempt's time, integer unix seconds, fresh on every attempt;
- `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
  one per secret, so that a receiver keeps verifying while a secret is rotated.

A secret is written `whsec_` + base64 of the key bytes; the HMAC key is the decoded bytes,
not the text. Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streams.errors import ConfigError

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
#: The spec's bounds for a symmetric secret: at least 24 bytes, at most 64 (512 bits).
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
DEFAULT_TOLERANCE_S = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


@dataclass(frozen=True)
class WebhookSecret:
    """The HMAC key of one `whsec_...` secret. Its repr never shows the key."""

    key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "WebhookSecret('whsec_****')"

    __str__ = __repr__

    @classmethod
    def parse(cls, text: str) -> WebhookSecret:
        """Parse `whsec_<base64 key>`; raise `ConfigError` if it is malformed.

        The prefix is required (unlike the reference libraries, which make it optional) so
        that a raw password put in the setting by mistake is refused, not silently used.
        Missing base64 padding is tolerated; any character outside the standard base64
        alphabet is not. The message never quotes the text: it may be a real secret with a
        typo in it.
        """
        stripped = text.strip()
        if not stripped.startswith(SECRET_PREFIX):
            raise ConfigError(
                f"webhook secret: expected {SECRET_PREFIX!r} followed by base64 key bytes"
            )
        encoded = stripped[len(SECRET_PREFIX) :]
        unpadded = encoded.rstrip("=")
        padding = -len(unpadded) % 4
        key: bytes | None = None
        # `b64decode` alone accepts surplus trailing "=": the padding is checked here.
        if len(encoded) - len(unpadded) in (0, padding) and padding != 3:
            try:
                key = base64.b64decode(unpadded + "=" * padding, validate=True)
            except (binascii.Error, ValueError):
                key = None
        if key is None:
            raise ConfigError(
                f"webhook secret: the part after {SECRET_PREFIX!r} is not valid base64"
            )
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ConfigError(
                f"webhook secret: the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
                f"got {len(key)}"
            )
        return cls(key)


def _check_msg_id(msg_id: str) -> None:
    # The signed content is "{id}.{timestamp}.{body}": an id containing "." could be shifted
    # against the timestamp to forge another message's signed content, and whitespace or
    # control characters do not belong in a header value.
    printable = msg_id.isascii() and msg_id.isprintable()
    if not msg_id or not printable or "." in msg_id or " " in msg_id:
        raise ValueError("webhook id must be non-empty printable ASCII without '.' or spaces")


def _signature(secret: WebhookSecret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}` under `secret`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.key, content, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(secrets: Sequence[WebhookSecret], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<sig>` per secret, space-separated, in order."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    _check_msg_id(msg_id)
    return " ".join(
        f"{SIGNATURE_VERSION},{_signature(s, msg_id, timestamp, body)}" for s in secrets
    )


def webhook_headers(
    secrets: Sequence[WebhookSecret], msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers of one attempt: id, timestamp (now, whole seconds), signature, content type.

    Call it once per attempt: the timestamp, and so the signature, must be fresh each time,
    while `msg_id` stays the same across the retries of one message.
    """
    timestamp = int(time.time() if now is None else now)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(
    secret: WebhookSecret,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether one of the `v1` signatures in `headers` is `secret`'s over `body`.

    Header names are matched case-insensitively. A missing header, a timestamp that is not
    an integer, or one more than `tolerance_s` away from `now` (in either direction, so a
    captured message cannot be replayed later) gives False. Signatures of other versions
    (e.g. `v1a`) are ignored. Comparison is constant-time.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(ID_HEADER)
    raw_ts = lowered.get(TIMESTAMP_HEADER)
    raw_sigs = lowered.get(SIGNATURE_HEADER)
    if not msg_id or raw_ts is None or raw_sigs is None:
        return False
    raw_ts = raw_ts.strip()
    if not raw_ts.isascii() or not raw_ts.isdigit():
        return False
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _signature(secret, msg_id, timestamp, body).encode("ascii")
    matched = False
    for entry in raw_sigs.split():
        version, sep, sig = entry.partition(",")
        if sep and version == SIGNATURE_VERSION:
            # No early exit: the time taken does not depend on which entry matched.
            matched |= hmac.compare_digest(expected, sig.encode("utf-8", "replace"))
    return matched
