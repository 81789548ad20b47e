"""Issue 7, scenario 5 (hostile input) on a real worker and broker: hostile messages on
`batchwire.batches` and hostile HTTP bodies are each rejected with a contract code, and the
worker goes on (a valid batch completes with exact counters, `/healthz` answers).

Sizes follow the hypothesis profile (`BATCHWIRE_HYPOTHESIS_PROFILE=soak` for the soak)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from streams.api.errors import HTTP_STATUS, ApiError
from streams.api.sync_batch import to_items
from streams.errors import SubmissionError
from streams.validation import Submission
from tests.fixtures.hostile import (
    CONTRACT_CODES,
    MAX_ITEMS,
    PATH_CODES,
    Mutated,
    Raw,
    broken_items,
    draw_many,
    hostile_raw,
    judge,
    mutated_submissions,
    profile,
    scale,
)
from tests.fixtures.kafka_io import read_until, wait_final
from tests.fixtures.workers import WorkerFactory, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ACME = {"Authorization": "Bearer key-acme"}
ECHO = {"namespace": "batchwire", "action": "echo", "params": {"x": 1}}


def echo_items(n: int) -> list[dict[str, Any]]:
    return [{**ECHO, "id": f"v{i}", "params": {"i": i}} for i in range(n)]


async def produce_each(bootstrap: str, topic: str, messages: list[Raw]) -> None:
    """Each message with its own Kafka headers, keyed by tenant as producers do."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=10 * 1024 * 1024)
    await producer.start()
    try:
        for message in messages:
            await producer.send(topic, message.value, key=b"acme", headers=message.headers)
        await producer.flush()
    finally:
        await producer.stop()


def is_held(raw: Raw, verdict: SubmissionError) -> bool:
    """A part > 0 whose only problem depends on its place in the batch waits for its
    predecessors (legitimately never rejected on its own)."""
    if verdict.code not in ("too_many_items", "duplicate_item_id"):
        return False
    try:
        body = json.loads(raw.value)
    except ValueError:
        return True  # an Avro part: keep it out rather than decode it twice
    part, parts = body.get("part"), body.get("parts")
    return isinstance(part, int) and isinstance(parts, int) and 0 < part < parts


def assert_alive(worker: WorkerProcess) -> None:
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
    assert httpx.get(f"{worker.url}/healthz", timeout=10).status_code == 200


async def test_hostile_topic_messages_are_each_rejected_while_a_valid_batch_completes(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker = worker_factory({"BATCHWIRE_MAX_ITEMS": str(MAX_ITEMS)})
    generated = draw_many(hostile_raw(), scale())
    hostile: list[Raw] = []
    expected: Counter[tuple[bytes, str]] = Counter()
    accepted = held = 0
    for raw in generated:
        verdict = judge(raw.value, raw.headers)
        if isinstance(verdict, Submission):
            accepted += 1  # a corrupted Avro byte may leave a valid part: not hostile
        elif is_held(raw, verdict):
            held += 1
        else:
            hostile.append(raw)
            expected[(raw.value, verdict.code)] += 1
    assert len(hostile) >= 0.95 * len(generated), (accepted, held)
    valid = Raw(
        json.dumps({"batch_id": "valid-1", "tenant": "acme", "items": echo_items(30)}).encode(),
        "valid",
    )
    half = len(hostile) // 2
    topic = f"{topic_prefix}batchwire.batches"
    await produce_each(kafka_bootstrap, topic, [*hostile[:half], valid, *hostile[half:]])

    rejected = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.rejected",
        lambda records: len(records) >= len(hostile),
        timeout=120 + len(hostile) / 20,
    )
    seen = Counter((r.datum["raw"], r.datum["error"]["code"]) for r in rejected)
    assert seen == expected, {
        "missing": [(raw[:80], code) for raw, code in (expected - seen)][:10],
        "unexpected": [(raw[:80], code) for raw, code in (seen - expected)][:10],
    }
    for record in rejected:
        error = record.datum["error"]
        assert error["code"] in CONTRACT_CODES
        if error["code"] in PATH_CODES:
            assert all(d["path"].startswith("$") for d in error["details"]), error
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["valid-1"]))["valid-1"]
    assert final["status"] == "completed"
    counters = final["counters"]
    assert (counters["posted"], counters["processed"], counters["succeeded"]) == (30, 30, 30)
    assert counters["failed"] == counters["skipped"] == 0
    assert_alive(worker)
    codes = Counter(code for _, code in expected.elements())
    print(
        f"\nprofile {profile()}: {len(generated)} generated, {len(hostile)} sent, "
        f"{accepted} valid by chance, {held} held; rejected by code: {dict(codes)}"
    )


# -- HTTP --------------------------------------------------------------------------------


def http_expectation(mutated: Mutated) -> str | None:
    """The code `POST /v1/tenants/acme/batches` must answer, None when it must accept."""
    if mutated.what == "no $.tenant":
        return None  # the URL names the tenant
    if mutated.what.startswith(("$.tenant", "$.part", "$.parts")):
        return "invalid_batch_format"  # another tenant than the URL's; parts are the API's
    mutated.raw["tenant"] = "acme"
    return mutated.code


def sync_batch_accepts(request: Any) -> bool:
    """`/v1/batch` keeps only id, method, path, headers, body and transaction of a request:
    an item broken in another field (group, stage, an action's fields) may be valid there."""
    try:
        items = to_items([request])
    except ApiError:
        return False
    as_batch = json.dumps({"tenant": "acme", "items": items}).encode()
    return isinstance(judge(as_batch), Submission)


def assert_contract_answer(answer: httpx.Response, what: str) -> str:
    assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    body = answer.json()
    assert set(body) == {"error"}, (what, body)
    assert set(body["error"]) == {"code", "message", "details"}, (what, body)
    code = body["error"]["code"]
    assert code in CONTRACT_CODES and answer.status_code == HTTP_STATUS[code], (what, body)
    return str(code)


async def test_hostile_http_bodies_get_contract_errors_and_the_worker_goes_on(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory({"BATCHWIRE_MAX_ITEMS": str(MAX_ITEMS)})
    count = scale() // 3
    mutated = draw_many(mutated_submissions(), count, seed=11)
    raws = draw_many(hostile_raw(), count, seed=12)
    items = draw_many(broken_items(), count, seed=13)
    codes: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:

        async def post(path: str, content: bytes, what: str, **headers: str | bytes) -> str:
            answer = await client.post(
                path,
                content=content,
                headers={**ACME, "Content-Type": "application/json", **headers},
            )
            code = assert_contract_answer(answer, what)
            codes[code] += 1
            return code

        for m in mutated:
            want = http_expectation(m)
            if want is None:
                continue
            got = await post("/v1/tenants/acme/batches", json.dumps(m.raw).encode(), m.what)
            assert got == want, (m.what, got)
        for raw in raws:
            if raw.kind == "json: no $.tenant":
                continue  # a valid batch for the URL's tenant
            for path in ("/v1/tenants/acme/batches", "/v1/batch"):
                await post(path, raw.value, raw.kind)
            answer = await client.post(
                "/v1/batches:multi-tenant",
                content=raw.value,
                headers={**ACME, "Content-Type": "application/json"},
            )
            if answer.status_code != 207:
                codes[assert_contract_answer(answer, raw.kind)] += 1
        for what, _, item in items:
            request = dict(item) if isinstance(item, dict) else item
            if not sync_batch_accepts(request):
                await post("/v1/batch", json.dumps([request]).encode(), what)
            answer = await client.post(
                "/v1/batches:multi-tenant",
                json={
                    "tenants": ["acme", "globex", "initech", ["x"]],
                    "batch": {"items": [request]},
                },
                headers=ACME,
            )
            if answer.status_code != 207:  # a body too deep is refused as a whole
                codes[assert_contract_answer(answer, what)] += 1
                continue
            body = answer.json()
            assert body["postedSuccess"] == {}
            assert set(body["postedProblems"]) == {"acme", "globex", "initech", "['x']"}
            for problems in body["postedProblems"].values():
                assert problems and all(p["code"] in CONTRACT_CODES for p in problems)
        for path, content, ctype, what in fixed_bodies():
            await post(path, content, what, **({} if ctype is None else {"Content-Type": ctype}))
        for path in ("/v1/tenants/acme/batches", "/v1/batch", "/v1/batches:multi-tenant"):
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic a2V5"}):
                answer = await client.post(path, content=b"{", headers=headers)
                assert assert_contract_answer(answer, f"{path} {headers}") == "unauthorized"
        answer = await client.post(  # a header the server can only decode to surrogates
            "/v1/batch",
            json=[{"id": "1", "method": "GET", "path": "/"}],
            headers={**ACME, "X-Trace": b"caf\xe9\xff"},  # type: ignore[dict-item]
        )
        assert assert_contract_answer(answer, "header not UTF-8") == "invalid_batch_format"
        assert_alive(worker)
        answer = await client.post(
            "/v1/tenants/acme/batches?wait=60", json={"items": echo_items(5)}, headers=ACME
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "completed"
        assert [r["output"] for r in answer.json()["results"]] == [{"i": i} for i in range(5)]
    print(f"\nprofile {profile()}: HTTP answers by code: {dict(codes)}")


def fixed_bodies() -> list[tuple[str, bytes, str | bytes | None, str]]:
    """Bodies no strategy draws: wrong content types, huge, deep, array/scalar bodies."""
    deep = b"[" * 10_000 + b"]" * 10_000
    huge_tenant = json.dumps({"tenant": "t" * 5_000_000, "items": echo_items(1)}).encode()
    many = json.dumps([{"method": "GET", "path": f"/{i}"} for i in range(101)]).encode()
    out: list[tuple[str, bytes, str | bytes | None, str]] = []
    for path in ("/v1/tenants/acme/batches", "/v1/batch", "/v1/batches:multi-tenant"):
        for ctype in (
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "",
            b"application/json\xe9",
        ):
            out.append((path, b'{"items": []}', ctype, f"content-type {ctype!r}"))
        out += [
            (path, deep, None, "10,000 levels"),
            (path, b'{"a": ' + deep + b"}", None, "10,000 levels in an object"),
            (path, b"\xff\xfe{}", None, "invalid utf-8"),
            (path, b"", None, "empty body"),
            (path, b"null", None, "null"),
            (path, b'"batch"', None, "a string"),
            (path, huge_tenant, None, "5 MB tenant"),
        ]
    out += [
        ("/v1/batch", many, None, "101 requests"),
        ("/v1/batch", b"{}", None, "an object, not an array"),
        ("/v1/tenants/acme/batches", b"[]", None, "an array, not an object"),
        (
            "/v1/tenants/acme/batches",
            b'{"batch_id": 0, "items": [{"method": "GET", "path": "/"}]}',
            None,
            "batch_id 0",
        ),
        ("/v1/tenants/initech/batches", b'{"items": []}', None, "a tenant the key does not hold"),
        ("/v1/batches:multi-tenant", b'{"tenants": "acme"}', None, "tenants not a list"),
        ("/v1/tenants/acme/batches", b"x\n{", "application/x-ndjson", "ndjson garbage"),
        (
            "/v1/tenants/acme/batches",
            b'{"method": "GET", "path": "/"}\n' + deep,
            "application/x-ndjson",
            "ndjson deep line",
        ),
        (
            "/v1/tenants/acme/batches",
            b'{"method": "GET", "path": "/", "body": "\\udc00"}',
            "application/x-ndjson",
            "ndjson lone surrogate",
        ),
    ]
    return out
