"""A Python client for upstream producers and downstream consumers of batchwire.

Three entry points:

- `BatchwireClient`: the HTTP API (submit, NDJSON streaming submit, status, wait, paged
  results, cancel, the synchronous `/v1/batch`), over `httpx.AsyncClient`;
- `KafkaBatches`: straight to Kafka, for producers and consumers that do not go through
  the HTTP API: publish `BatchSubmitted` (split into parts) on `batchwire.batches`, and
  consume `ItemResult`s from `batchwire.results` / `BatchStatus`es from `batchwire.status`;
- `verify_webhook`: check the Standard Webhooks signature of a callback POST.

Every non-2xx HTTP answer raises `BatchwireApiError`, which carries the contract's error
`{code, message, details}`; transport failures are left as `httpx` exceptions.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from connectors.signing import WebhookSecret, verify
from streams.aggregation import FINAL_STATUSES
from streams.codec import decode_as
from streams.errors import BatchwireError, SubmissionError
from streams.parts import MAX_MESSAGE_BYTES, encode_parts

__all__ = [
    "FINAL_STATUSES",
    "BatchTimeout",
    "BatchwireApiError",
    "BatchwireClient",
    "KafkaBatches",
    "verify_webhook",
]

#: Attempts of a request answered 503 `unavailable` (Kafka or the worker owning the batch
#: did not answer: a broker restart, a rebalance), for a submit and the requests that are
#: safe to send again (status, results, cancel).
ATTEMPTS = 3
#: Seconds before the next attempt when a 503 gives no `Retry-After`.
RETRY_AFTER_DEFAULT_S = 5.0
#: The server's own wait on `POST /v1/batch` before it answers 202 instead.
SYNC_WAIT_S = 30.0
#: NDJSON lines are sent in chunks of about this size.
NDJSON_CHUNK_BYTES = 64 * 1024
#: the items of an NDJSON submission
Items = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]
#: How long a Kafka consumer waits for records in one fetch, in milliseconds.
FETCH_TIMEOUT_MS = 500

#: Whether a decoded record is to be given (False: a duplicate to drop).
Keep = Callable[[dict[str, Any]], bool]


class BatchwireApiError(BatchwireError):
    """A non-2xx answer of the HTTP API, with the contract's error object.

    `status` is the HTTP status; `code`, `message` and `details` come from the body's
    `{"error": {...}}`. An answer without that shape (a proxy's error page, say) gets the
    code `unexpected_response`. `retry_after` holds the `Retry-After` seconds of a 429 or 503.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> BatchwireApiError:
        """The error of a non-2xx answer (its body must have been read)."""
        error = _error_object(response)
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if error is None:
            text = response.text[:300]
            return cls(response.status_code, "unexpected_response", text, retry_after=retry_after)
        details = error.get("details")
        return cls(
            response.status_code,
            str(error.get("code") or "unexpected_response"),
            str(error.get("message") or ""),
            details if isinstance(details, list) else [],
            retry_after=retry_after,
        )


class BatchTimeout(BatchwireError):
    """A batch did not end within the time the caller allowed.

    `last_status` is the last status seen (None when the batch was not known yet), so the
    caller can keep waiting or fetch the results later with `batch_id`.
    """

    def __init__(self, batch_id: str, message: str, last_status: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.last_status = last_status


def _error_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def is_final(status: Mapping[str, Any]) -> bool:
    """Whether a status object is one of the final statuses."""
    return status.get("status") in FINAL_STATUSES


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class PartlySubmitted(BatchwireError):
    """Kafka refused a part of a batch after `sent` of its `parts` were published: those
    run. Submit the same batch again under `batch_id` to complete it."""

    def __init__(self, batch_id: str, sent: int, parts: int, cause: Exception) -> None:
        super().__init__(
            f"batch {batch_id}: {sent} of {parts} parts published, then Kafka failed "
            f"({cause!r}); submit it again with batch_id {batch_id} to complete it"
        )
        self.batch_id = batch_id
        self.sent = sent
        self.parts = parts


class BatchwireClient:
    """The batchwire HTTP API over `httpx.AsyncClient`; an async context manager.

    `key` is the tenant key sent as `Authorization: Bearer <key>`; `timeout` applies to each
    request (the synchronous `/v1/batch` gets the server's 30 s wait on top).
    """

    def __init__(self, base_url: str, key: str, *, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        """The JSON body of a 2xx answer; any other answer raises `BatchwireApiError`."""
        response = await self._http.request(method, url, **kwargs)
        if not response.is_success:
            raise BatchwireApiError.from_response(response)
        return response.json()

    async def _request_again_if_unavailable(self, method: str, url: str, **kwargs: Any) -> Any:
        """`_request` for a request that is safe to send again (a lookup, a cancel): a 503
        `unavailable` is tried again after its `Retry-After`, up to `ATTEMPTS` in all."""
        for _ in range(ATTEMPTS - 1):
            try:
                return await self._request(method, url, **kwargs)
            except BatchwireApiError as exc:
                if exc.code != "unavailable":
                    raise
                await _wait_retry_after(exc)
        return await self._request(method, url, **kwargs)

    async def submit(self, tenant: str, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a batch as JSON; the 202 answer `{batch_id, status, status_url, results_url}`.

        The server splits it into parts itself; the JSON body may be up to 64 MB (use
        `submit_ndjson` for larger batches). An answer 503 `unavailable` (Kafka did not take
        the batch) is tried again (`_submit_tries`).
        """
        url = f"/v1/tenants/{_segment(tenant)}/batches"

        async def send(batch_id: str | None) -> dict[str, Any]:
            body = dict(batch) if batch_id is None else {**batch, "batch_id": batch_id}
            answer: dict[str, Any] = await self._request("POST", url, json=body)
            return answer

        return await self._submit_tries(send, batch.get("batch_id"))

    async def submit_ndjson(
        self,
        tenant: str,
        items: Items | Callable[[], Items],
        *,
        batch_id: str | None = None,
        callback_url: str | None = None,
        callback_mode: str | None = None,
        metadata: Any = None,
        deadline_s: float | None = None,
        stop_on_failure: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Submit items as `application/x-ndjson`, one per line, streamed as they are produced.

        The body is never built in memory: `items` (a plain or async iterable) is read
        while the request is sent. The batch-level fields travel in the query string.
        `items` may also be a function that gives them afresh (reading a file again, say):
        then an answer 503 `unavailable` is tried again as `submit` does (`_submit_tries`);
        items already read once cannot be sent again, so an iterable is sent once.
        """
        url = f"/v1/tenants/{_segment(tenant)}/batches"

        async def send(batch_id: str | None) -> dict[str, Any]:
            params = _ndjson_params(
                batch_id=batch_id,
                callback_url=callback_url,
                callback_mode=callback_mode,
                metadata=metadata,
                deadline_s=deadline_s,
                stop_on_failure=stop_on_failure,
                headers=headers,
            )
            answer: dict[str, Any] = await self._request(
                "POST",
                url,
                params=params,
                content=_ndjson_chunks(items() if callable(items) else items),
                headers={"Content-Type": "application/x-ndjson"},
            )
            return answer

        if not callable(items):
            return await send(batch_id)
        return await self._submit_tries(send, batch_id)

    async def _submit_tries(
        self, send: Callable[[str | None], Awaitable[dict[str, Any]]], batch_id: str | None
    ) -> dict[str, Any]:
        """`send(batch_id)`, and after an answer 503 `unavailable` (Kafka did not take the
        batch, or not all of it) again after its `Retry-After`, up to `ATTEMPTS` in all,
        with the batch id that answer gave when the client set none: the server publishes
        what is missing of a batch it has in part, so the batch is submitted once."""
        for _ in range(ATTEMPTS - 1):
            try:
                return await send(batch_id)
            except BatchwireApiError as exc:
                if exc.code != "unavailable":
                    raise
                given = [d["batch_id"] for d in exc.details if isinstance(d.get("batch_id"), str)]
                batch_id = batch_id or (given[0] if given else None)
                if batch_id is None:
                    raise  # no batch id that makes another try safe
                await _wait_retry_after(exc)
        return await send(batch_id)

    async def status(self, batch_id: str, tenant: str | None = None) -> dict[str, Any]:
        """The batch's status: counters, `item_errors`, timestamps, `metadata`.

        Right after a submit the batch may not be registered yet: that is a `not_found`. A
        503 `unavailable` (the worker owning the batch is down and its partitions not moved
        yet, or still being read in) is tried again after its `Retry-After`.
        """
        answer: dict[str, Any] = await self._request_again_if_unavailable(
            "GET", f"/v1/batches/{_segment(batch_id)}", params=_tenant_param(tenant)
        )
        return answer

    async def wait(
        self,
        batch_id: str,
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for the polling, part of the API
        poll_s: float = 0.5,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Poll the status until it is final and return it; `BatchTimeout` after `timeout` s.

        A `not_found` is taken as "not registered yet", and an `unavailable` as a worker
        taking the batch's partition over; both are polled again until the timeout.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            last = await self._status_if_known(batch_id, tenant) or last
            if last is not None and is_final(last):
                return last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = last["status"] if last else "not registered yet"
                raise BatchTimeout(
                    batch_id, f"batch {batch_id} did not end within {timeout}s ({seen})", last
                )
            await asyncio.sleep(min(poll_s, remaining))

    async def _status_if_known(self, batch_id: str, tenant: str | None) -> dict[str, Any] | None:
        try:
            return await self.status(batch_id, tenant)
        except BatchwireApiError as exc:
            if exc.code in ("not_found", "unavailable"):
                return None
            raise

    async def results(
        self,
        batch_id: str,
        *,
        status: str | None = None,
        page_size: int = 1000,
        tenant: str | None = None,
        poll_s: float = 0.5,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every `ItemResult` of the batch in submission order, following `next_cursor`.

        `status` keeps only results with that item status; `page_size` is 1 to 1000. On a
        batch still running, the iterator waits (polling every `poll_s` s) for the next
        result in order and ends once the batch has ended and every result was given.
        """
        cursor: str | None = None
        while True:
            page = await self._results_page(batch_id, cursor, status, page_size, tenant)
            for result in page["results"]:
                yield result
            following = page.get("next_cursor")
            if following is None:
                return
            if not page["results"] and following == cursor:
                await asyncio.sleep(poll_s)  # the next result in order is not there yet
            cursor = following

    async def _results_page(
        self,
        batch_id: str,
        cursor: str | None,
        status: str | None,
        page_size: int,
        tenant: str | None,
    ) -> dict[str, Any]:
        params: dict[str, str] = {"limit": str(page_size), **_tenant_param(tenant)}
        if cursor is not None:
            params["cursor"] = cursor
        if status is not None:
            params["status"] = status
        page: dict[str, Any] = await self._request_again_if_unavailable(
            "GET", f"/v1/batches/{_segment(batch_id)}/results", params=params
        )
        return page

    async def cancel(self, batch_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Cancel a batch (items not yet started become `cancelled`); the 202 status."""
        answer: dict[str, Any] = await self._request_again_if_unavailable(
            "POST", f"/v1/batches/{_segment(batch_id)}/cancel", params=_tenant_param(tenant)
        )
        return answer

    async def run_sync(
        self,
        requests: Sequence[Mapping[str, Any]],
        *,
        tenant: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """`POST /v1/batch`: `[{id, method, path, headers, body, transaction}]` (at most 100)
        answered `[{id, code, headers, body}]` in order.

        `headers` are batch headers every request inherits unless it sets its own. When the
        server's 30 s wait runs out (a 202), `BatchTimeout` carries the batch id.
        """
        response = await self._http.post(
            "/v1/batch",
            json=[dict(r) for r in requests],
            params=_tenant_param(tenant),
            headers=dict(headers or {}),
            timeout=self._timeout + SYNC_WAIT_S,
        )
        if not response.is_success:
            raise BatchwireApiError.from_response(response)
        answer = response.json()
        if response.status_code == 202:
            batch_id = answer["batch_id"]
            raise BatchTimeout(batch_id, f"batch {batch_id} did not end within the wait", answer)
        return list(answer)


async def _wait_retry_after(exc: BatchwireApiError) -> None:
    await asyncio.sleep(RETRY_AFTER_DEFAULT_S if exc.retry_after is None else exc.retry_after)


def _segment(value: str) -> str:
    """A value made safe as one URL path segment."""
    return quote(value, safe="")


def _tenant_param(tenant: str | None) -> dict[str, str]:
    return {} if tenant is None else {"tenant": tenant}


def _ndjson_params(
    *,
    batch_id: str | None,
    callback_url: str | None,
    callback_mode: str | None,
    metadata: Any,
    deadline_s: float | None,
    stop_on_failure: bool | None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The query string of an NDJSON submission (only the fields that are set)."""
    params = {
        "batch_id": batch_id,
        "callback_url": callback_url,
        "callback_mode": callback_mode,
        "metadata": None if metadata is None else json.dumps(metadata),
        "deadline_s": None if deadline_s is None else str(deadline_s),
        "stop_on_failure": None if stop_on_failure is None else str(stop_on_failure).lower(),
        "headers": None if headers is None else json.dumps(dict(headers)),
    }
    return {name: value for name, value in params.items() if value is not None}


async def _each(items: Items) -> AsyncIterator[Mapping[str, Any]]:
    """A plain or async iterable, as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _ndjson_chunks(items: Items) -> AsyncIterator[bytes]:
    """The NDJSON body, one JSON line per item, in chunks of about `NDJSON_CHUNK_BYTES`."""
    buffer = bytearray()
    async for item in _each(items):
        buffer += json.dumps(item, ensure_ascii=False).encode()
        buffer += b"\n"
        if len(buffer) >= NDJSON_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# --------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------


class KafkaBatches:
    """Straight to Kafka, for producers and consumers without the HTTP API.

    An async context manager. Topics are `topic_prefix` + the contract's names. The producer
    starts on the first `submit`; each `results`/`statuses` iterator has its own consumer.
    """

    def __init__(self, bootstrap: str, *, topic_prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush and stop the producer, if it was started."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def topic(self, name: str) -> str:
        """The full name of one of the contract's topics."""
        return f"{self.topic_prefix}{name}"

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, max_request_size=MAX_MESSAGE_BYTES
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # else aiokafka warns of an unclosed producer
                raise
            self._producer = producer
        return self._producer

    async def submit(self, batch: Mapping[str, Any]) -> str:
        """Publish a `BatchSubmitted` as JSON on `batchwire.batches`, keyed by its tenant.

        The batch is split into parts that each fit in one Kafka message, all sharing one
        `batch_id` (a uuid4 hex is generated when the batch has none). Validation happens in
        the worker: a bad batch lands on `batchwire.rejected`. Only an item too big for one
        message (with the batch's fields) raises `SubmissionError` here, before any part is
        sent. A send that fails raises `PartlySubmitted`, which names the batch id: the
        same batch submitted again under that id completes it (the exploder skips the parts
        it has). Returns the batch id.
        """
        body = _whole_batch(batch)
        producer = await self._started_producer()
        key = str(body["tenant"]).encode()
        headers = [("content-type", b"application/json")]
        parts = encode_parts(body, ensure_ascii=False)
        for sent, (_, value) in enumerate(parts):
            try:
                await producer.send_and_wait(
                    self.topic("batchwire.batches"), value, key=key, headers=headers
                )
            except KafkaError as exc:
                raise PartlySubmitted(str(body["batch_id"]), sent, len(parts), exc) from exc
        return str(body["batch_id"])

    def results(
        self,
        *,
        group_id: str,
        batch_id: str | None = None,
        from_beginning: bool = True,
        idle_timeout_s: float | None = None,
        dedupe: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """`ItemResult`s from `batchwire.results`, as a consumer of group `group_id`.

        `batch_id` keeps one batch's results; `from_beginning` reads a new group's
        partitions from their start (else from their end). Offsets are committed as the
        iteration goes: a result counts as consumed once the caller asks for the next one
        (at least once: the result in hand when the caller stops early comes again to the
        group). `dedupe` drops a result of an item already given by this iterator. The
        iterator ends after `idle_timeout_s` s without a result, when given.
        """
        seen: dict[tuple[str, str], set[int]] = {}  # two tenants may use one batch id

        def fresh(result: dict[str, Any]) -> bool:
            indexes = seen.setdefault((result["tenant"], result["batch_id"]), set())
            if result["index"] in indexes:
                return False
            indexes.add(result["index"])
            return True

        return _consume(
            _ConsumerSpec(
                bootstrap=self.bootstrap,
                topic=self.topic("batchwire.results"),
                schema="ItemResult",
                group_id=group_id,
                batch_id=batch_id,
                from_beginning=from_beginning,
                idle_timeout_s=idle_timeout_s,
            ),
            fresh if dedupe else None,
        )

    def statuses(
        self,
        *,
        group_id: str,
        batch_id: str | None = None,
        from_beginning: bool = True,
        idle_timeout_s: float | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """`BatchStatus` changes from `batchwire.status`, as `results` does for results.

        The topic is compacted: reading from the beginning gives at least each batch's
        latest status.
        """
        return _consume(
            _ConsumerSpec(
                bootstrap=self.bootstrap,
                topic=self.topic("batchwire.status"),
                schema="BatchStatus",
                group_id=group_id,
                batch_id=batch_id,
                from_beginning=from_beginning,
                idle_timeout_s=idle_timeout_s,
            ),
            None,
        )


def _whole_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch with a `batch_id`; a batch that is already a part, or has no tenant, is
    refused (`SubmissionError`, `invalid_batch_format`)."""
    if not batch.get("tenant"):
        raise SubmissionError(
            "invalid_batch_format", "the batch names no tenant", [{"path": "$.tenant"}]
        )
    if batch.get("part") is not None or batch.get("parts") is not None:
        raise SubmissionError(
            "invalid_batch_format",
            "send the whole batch: it is split into parts here",
            [{"path": "$.part"}],
        )
    if not isinstance(batch.get("items"), list):
        raise SubmissionError("invalid_batch_format", "items must be a list", [{"path": "$.items"}])
    return {**batch, "batch_id": batch.get("batch_id") or uuid.uuid4().hex}


@dataclass(frozen=True)
class _ConsumerSpec:
    """What one downstream consumer reads."""

    bootstrap: str
    topic: str
    schema: str
    group_id: str
    batch_id: str | None
    from_beginning: bool
    idle_timeout_s: float | None

    def consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.from_beginning else "latest",
        )

    def wanted(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Whether a record is for this consumer (tombstones never are)."""
        if record.value is None:
            return False
        return self.batch_id is None or record.key == self.batch_id.encode()


async def _consume(spec: _ConsumerSpec, keep: Keep | None) -> AsyncIterator[dict[str, Any]]:
    """Decode and give `spec`'s records, committing the offsets of those handled."""
    consumer = spec.consumer()
    await consumer.start()
    done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
    idle = _IdleClock(spec.idle_timeout_s)
    try:
        while not idle.expired(assigned=bool(consumer.assignment())):
            fetched = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
            for tp, records in fetched.items():
                for record in records:
                    if spec.wanted(record):
                        datum = decode_as(spec.schema, record.value or b"")
                        if keep is None or keep(datum):
                            yield datum
                            idle.reset()
                    done[tp] = record.offset + 1
            await _commit(consumer, done)
    finally:
        try:
            await _commit(consumer, done)
        finally:
            await consumer.stop()


async def _commit(consumer: AIOKafkaConsumer, done: dict[TopicPartition, int]) -> None:
    """Commit the handled offsets, then forget them."""
    if done:
        await consumer.commit(dict(done))
        done.clear()


class _IdleClock:
    """Time since the last record given; it runs only once the consumer has partitions."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.since = time.monotonic()

    def reset(self) -> None:
        self.since = time.monotonic()

    def expired(self, *, assigned: bool) -> bool:
        if self.timeout_s is None:
            return False
        if not assigned:  # joining the group does not count as idle
            self.reset()
            return False
        return time.monotonic() - self.since >= self.timeout_s


# --------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: int = 300
) -> bool:
    """Whether a callback POST carries a valid Standard Webhooks signature under `secret`.

    `secret` is the tenant's `whsec_...` secret (a malformed one raises `ConfigError`);
    `headers` are the request's headers (any case) and `body` its raw bytes. A timestamp
    more than `tolerance_s` s away from now is refused, so a captured call cannot be
    replayed later.
    """
    return verify(WebhookSecret.parse(secret), headers, body, tolerance_s=tolerance_s)
