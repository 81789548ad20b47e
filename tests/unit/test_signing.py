"""Standard Webhooks signatures (connectors.signing), checked against the spec's own vector
and against an independent implementation written here from the spec text."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from connectors.signing import WebhookSecret, sign, verify, webhook_headers
from streams.errors import ConfigError

# The Standard Webhooks test vector (spec repository and reference libraries).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET_A = "whsec_" + base64.b64encode(bytes(range(32))).decode()
SECRET_B = "whsec_" + base64.b64encode(bytes(range(100, 140))).decode()
NOW = 1_700_000_000.75
BODY = b'{"batch_id":"b-1","status":"completed","results":[]}'


def reference_signature(secret_text: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec, transcribed: key = base64 decode of the part after `whsec_`; signature =
    "v1," + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret_text.removeprefix("whsec_"))
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_the_reference_implementation_reproduces_the_published_vector() -> None:
    assert reference_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_sign_reproduces_the_published_vector() -> None:
    secret = WebhookSecret.parse(VECTOR_SECRET)
    assert sign([secret], VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_verify_accepts_the_published_vector() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    secret = WebhookSecret.parse(VECTOR_SECRET)
    assert verify(secret, headers, VECTOR_BODY, now=VECTOR_TS + 10)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        ("msg_1", 0, b""),
        ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, BODY),
        ("01J0-ABC_def", 2_000_000_000, '{"name": "Zoë ✓"}'.encode()),
        ("x", 1, bytes(range(256))),
    ],
)
def test_sign_matches_the_reference_implementation(
    msg_id: str, timestamp: int, body: bytes
) -> None:
    for text in (SECRET_A, SECRET_B, VECTOR_SECRET):
        got = sign([WebhookSecret.parse(text)], msg_id, timestamp, body)
        assert got == reference_signature(text, msg_id, timestamp, body)


def test_two_secrets_give_two_signatures_each_verifiable_alone() -> None:
    a, b = WebhookSecret.parse(SECRET_A), WebhookSecret.parse(SECRET_B)
    headers = webhook_headers([a, b], "msg_rot", BODY, now=NOW)
    sigs = headers["webhook-signature"].split(" ")
    ts = int(NOW)
    assert sigs == [
        reference_signature(SECRET_A, "msg_rot", ts, BODY),
        reference_signature(SECRET_B, "msg_rot", ts, BODY),
    ]
    assert verify(a, headers, BODY, now=NOW)
    assert verify(b, headers, BODY, now=NOW)
    for sig in sigs:  # a receiver holding only one of them still verifies
        single = {**headers, "webhook-signature": sig}
        assert verify(a, single, BODY, now=NOW) is (sig == sigs[0])
        assert verify(b, single, BODY, now=NOW) is (sig == sigs[1])


def test_webhook_headers_carry_the_spec_headers_and_content_type() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = webhook_headers([secret], "msg_h", BODY, now=NOW)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}
    assert headers["webhook-id"] == "msg_h"
    assert headers["webhook-timestamp"] == "1700000000"  # integer seconds
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == reference_signature(SECRET_A, "msg_h", 1700000000, BODY)


def test_webhook_headers_default_to_the_current_time() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = webhook_headers([secret], "msg_now", BODY)
    assert headers["webhook-timestamp"].isdigit()
    assert verify(secret, headers, BODY)


def test_verify_matches_header_names_case_insensitively() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = {k.title(): v for k, v in webhook_headers([secret], "m1", BODY, now=NOW).items()}
    assert verify(secret, headers, BODY, now=NOW)


def test_verify_rejects_a_wrong_secret() -> None:
    headers = webhook_headers([WebhookSecret.parse(SECRET_A)], "msg_w", BODY, now=NOW)
    assert not verify(WebhookSecret.parse(SECRET_B), headers, BODY, now=NOW)


def test_verify_rejects_a_tampered_body_id_or_timestamp() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = webhook_headers([secret], "msg_t", BODY, now=NOW)
    assert not verify(secret, headers, BODY.replace(b"completed", b"failed"), now=NOW)
    assert not verify(secret, headers, BODY + b" ", now=NOW)
    assert not verify(secret, {**headers, "webhook-id": "msg_u"}, BODY, now=NOW)
    shifted = {**headers, "webhook-timestamp": str(int(NOW) + 1)}
    assert not verify(secret, shifted, BODY, now=NOW)


def test_verify_enforces_the_timestamp_tolerance_both_ways() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = webhook_headers([secret], "msg_old", BODY, now=NOW)
    ts = int(NOW)
    assert verify(secret, headers, BODY, now=ts + 300)
    assert not verify(secret, headers, BODY, now=ts + 301)
    assert verify(secret, headers, BODY, now=ts - 300)
    assert not verify(secret, headers, BODY, now=ts - 301)
    assert verify(secret, headers, BODY, now=ts + 3600, tolerance_s=3600)
    assert not verify(secret, headers, BODY, now=ts + 3601, tolerance_s=3600)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": None},
        {"webhook-timestamp": None},
        {"webhook-signature": None},
        {"webhook-timestamp": "not-a-number"},
        {"webhook-timestamp": "1700000000.5"},
        {"webhook-timestamp": "-1700000000"},
        {"webhook-signature": ""},
        {"webhook-signature": "v1,"},
        {"webhook-signature": "garbage"},
        {"webhook-signature": "v1,bm9wZQ== v1a,bm9wZQ=="},
        {"webhook-signature": "v1,é"},
    ],
)
def test_verify_rejects_missing_or_malformed_headers(change: dict[str, str | None]) -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers: dict[str, str] = webhook_headers([secret], "msg_m", BODY, now=NOW)
    for key, value in change.items():
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    assert not verify(secret, headers, BODY, now=NOW)


def test_verify_finds_its_signature_among_others() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    headers = webhook_headers([secret], "msg_o", BODY, now=NOW)
    mine = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1a,AAAA v1,bm9wZQ== {mine} v2,whatever"
    assert verify(secret, headers, BODY, now=NOW)
    # The signature under a version other than v1 is not taken.
    headers["webhook-signature"] = mine.replace("v1,", "v2,", 1)
    assert not verify(secret, headers, BODY, now=NOW)


def test_parse_tolerates_surrounding_spaces_and_missing_padding() -> None:
    key = bytes(range(25))  # 25 bytes: base64 needs padding
    padded = base64.b64encode(key).decode()
    assert padded.endswith("=")
    assert WebhookSecret.parse(f"  whsec_{padded}\n").key == key
    assert WebhookSecret.parse("whsec_" + padded.rstrip("=")).key == key


def test_a_secret_never_shows_its_key() -> None:
    secret = WebhookSecret.parse(VECTOR_SECRET)
    body = VECTOR_SECRET.removeprefix("whsec_")
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr((secret,))):
        assert body not in shown
        assert repr(secret.key) not in shown
        assert secret.key.hex() not in shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "whsec_",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "wh_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8I!PZIo2LaLaSw",  # not base64
        "whsec_MfKQ9r8GKYqrTwjUPD8I PZIo2LaLaSw",  # inner space
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # bad length
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=====",  # surplus padding
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=",
        "whsec_" + base64.b64encode(b"short-key").decode(),  # under 24 bytes
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # over 64 bytes
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_",  # url-safe alphabet
    ],
)
def test_a_malformed_secret_is_a_config_error_that_does_not_echo_it(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebhookSecret.parse(text)
    message = str(info.value)
    assert "webhook secret" in message
    tail = text.strip().removeprefix("whsec_").removeprefix("WHSEC_").removeprefix("wh_")
    if tail:
        assert tail not in message
        assert tail[:8] not in message


def test_secret_length_bounds_follow_the_spec() -> None:
    assert len(WebhookSecret.parse("whsec_" + base64.b64encode(bytes(24)).decode()).key) == 24
    assert len(WebhookSecret.parse("whsec_" + base64.b64encode(bytes(64)).decode()).key) == 64


def test_sign_needs_a_secret_and_a_dot_free_id() -> None:
    secret = WebhookSecret.parse(SECRET_A)
    with pytest.raises(ValueError):
        sign([], "msg", 1, BODY)
    for bad in ("", "a.b", "a b", "a\nb", "ä"):
        with pytest.raises(ValueError):
            sign([secret], bad, 1, BODY)


def test_secrets_compare_by_key_and_are_immutable() -> None:
    a1, a2 = WebhookSecret.parse(SECRET_A), WebhookSecret.parse(" " + SECRET_A)
    assert a1 == a2
    assert a1 != WebhookSecret.parse(SECRET_B)
    with pytest.raises(AttributeError):
        a1.key = b"x" * 32  # type: ignore[misc]
