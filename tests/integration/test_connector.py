"""The webhook connector on the real broker against real receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

import pytest

from streams import codec
from streams.messages import callback_id
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.receivers import Delivery, Receiver, receiving
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY_OLD, KEY_NEW = b"o" * 32, b"n" * 32
SECRET_OLD = "whsec_" + base64.b64encode(KEY_OLD).decode()
SECRET_NEW = "whsec_" + base64.b64encode(KEY_NEW).decode()
FAST = "0,0.3,0.3,0.3,0.3"
CREATED = "2026-12-05T10:00:00.000000Z"  # the created_at of the batch the callbacks are of


def connector_env(receiver: Receiver, schedule: str = FAST, **extra: str) -> dict[str, str]:
    return {
        "BATCHWIRE_WEBHOOK_SECRETS": f"acme={SECRET_OLD};acme={SECRET_NEW}",
        "BATCHWIRE_CALLBACK_ALLOW_NETS": "127.0.0.0/8",
        "BATCHWIRE_RETRY_SCHEDULE": schedule,
        **extra,
    }


def callback(n: int, url: str, batch_id: str = "cb") -> dict[str, Any]:
    return {
        "callback_id": callback_id("acme", batch_id, CREATED, f"item/{n}"),
        "batch_id": batch_id,
        "tenant": "acme",
        "url": url,
        "mode": "item",
        "payload": {
            "batch_id": batch_id,
            "item_id": str(n),
            "success": True,
            "errors": [],
            "originalInput": {"n": n, "text": "héllo ✓"},
            "endpointOutput": {"ok": n},
        },
        "created_at": None,
    }


async def publish_callbacks(bootstrap: str, prefix: str, callbacks: list[dict[str, Any]]) -> None:
    await produce(
        bootstrap,
        f"{prefix}batchwire.callbacks",
        [(c["batch_id"].encode(), codec.encode("CallbackRequested", c)) for c in callbacks],
    )


def verify_independently(key: bytes, delivery: Delivery) -> bool:
    """Standard Webhooks verification written from the spec, not with the connector's code."""
    msg_id = delivery.headers["webhook-id"]
    timestamp = delivery.headers["webhook-timestamp"]
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + delivery.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in delivery.headers["webhook-signature"].split(" ")]
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and any(hmac.compare_digest(expected, sig) for sig in offered)


async def wait_for(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def attempts_of(bootstrap: str, prefix: str, count: int) -> list[dict[str, Any]]:
    records = await read_until(
        bootstrap, f"{prefix}batchwire.deliveries", lambda r: len(r) >= count
    )
    return [r.decoded() for r in records]


async def dead_letters(bootstrap: str, prefix: str, count: int) -> list[dict[str, Any]]:
    records = await read_until(
        bootstrap, f"{prefix}batchwire.callbacks.dlq", lambda r: len(r) >= count
    )
    return [r.decoded() for r in records]


async def test_signed_delivery_during_a_secret_rotation(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    connector_factory(connector_env(receiver))
    await publish_callbacks(kafka_bootstrap, topic_prefix, [callback(1, f"{receiver.url}/hook")])
    await wait_for(lambda: len(receiver.received) == 1)
    delivery = receiver.received[0]
    assert delivery.headers["webhook-id"] == callback_id("acme", "cb", CREATED, "item/1")
    assert delivery.headers["content-type"] == "application/json"
    assert verify_independently(KEY_OLD, delivery) and verify_independently(KEY_NEW, delivery)
    assert not verify_independently(b"x" * 32, delivery)
    assert json.loads(delivery.body)["originalInput"] == {"n": 1, "text": "héllo ✓"}
    [attempt] = await attempts_of(kafka_bootstrap, topic_prefix, 1)
    assert (attempt["outcome"], attempt["attempt"], attempt["http_status"]) == ("delivered", 1, 200)


async def test_failures_are_retried_without_stalling_others(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    receiver.respond = lambda d, n: 503 if d.path == "/flaky" and n <= 2 else 200
    connector_factory(connector_env(receiver, schedule="0,2,2"))
    await publish_callbacks(
        kafka_bootstrap,
        topic_prefix,
        [
            callback(1, f"{receiver.url}/flaky"),
            *(callback(n, f"{receiver.url}/ok") for n in range(2, 12)),
        ],
    )
    await wait_for(
        lambda: len({d.headers["webhook-id"] for d in receiver.received if d.path == "/ok"}) == 10
    )
    flaky = [d for d in receiver.received if d.path == "/flaky"]
    assert len(flaky) < 3, "the healthy callbacks waited behind the failing one"
    await wait_for(lambda: sum(1 for d in receiver.received if d.path == "/flaky") == 3)
    flaky = [d for d in receiver.received if d.path == "/flaky"]
    assert len({d.headers["webhook-id"] for d in flaky}) == 1
    assert flaky[1].at - flaky[0].at >= 1.5  # waited on the retry topic, about 2 s
    attempts = [
        a
        for a in await attempts_of(kafka_bootstrap, topic_prefix, 13)
        if a["url"].endswith("/flaky")
    ]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, "retry"),
        (2, "retry"),
        (3, "delivered"),
    ]


async def test_gone_disables_and_replay_re_enables(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    gone = True
    receiver.respond = lambda d, n: 410 if gone else 200
    connector = connector_factory(connector_env(receiver))
    url = f"{receiver.url}/gone"
    await publish_callbacks(kafka_bootstrap, topic_prefix, [callback(1, url)])
    [letter] = await dead_letters(kafka_bootstrap, topic_prefix, 1)
    assert letter["reason"].startswith("410")
    assert [a["outcome"] for a in letter["attempts"]] == ["disabled"]
    await publish_callbacks(kafka_bootstrap, topic_prefix, [callback(2, url)])
    letters = await dead_letters(kafka_bootstrap, topic_prefix, 2)
    assert "disabled" in letters[1]["reason"]
    assert len(receiver.received) == 1  # the disabled endpoint was not called again
    gone = False

    async def replay(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *connector.command_line("connector", "replay", *args),
            env=connector.env,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        return out.decode().strip()

    # a replay of another batch passes over these letters and leaves them to a plain replay
    assert await replay("--batch-id", "other") == "replayed 0 callbacks"
    assert await replay() == "replayed 2 callbacks"
    await wait_for(lambda: receiver.per_id[callback_id("acme", "cb", CREATED, "item/2")] == 1)
    again = callback_id("acme", "cb", CREATED, "item/1")
    assert receiver.per_id[again] == 2  # the same webhook-id again


async def test_a_slow_endpoint_holds_at_most_half_the_slots(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    """Callbacks to an endpoint that answers slowly take at most half of `--concurrency`; the
    rest wait on a retry tier (not as attempts), so another endpoint's callbacks go out
    while the slow one works through its own."""
    receiver.respond = lambda d, n: "hang"  # 5 s each, one at a time
    connector_factory(connector_env(receiver), args=("--concurrency", "4", "--per-endpoint", "1"))
    async with receiving() as fast:
        slow = [callback(n, f"{receiver.url}/slow", batch_id="slow") for n in range(12)]
        quick = [callback(n, f"{fast.url}/fast", batch_id="fast") for n in range(4)]
        await publish_callbacks(kafka_bootstrap, topic_prefix, slow)
        await publish_callbacks(kafka_bootstrap, topic_prefix, quick)
        await wait_for(lambda: len(fast.delivered_ids()) == 4)
        # the fast endpoint did not wait for the slow one's queue (12 x 5 s)
        assert len(receiver.received) <= 3
    attempts = await attempts_of(kafka_bootstrap, topic_prefix, 4)
    assert all(a["attempt"] == 1 for a in attempts)  # deferring is not an attempt


async def test_malformed_retry_records_are_skipped_and_delivery_goes_on(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    """A retry topic is open to any producer: records that are not the connector's envelopes
    are skipped (each of these stopped the connector, on every restart, or froze its
    commits), and the callbacks behind them are delivered."""
    receiver.respond = lambda d, n: 200
    connector_factory(connector_env(receiver))
    good = callback(1, f"{receiver.url}/ok")
    bad = [
        b"[]",
        b'{"x": 1}',
        json.dumps({"callback": good, "attempts": [], "not_before": "soon"}).encode(),
        json.dumps({"callback": {"url": "x"}, "attempts": [], "not_before": 0}).encode(),
        json.dumps({"callback": good, "attempts": [{"attempt": 1}], "not_before": 0}).encode(),
    ]
    retry_topic = f"{topic_prefix}batchwire.callbacks.retry.0_3s"
    envelope = {"callback": callback(2, f"{receiver.url}/ok"), "attempts": [], "not_before": 0}
    await produce(
        kafka_bootstrap,
        retry_topic,
        [(b"cb", raw) for raw in bad] + [(b"cb", json.dumps(envelope).encode())],
    )
    await publish_callbacks(kafka_bootstrap, topic_prefix, [good])
    await wait_for(lambda: len(receiver.received) == 2)
    delivered = sorted(json.loads(d.body)["item_id"] for d in receiver.received)
    assert delivered == ["1", "2"]


async def test_client_errors_redirects_timeouts_and_refused_addresses(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    def respond(d: Delivery, n: int) -> Any:
        return {"/bad": 422, "/moved": ("redirect", f"{receiver.url}/elsewhere"), "/hang": "hang"}[
            d.path
        ]

    receiver.respond = respond
    connector_factory(
        connector_env(receiver, schedule="0,0.2,0.2,0.2,0.2,0.2"), args=("--total-timeout", "1")
    )
    await publish_callbacks(
        kafka_bootstrap,
        topic_prefix,
        [
            callback(1, f"{receiver.url}/bad"),
            callback(2, f"{receiver.url}/moved"),
            callback(3, f"{receiver.url}/hang"),
            callback(4, "http://10.0.0.1/private"),
            callback(5, "http://169.254.169.254/latest/meta-data"),
        ],
    )
    letters = {
        d["callback"]["payload"]["item_id"]: d
        for d in await dead_letters(kafka_bootstrap, topic_prefix, 5)
    }
    assert [a["http_status"] for a in letters["1"]["attempts"]] == [422, 422, 422]
    assert [a["http_status"] for a in letters["2"]["attempts"]] == [302, 302, 302]
    assert not any(d.path == "/elsewhere" for d in receiver.received)
    hang = letters["3"]["attempts"]
    assert len(hang) == 6 and all(a["outcome"] in ("retry", "dead_lettered") for a in hang)
    assert all("Timeout" in (a["error_class"] or "") for a in hang)
    for private in ("4", "5"):
        [attempt] = letters[private]["attempts"]
        assert attempt["outcome"] == "refused"


async def test_a_connector_killed_mid_delivery_loses_nothing(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    receiver.delay_s = 0.05
    env = connector_env(receiver)
    first = connector_factory(env)
    callbacks = [callback(n, f"{receiver.url}/k") for n in range(300)]
    await publish_callbacks(kafka_bootstrap, topic_prefix, callbacks)
    await wait_for(lambda: len(receiver.received) >= 30)
    first.stop(kill=True)
    connector_factory(env)
    wanted = {c["callback_id"] for c in callbacks}
    await wait_for(lambda: wanted <= receiver.delivered_ids(), 90)
    assert receiver.ids() == wanted


async def test_a_thousand_callbacks_against_a_target_failing_half_the_time(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    chance = random.Random(7)
    receiver.respond = lambda d, n: 200 if chance.random() < 0.5 else 503
    schedule = ",".join(["0"] + ["0.2"] * 24)  # 25 attempts: P(all fail) = 3e-8 per callback
    connector_factory(connector_env(receiver, schedule=schedule))
    callbacks = [callback(n, f"{receiver.url}/half", batch_id="k") for n in range(1000)]
    await publish_callbacks(kafka_bootstrap, topic_prefix, callbacks)
    wanted = {c["callback_id"] for c in callbacks}
    await wait_for(lambda: len(receiver.delivered_ids()) == 1000, 240)
    outcomes = await attempts_of(kafka_bootstrap, topic_prefix, len(receiver.received))
    delivered_ids = [a["callback_id"] for a in outcomes if a["outcome"] == "delivered"]
    assert set(delivered_ids) == wanted
    duplicates = len(delivered_ids) - len(set(delivered_ids))
    print(f"1000 callbacks, {len(receiver.received)} requests, {duplicates} duplicate deliveries")
    assert not [a for a in outcomes if a["outcome"] == "dead_lettered"]


async def test_a_batch_calls_its_client_back_through_the_connector(
    worker_factory: WorkerFactory,
    connector_factory: WorkerFactory,
    receiver: Receiver,
) -> None:
    import httpx

    env = connector_env(receiver)
    worker = worker_factory(env)
    connector_factory(env)
    batch = {
        "batch_id": "e2e-1",
        "callback": {"url": f"{receiver.url}/done", "mode": "both"},
        "metadata": {"asyncId": "e2e-1"},
        "items": [
            {"id": f"j{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i}}
            for i in range(3)
        ],
    }
    async with httpx.AsyncClient(base_url=worker.url) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches", json=batch, headers={"Authorization": "Bearer key-acme"}
        )
        assert answer.status_code == 202
    await wait_for(lambda: len(receiver.delivered_ids()) == 4)
    bodies = [json.loads(d.body) for d in receiver.received]
    final = next(b for b in bodies if "status" in b)
    assert final["status"] == "completed" and final["metadata"] == {"asyncId": "e2e-1"}
    assert [r["output"] for r in final["results"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    items = sorted(b["item_id"] for b in bodies if "item_id" in b)
    assert items == ["j0", "j1", "j2"]
    assert all(verify_independently(KEY_NEW, d) for d in receiver.received)


async def test_loopback_private_and_metadata_callbacks_are_refused_unless_allow_listed(
    connector_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, receiver: Receiver
) -> None:
    """Issue 7 §6: with an allow-list that covers none of them, the connector refuses
    callbacks to loopback (the real receiver, by address and as `localhost`), private and
    metadata addresses before connecting: each is dead-lettered after one `refused`
    attempt and the receiver (which would answer 200) sees nothing."""
    port = receiver.url.rsplit(":", 1)[1]
    refused = {
        "0": f"{receiver.url}/loopback",
        "1": f"http://localhost:{port}/by-name",
        "2": "http://10.1.2.3/private",
        "3": "http://192.168.1.10/private",
        "4": "http://172.16.0.1/private",
        "5": "http://172.31.255.254/private",
        "6": "http://169.254.169.254/latest/meta-data",
    }
    connector_factory(connector_env(receiver, BATCHWIRE_CALLBACK_ALLOW_NETS="198.51.100.0/24"))
    await publish_callbacks(
        kafka_bootstrap, topic_prefix, [callback(int(n), url) for n, url in refused.items()]
    )
    letters = {
        d["callback"]["payload"]["item_id"]: d
        for d in await dead_letters(kafka_bootstrap, topic_prefix, len(refused))
    }
    assert set(letters) == set(refused)
    for n, letter in letters.items():
        [attempt] = letter["attempts"]
        assert attempt["outcome"] == "refused", (refused[n], attempt)
        assert attempt["http_status"] is None
    assert receiver.received == []
