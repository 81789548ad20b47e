"""The webhook connector: `batchwire.callbacks` -> signed POSTs, retried durably, dead-lettered.

A process of its own (consumer group `<prefix>batchwire-webhook`; scale it by partitions).
For each `CallbackRequested` it makes one attempt (Standard Webhooks headers, signed with the
tenant's secrets), records it as a `DeliveryAttempt`, and then:
- 2xx: delivered;
- 410: the endpoint is disabled (recorded on the compacted `batchwire.endpoints`) and the
  callback dead-lettered;
- network errors, 408, 429, 5xx: retried on the schedule (Retry-After honoured); redirects
  and other 4xx at most 3 times in all;
- a refused address (SSRF guard) or a tenant without a secret: dead-lettered at once.
A retry waits on the retry topic of its delay tier (`connectors.retry`), never in memory.
An offset is committed only once its callback is delivered, re-published for a retry or
dead-lettered (and the producer flushed), so a `kill -9` at any moment loses nothing; it may
deliver a callback again, with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from connectors.delivery import AttemptResult, Deliverer, Verdict, endpoint_key, unresolved
from connectors.retry import RetryPolicy, tier_topic
from connectors.signing import WebhookSecret, webhook_headers
from connectors.ssrf import AddressGuard, CallbackRefused, CannotResolve
from streams import cluster_watch, codec
from streams.clock import iso
from streams.compacted import CompactedView
from streams.kafka_admin import ensure_topics, topic_config
from streams.offsets import OffsetTracker, OnRevoked, commit_finished
from streams.parts import MAX_MESSAGE_BYTES
from streams.settings import Settings

log = logging.getLogger(__name__)
COMMIT_INTERVAL_S = 1.0
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

Envelope = dict[str, Any]  # {"callback": CallbackRequested, "attempts": [...], "not_before": s}


def _retry_envelope(value: Any) -> Envelope:
    """A retry record's envelope, checked to be one the connector wrote (a retry topic is
    open to any producer): ValueError or `CodecError` otherwise, and the record is skipped
    rather than stopping the connector on every restart."""
    if not isinstance(value, dict) or not isinstance(value.get("callback"), dict):
        raise ValueError("a retry record must be a JSON object with a callback")
    codec.encode("CallbackRequested", value["callback"])
    attempts, not_before = value.get("attempts"), value.get("not_before")
    if not isinstance(attempts, list):
        raise ValueError("a retry record's attempts must be a list")
    for attempt in attempts:
        codec.encode("DeliveryAttempt", attempt)
    if not isinstance(not_before, int | float) or not math.isfinite(not_before):
        raise ValueError("a retry record's not_before must be a number of seconds")
    return value


@dataclass(frozen=True)
class ConnectorOptions:
    https_only: bool = False
    concurrency: int = 100
    per_endpoint: int = 10
    connect_timeout_s: float = 5.0
    total_timeout_s: float = 15.0


class WebhookConnector:
    def __init__(self, settings: Settings, options: ConnectorOptions | None = None) -> None:
        self.settings = settings
        self.options = options or ConnectorOptions()
        self.policy = RetryPolicy(settings.retry_schedule)
        self.guard = AddressGuard(settings.callback_allow_nets, https_only=self.options.https_only)
        self.secrets = {
            tenant: [WebhookSecret.parse(secret.value) for secret in secrets]
            for tenant, secrets in settings.webhook_secrets.items()
        }
        self.topics = {
            "callbacks": settings.topic("batchwire.callbacks"),
            "deliveries": settings.topic("batchwire.deliveries"),
            "dlq": settings.topic("batchwire.callbacks.dlq"),
            "endpoints": settings.topic("batchwire.endpoints"),
        }
        self.tiers = {tier_topic(settings.topic_prefix, t): t for t in self.policy.tiers}
        self.disabled = CompactedView()
        self.tracker = OffsetTracker()
        self.paused: dict[TopicPartition, float] = {}
        self.room = asyncio.Semaphore(self.options.concurrency)
        #: callbacks taken per endpoint (`delivery.endpoint_key`), in flight or waiting for
        #: its gate; an endpoint holds at most `share` of them (`_take`)
        self.taken: Counter[Any] = Counter()
        self.share = max(self.options.per_endpoint, self.options.concurrency // 2)
        positive = [tier for tier in self.policy.tiers if tier > 0]
        self.defer_tier = min(positive) if positive else None
        self.tasks: set[asyncio.Task[None]] = set()
        self.failed = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.deliverer: Deliverer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set (or a write to Kafka fails for good)."""
        bootstrap = self.settings.kafka_bootstrap
        configs = {name: topic_config() for name in [*self.topics.values(), *self.tiers]}
        configs[self.topics["endpoints"]] = topic_config(compacted=True)
        configs[self.topics["dlq"]] = topic_config(retention_days=30)
        cluster_watch.expect(await ensure_topics(bootstrap, configs))
        watcher = asyncio.create_task(cluster_watch.exit_on_problem())
        follower = asyncio.create_task(self.disabled.follow(bootstrap, self.topics["endpoints"]))
        self.deliverer = Deliverer(
            connect_timeout_s=self.options.connect_timeout_s,
            total_timeout_s=self.options.total_timeout_s,
            per_endpoint=self.options.per_endpoint,
            guard=self.guard,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=MAX_MESSAGE_BYTES
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{self.settings.topic_prefix}batchwire-webhook",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=16 << 20,
            fetch_max_bytes=32 << 20,
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(
            [self.topics["callbacks"], *self.tiers], listener=OnRevoked(self.on_revoked)
        )
        try:
            async with asyncio.timeout(30):
                await self.disabled.caught_up.wait()
            await self._loop(stop)
        finally:
            await self._drain()
            follower.cancel()
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            with contextlib.suppress(Exception):
                await self.producer.stop()
            await self.deliverer.aclose()
            watcher.cancel()

    async def _loop(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None
        last_commit = time.monotonic()
        while not (stop.is_set() or self.failed.is_set()):
            self._resume_due()
            batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    if tp in self.paused or not await self._take(tp, record):
                        break
            if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                await self.commit()
                last_commit = time.monotonic()
        if self.failed.is_set():
            raise RuntimeError("a write to Kafka failed; stopping so that nothing is lost")

    def _resume_due(self) -> None:
        assert self.consumer is not None
        now = time.time()
        for tp, at in list(self.paused.items()):
            if at <= now:
                del self.paused[tp]
                with contextlib.suppress(IllegalStateError):
                    self.consumer.resume(tp)

    async def _take(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> bool:
        """Start handling one record; False when its partition must wait (record not taken)."""
        assert self.consumer is not None
        envelope = self._envelope(record)
        if envelope is not None and envelope["not_before"] > time.time():
            self.consumer.pause(tp)
            self.consumer.seek(tp, record.offset)
            self.paused[tp] = envelope["not_before"]
            return False
        self.tracker.start(tp, record.offset)
        if envelope is None:
            self.tracker.done(tp, record.offset)
            return True
        endpoint = endpoint_key(envelope["callback"]["url"])
        if self.taken[endpoint] >= self.share and self.defer_tier is not None:
            await self._defer(envelope, self.defer_tier)
            self.tracker.done(tp, record.offset)
            return True
        await self.room.acquire()
        self.taken[endpoint] += 1
        task = asyncio.create_task(self._handle(envelope, endpoint, tp, record.offset))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    def _envelope(self, record: ConsumerRecord[Any, Any]) -> Envelope | None:
        try:
            if record.topic == self.topics["callbacks"]:
                callback = codec.decode_as("CallbackRequested", record.value)
                return {"callback": callback, "attempts": [], "not_before": 0.0}
            return _retry_envelope(json.loads(record.value))
        except Exception as exc:
            log.error(
                "skipping an unreadable callback at %s[%s]@%s: %s",
                record.topic, record.partition, record.offset, exc,
            )  # fmt: skip
            return None

    async def _handle(
        self, envelope: Envelope, endpoint: Any, tp: TopicPartition, offset: int
    ) -> None:
        try:
            await self.deliver(envelope)
        except KafkaError:
            log.exception("could not write the outcome of callback at %s@%s", tp, offset)
            self.failed.set()  # its offset stays uncommitted: it is delivered again later
        except Exception:
            log.exception("callback at %s@%s failed unexpectedly; dead-lettering it", tp, offset)
            try:
                await self._dead(envelope, envelope["attempts"], "internal error")
            except Exception:
                log.exception("could not dead-letter callback at %s@%s", tp, offset)
                self.failed.set()  # as above: stop, it is delivered again after a restart
            else:
                self.tracker.done(tp, offset)
        else:
            self.tracker.done(tp, offset)
        finally:
            self.room.release()
            self.taken[endpoint] -= 1
            if not self.taken[endpoint]:
                del self.taken[endpoint]

    async def _defer(self, envelope: Envelope, tier: float) -> None:
        """Put off a callback whose endpoint holds its share of the attempt slots: it waits
        on the shortest retry tier, as it is (not an attempt). Waiting here instead, one
        slow endpoint's callbacks would take every slot while those of other endpoints
        queue behind them."""
        deferred = {**envelope, "not_before": time.time() + tier}
        topic = tier_topic(self.settings.topic_prefix, tier)
        await self._send(topic, envelope["callback"]["batch_id"], _JSON(deferred).encode())

    async def deliver(self, envelope: Envelope) -> None:
        """One attempt, then delivered / retry later / dead letter."""
        assert self.deliverer is not None
        callback = envelope["callback"]
        attempts = list(envelope["attempts"])
        number = len(attempts) + 1
        url = callback["url"]
        if url in self.disabled.values:  # the letter holds the URL: the reason need not
            await self._dead(envelope, attempts, "its endpoint was disabled after 410 Gone")
            return
        try:
            await self.guard.check(url)
            secrets = self.secrets.get(callback["tenant"])
            if not secrets:
                raise CallbackRefused(f"no webhook secret for tenant {callback['tenant']}")
        except CannotResolve as exc:
            result = unresolved(exc.reason)
        except CallbackRefused as exc:
            attempt = self._attempt(callback, number, "refused", None, error=exc)
            await self._record(attempt)
            await self._dead(envelope, [*attempts, attempt], f"refused: {exc}")
            return
        else:
            body = _JSON(callback["payload"]).encode()
            headers = webhook_headers(secrets, callback["callback_id"], body)
            result = await self.deliverer.attempt(url, body, headers)
        if result.verdict is Verdict.DELIVERED:
            await self._record(self._attempt(callback, number, "delivered", result))
            return
        if result.verdict is Verdict.GONE:
            attempt = self._attempt(callback, number, "disabled", result)
            await self._record(attempt)
            await self._disable(url, callback)
            await self._dead(envelope, [*attempts, attempt], "410 Gone: endpoint disabled")
            return
        delay = self.policy.next_delay(number, result.verdict, result.retry_after_s)
        if delay is None:
            attempt = self._attempt(callback, number, "dead_lettered", result)
            await self._record(attempt)
            await self._dead(envelope, [*attempts, attempt], f"gave up after {number} attempts")
            return
        attempt = self._attempt(callback, number, "retry", result)
        await self._record(attempt)
        retry = {
            "callback": callback,
            "attempts": [*attempts, attempt],
            "not_before": time.time() + self.policy.jittered(delay, result.retry_after_s),
        }
        topic = tier_topic(self.settings.topic_prefix, self.policy.tier_for(delay))
        await self._send(topic, callback["batch_id"], _JSON(retry).encode())

    def _attempt(
        self,
        callback: dict[str, Any],
        number: int,
        outcome: str,
        result: AttemptResult | None,
        error: Exception | None = None,
    ) -> dict[str, Any]:
        return {
            "callback_id": callback["callback_id"],
            "batch_id": callback["batch_id"],
            "tenant": callback["tenant"],
            "url": callback["url"],
            "attempt": number,
            "outcome": outcome,
            "http_status": result.http_status if result else None,
            "latency_ms": result.latency_ms if result else 0.0,
            "response": result.response if result else str(error),
            "error_class": result.error_class if result else type(error).__name__,
            "at": iso(),
        }

    async def _record(self, attempt: dict[str, Any]) -> None:
        value = codec.encode("DeliveryAttempt", attempt)
        await self._send(self.topics["deliveries"], attempt["batch_id"], value)

    async def _dead(self, envelope: Envelope, attempts: list[Any], reason: str) -> None:
        callback = envelope["callback"]
        letter = {"callback": callback, "attempts": attempts, "reason": reason, "dead_at": iso()}
        log.warning("callback %s dead-lettered: %s", callback["callback_id"], reason)
        value = codec.encode("DeadLetter", letter)
        await self._send(self.topics["dlq"], callback["batch_id"], value)

    async def _disable(self, url: str, callback: dict[str, Any]) -> None:
        record = {"disabled": True, "at": iso(), "callback_id": callback["callback_id"]}
        self.disabled.values[url] = record
        await self._send(self.topics["endpoints"], url, _JSON(record).encode())

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        """Every write is awaited before its callback counts as handled: a failed write
        raises (the offset stays uncommitted) instead of being lost in the buffer."""
        assert self.producer is not None
        await self.producer.send_and_wait(topic, value, key=key.encode())

    async def commit(self) -> None:
        """Commit what is finished, after the producer has flushed what it produced."""
        assert self.consumer is not None and self.producer is not None
        await commit_finished(self.consumer, self.tracker, self.producer.flush)

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        with contextlib.suppress(KafkaError, IllegalStateError):
            await self.commit()
        self.tracker.forget(revoked)
        for tp in revoked:
            self.paused.pop(tp, None)

    async def _drain(self, within_s: float = 20.0) -> None:
        """On stop: let attempts under way finish (bounded), then commit."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=within_s)
        with contextlib.suppress(Exception):
            await self.commit()


def run_connector(settings: Settings, options: ConnectorOptions) -> None:
    """Run until SIGINT/SIGTERM."""
    import signal

    from streams import log_limits, reconnect_backoff

    log_limits.install()
    reconnect_backoff.install()
    cluster_watch.install()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await WebhookConnector(settings, options).run(stop)

    asyncio.run(main())
