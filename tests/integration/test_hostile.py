"""Issue 7, scenario 5 (hostile input) on a real worker and broker: hostile messages on
`batchwire.batches` and hostile HTTP bodies are each rejected with a contract code, and the
worker goes on (a valid batch completes with exact counters, `/healthz` answers).

Sizes follow the hypothesis profile (`BATCHWIRE_HYPOTHESIS_PROFILE=soak` for the soak)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from streams.api.errors import HTTP_STATUS, ApiError
from streams.api.sync_batch import to_items
from streams.errors import SubmissionError
from streams.http_limits import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_URL_BYTES,
    ndjson_max_bytes,
)
from streams.localkafka.broker import free_port
from streams.parts import MAX_MESSAGE_BYTES
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
from tests.fixtures.workers import WorkerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.timeout(300 if profile() == "ci" else 1500),
]
SLOW_MS = 250


class _SlowTarget(BaseHTTPRequestHandler):
    """The tenant API of the isolation test: every request takes SLOW_MS, then 200 {}."""

    def _answer(self) -> None:
        time.sleep(SLOW_MS / 1000)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def slow_target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowTarget)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, slow_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileWorker]:
    """One worker for the module (its start is most of a test's time on two cores)."""
    home = tmp_path_factory.mktemp("hostile")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHWIRE_")}
    env.update(
        BATCHWIRE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        BATCHWIRE_TOPIC_PREFIX=prefix,
        BATCHWIRE_ALLOWED_TENANTS="acme;globex",
        BATCHWIRE_TENANT_KEYS="acme=key-acme;globex=key-globex;initech=key-initech",
        BATCHWIRE_TARGET_URLS=f"acme={slow_target}",
        BATCHWIRE_MAX_ITEMS=str(MAX_ITEMS),
        BATCHWIRE_WEB_PORT=str(free_port()),
        BATCHWIRE_DATA_DIR=str(home / "data"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    process = WorkerProcess(
        env=env, log_path=home / "worker.log", port=int(env["BATCHWIRE_WEB_PORT"])
    )
    process.start()
    try:
        yield HostileWorker(process, kafka_bootstrap, prefix)
    finally:
        process.stop()


@dataclass
class HostileWorker:
    process: WorkerProcess
    bootstrap: str
    prefix: str

    @property
    def url(self) -> str:
        return self.process.url


ACME = {"Authorization": "Bearer key-acme"}
ECHO = {"namespace": "batchwire", "action": "echo", "params": {"x": 1}}


def echo_items(n: int) -> list[dict[str, Any]]:
    return [{**ECHO, "id": f"v{i}", "params": {"i": i}} for i in range(n)]


async def produce_each(bootstrap: str, topic: str, messages: list[Raw]) -> None:
    """Each message with its own Kafka headers, keyed by tenant as producers do."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_MESSAGE_BYTES)
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


def assert_alive(worker: HostileWorker) -> None:
    proc = worker.process.proc
    assert proc is not None and proc.poll() is None, worker.process.log_tail()
    assert httpx.get(f"{worker.url}/healthz", timeout=10).status_code == 200


async def test_hostile_topic_messages_are_each_rejected_while_a_valid_batch_completes(
    worker: HostileWorker,
) -> None:
    kafka_bootstrap, topic_prefix = worker.bootstrap, worker.prefix
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
    try:
        json.dumps(mutated.raw, allow_nan=False)
    except ValueError:
        return "invalid_json"  # NaN or Infinity in the body's text: not JSON (the API's 400)
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
    worker: HostileWorker,
) -> None:
    count = scale() // 4
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
            multi = {"tenants": ["acme", "globex", "initech", ["x"]], "batch": {"items": [request]}}
            answer = await client.post(  # json.dumps, as above: httpx's json= refuses inf and NaN
                "/v1/batches:multi-tenant",
                content=json.dumps(multi).encode(),
                headers={**ACME, "Content-Type": "application/json"},
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


# -- tenant isolation (scenario 6, the hostile half) ---------------------------------

KEYS = {
    "acme": {"Authorization": "Bearer key-acme"},
    "globex": {"Authorization": "Bearer key-globex"},
    "initech": {"Authorization": "Bearer key-initech"},  # a key, but not an allowed tenant
    "wrong": {"Authorization": "Bearer key-acme-but-not"},
    "empty": {"Authorization": "Bearer"},
    "basic": {"Authorization": "Basic a2V5LWFjbWU="},
    "none": {},
}
SLOW_ITEMS = 12  # one group of SLOW_MS requests: the batch runs ~3 s, long enough to cancel


def crafted(batch_id: str) -> list[str]:
    """Ids a foreign caller might try for `batch_id`, already escaped for a URL path."""
    raw = [
        batch_id,
        batch_id.upper(),
        f"{batch_id} ",
        f"{batch_id}\u200b",
        f"acme/{batch_id}",
        f"../acme/{batch_id}",
        f"..%2Facme%2F{batch_id}",
        f"%2e%2e%2f{batch_id}",
        f"{batch_id}/",
        f"{batch_id}\x00",
        f"{batch_id}%00",
        f"*{batch_id}*",
        "*",
        "é" * 300,
        "x" * 4000,
    ]
    escaped = [quote(text, safe="") for text in raw]
    return [*escaped, f"..%2F..%2Fv1%2Fbatches%2F{batch_id}", "%2E", "%2E%2E", "%2e%2e%2F"]


async def lookups(
    client: httpx.AsyncClient, batch_ids: list[str], headers: dict[str, str]
) -> list[tuple[str, httpx.Response]]:
    """Status, results and cancel of each (escaped) id with one set of headers, at once."""
    calls = []
    for batch_id in batch_ids:
        base = f"/v1/batches/{batch_id}"
        calls += [
            (batch_id, client.get(base, headers=headers)),
            (batch_id, client.get(f"{base}/results", headers=headers)),
            (batch_id, client.get(f"{base}/results?tenant=acme", headers=headers)),
            (batch_id, client.get(f"{base}?tenant=acme", headers=headers)),
            (batch_id, client.post(f"{base}/cancel", headers=headers)),
        ]
    answers = await asyncio.gather(*(call for _, call in calls))
    return [(batch_id, answer) for (batch_id, _), answer in zip(calls, answers, strict=True)]


def assert_reveals_nothing(answer: httpx.Response, secrets: list[str], what: str) -> None:
    assert answer.status_code in (401, 404), (what, answer.status_code, answer.text[:300])
    for secret in secrets:
        assert secret not in answer.text, (what, answer.text[:300])
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
        assert set(body) == {"error"}, (what, body)
        assert body["error"]["code"] == (
            "unauthorized" if answer.status_code == 401 else "not_found"
        )


async def test_foreign_keys_and_crafted_ids_never_reveal_or_cancel_a_batch(
    worker: HostileWorker,
) -> None:
    secret_a, secret_g = f"acme-{uuid.uuid4().hex}", f"globex-{uuid.uuid4().hex}"
    slow = [
        {"id": f"s{i}-{secret_a}", "method": "GET", "path": f"/slow?s={secret_a}", "group": "g"}
        for i in range(SLOW_ITEMS)
    ]
    echo = {"namespace": "batchwire", "action": "echo"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:

        async def submit(tenant: str, body: dict[str, Any]) -> None:
            answer = await client.post(
                f"/v1/tenants/{tenant}/batches", json=body, headers=KEYS[tenant]
            )
            assert answer.status_code == 202, answer.text

        await submit("acme", {"batch_id": "iso-a", "items": slow, "metadata": {"s": secret_a}})
        for tenant, secret in (("acme", secret_a), ("globex", secret_g)):  # one id, two tenants
            items = [{**echo, "id": "1", "params": {"s": secret}}]
            await submit(tenant, {"batch_id": "shared", "items": items, "metadata": {"s": secret}})
        await submit(
            "globex", {"batch_id": "iso-g", "items": [{**echo, "params": {"s": secret_g}}]}
        )
        await wait_status(client, "iso-a", "acme", lambda s: s["processed"] >= 1)

        # while iso-a runs: every foreign lookup and cancel, with every id variant
        checked = 0
        for who in ("globex", "initech", "wrong", "empty", "basic", "none"):
            for batch_id, answer in await lookups(client, crafted("iso-a"), KEYS[who]):
                assert_reveals_nothing(answer, [secret_a], f"{who} {batch_id[:40]}")
                checked += 1
        # the owner's key with crafted ids; another tenant's key with the plain id
        for who, ids in (("globex", crafted("iso-g")[1:]), ("acme", ["iso-g"])):
            for batch_id, answer in await lookups(client, ids, KEYS[who]):
                assert_reveals_nothing(answer, [secret_g], f"{who} {batch_id[:40]}")
                checked += 1
        assert checked > 500

        done = await wait_status(client, "iso-a", "acme", lambda s: s["finished_at"] is not None)
        assert done["status"] == "completed", done
        assert done["counters"]["succeeded"] == SLOW_ITEMS
        assert done["counters"].get("cancelled", 0) == 0
        assert done["metadata"] == {"s": secret_a}  # the owner sees it: the check can fail
        for tenant, secret, other in (("acme", secret_a, secret_g), ("globex", secret_g, secret_a)):
            state = await wait_status(
                client, "shared", tenant, lambda s: s["finished_at"] is not None
            )
            assert state["metadata"] == {"s": secret}
            results = await client.get("/v1/batches/shared/results", headers=KEYS[tenant])
            assert secret in results.text and other not in results.text
    assert_alive(worker)


async def wait_status(
    client: httpx.AsyncClient, batch_id: str, tenant: str, done: Any, attempts: int = 300
) -> dict[str, Any]:
    for _ in range(attempts):
        answer = await client.get(f"/v1/batches/{batch_id}", headers=KEYS[tenant])
        if answer.status_code == 200:
            state: dict[str, Any] = answer.json()
            if done(state.get("counters", {}) | state):
                return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"batch {batch_id} of {tenant}: condition not met")


# -- request size limits (URL, headers, bodies) ------------------------------------------

#: bytes a client may have sent past a body limit before the answer reaches it: the
#: loopback socket buffers of both ends and aiohttp's read buffer (a few MiB on Linux)
IN_FLIGHT_BYTES = 16 * 1024 * 1024


async def raw_request(
    url: str, head: bytes, chunks: Iterable[bytes] = (), *, max_sent: int = 0
) -> tuple[httpx.Response, int]:
    """Send `head`, then `chunks` as a chunked body until the answer's status line arrives
    (or `max_sent` body bytes went out); the answer and the body bytes sent before it.

    httpx writes a whole body before it reads the answer, so it cannot show that the server
    answered (and stopped reading) in the middle of a body; and it cannot lie about a length.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sent = 0

    async def send() -> None:
        nonlocal sent
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            if sent > max_sent:
                return
            await asyncio.sleep(0)  # let the reader see an answer between chunks

    try:
        writer.write(head)
        sender = asyncio.create_task(send())
        try:
            status_and_headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        status_line, *lines = status_and_headers.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines if line)
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body), sent


def assert_refused(answer: httpx.Response, status: int, what: str) -> dict[str, Any]:
    """A URL or header refused by aiohttp's parser: `status` with a contract error body."""
    assert answer.status_code == status, (what, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/json"), (what, answer.headers)
    body = answer.json()
    assert set(body) == {"error"}, (what, body)
    assert set(body["error"]) == {"code", "message", "details"}, (what, body)
    assert body["error"]["code"] == "invalid_batch_format", (what, body)
    return dict(body["error"])


async def test_oversize_urls_and_headers_get_contract_errors(worker: HostileWorker) -> None:
    ndjson = {**ACME, "Content-Type": "application/x-ndjson"}
    line = json.dumps({**ECHO, "id": "1"}).encode() + b"\n"
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        # long but within the limits: the views answer
        answer = await client.get(
            f"/v1/batches/none?pad={'x' * (MAX_URL_BYTES - 200)}", headers=ACME
        )
        assert assert_contract_answer(answer, "URL near the limit") == "not_found"
        near = {**ACME, "X-Pad": "x" * (MAX_HEADER_BYTES - 200)}
        answer = await client.get("/v1/batches/none", headers=near)
        assert assert_contract_answer(answer, "header near the limit") == "not_found"
        metadata = json.dumps({"note": "x" * (MAX_URL_BYTES - 500)})
        answer = await client.post(
            "/v1/tenants/acme/batches", params={"metadata": metadata}, content=line, headers=ndjson
        )
        assert answer.status_code == 202, answer.text

        # over the limits: 414 and 431 with the contract's body
        answer = await client.get(f"/v1/batches/none?pad={'x' * MAX_URL_BYTES}", headers=ACME)
        error = assert_refused(answer, 414, "long URL")
        assert f"{MAX_URL_BYTES} bytes" in error["message"]
        metadata = json.dumps({"note": "x" * MAX_URL_BYTES})
        answer = await client.post(
            "/v1/tenants/acme/batches", params={"metadata": metadata}, content=line, headers=ndjson
        )
        assert_refused(answer, 414, "NDJSON metadata over the URL limit")
        answer = await client.get(
            "/v1/batches/none", headers={**ACME, "X-Pad": "x" * (MAX_HEADER_BYTES + 100)}
        )
        error = assert_refused(answer, 431, "long header")
        assert f"{MAX_HEADER_BYTES} bytes" in error["message"]
        many = {**ACME, **{f"X-Header-{i}": "1" for i in range(MAX_HEADERS)}}
        answer = await client.get("/v1/batches/none", headers=many)
        assert_refused(answer, 431, "too many headers")
    # not HTTP: 400 with the contract's body too
    answer, _ = await raw_request(worker.url, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
    assert assert_contract_answer(answer, "a header line without a colon") == "invalid_json"
    assert_alive(worker)


NDJSON_HEAD = (
    b"POST /v1/tenants/acme/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Authorization: Bearer key-acme\r\nContent-Type: application/x-ndjson\r\n"
)


async def test_ndjson_body_over_its_byte_limit_is_refused_while_it_streams(
    worker: HostileWorker,
) -> None:
    limit = ndjson_max_bytes(MAX_ITEMS)
    pad = "x" * 1_500_000  # valid items, few enough that the byte limit comes first
    assert limit // len(pad) < MAX_ITEMS
    lines = (
        json.dumps({**ECHO, "id": f"big-{i}", "params": {"pad": pad}}).encode() + b"\n"
        for i in itertools.count()
    )
    head = NDJSON_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    answer, sent = await raw_request(worker.url, head, lines, max_sent=3 * limit)
    assert assert_contract_answer(answer, "NDJSON over the byte limit") == "too_many_items"
    assert f"larger than {limit} bytes" in answer.json()["error"]["message"]
    assert limit < sent < limit + IN_FLIGHT_BYTES, (limit, sent)  # it stopped reading

    declared = NDJSON_HEAD + b"Content-Length: %d\r\n\r\n" % (limit + 1)
    answer, _ = await raw_request(worker.url, declared)  # refused before any body byte
    assert assert_contract_answer(answer, "NDJSON declared over the limit") == "too_many_items"
    assert_alive(worker)


async def test_json_body_over_its_byte_limit_gets_a_contract_error(
    worker: HostileWorker,
) -> None:
    mib = b"x" * (1024 * 1024)

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"items": [], "pad": "'
        for _ in range(MAX_BODY_BYTES // len(mib) + 1):
            yield mib
        yield b'"}'

    json_headers = {**ACME, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches", content=streamed(), headers=json_headers
        )
        assert assert_contract_answer(answer, "streamed JSON over the limit") == "too_many_items"
        assert f"larger than {MAX_BODY_BYTES} bytes" in answer.json()["error"]["message"]
    for path in ("/v1/tenants/acme/batches", "/v1/batch", "/v1/batches:multi-tenant"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer key-acme\r\n"
            f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
        )
        answer, _ = await raw_request(worker.url, head.encode())
        assert assert_contract_answer(answer, f"{path} declared over") == "too_many_items"
    assert_alive(worker)


async def test_an_item_too_big_for_a_kafka_message_is_refused_before_anything_is_published(
    worker: HostileWorker,
) -> None:
    items = [
        {**ECHO, "id": "small"},
        {**ECHO, "id": "huge", "params": {"pad": "x" * MAX_MESSAGE_BYTES}},
    ]
    ndjson = {**ACME, "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches",
            json={"batch_id": "too-big-json", "items": items},
            headers=ACME,
        )
        assert assert_contract_answer(answer, "JSON, an item over a message") == "too_many_items"
        assert [d["path"] for d in answer.json()["error"]["details"]] == ["$.items[1]"]
        lines = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        answer = await client.post(
            "/v1/tenants/acme/batches",
            params={"batch_id": "too-big-ndjson"},
            content=lines,
            headers=ndjson,
        )
        assert assert_contract_answer(answer, "NDJSON, an item over a message") == "too_many_items"
        assert [d["path"] for d in answer.json()["error"]["details"]] == ["line 2"]
        # a batch sent after them ends; had a part of theirs been published before (same
        # tenant, same partition of `batchwire.batches`), it would be known by then
        answer = await client.post(
            "/v1/tenants/acme/batches",
            params={"wait": "60"},
            json={"batch_id": "after-too-big", "items": echo_items(3)},
            headers=ACME,
        )
        assert answer.status_code == 200 and answer.json()["status"] == "completed", answer.text
        for batch_id in ("too-big-json", "too-big-ndjson"):
            answer = await client.get(f"/v1/batches/{batch_id}", headers=ACME)
            assert assert_contract_answer(answer, batch_id) == "not_found"
    assert_alive(worker)


async def test_an_upload_the_client_abandons_is_logged_as_such_not_as_an_error(
    worker: HostileWorker,
) -> None:
    """A client that closes the connection mid-body (JSON or NDJSON, by length or chunked)
    is an INFO line, not aiohttp's ERROR with a traceback, and publishes nothing."""
    line = json.dumps({**ECHO, "id": "x"}).encode() + b"\n"
    before = worker.process.log_path.read_text(errors="replace").count("closed the connection")
    for content_type, framing in [
        ("application/x-ndjson", "Content-Length: 1000000"),
        ("application/x-ndjson", "Transfer-Encoding: chunked"),
        ("application/json", "Content-Length: 1000000"),
    ]:
        head = (
            "POST /v1/tenants/acme/batches?batch_id=abandoned HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer key-acme\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
        ).encode()
        body = line * 3  # fewer than MAX_ITEMS: the worker waits for the rest
        if "chunked" in framing:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        _, writer = await asyncio.open_connection("127.0.0.1", worker.process.port)
        writer.write(head + body)
        await writer.drain()
        await asyncio.sleep(0.5)  # the worker is reading the body
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    log = ""
    for _ in range(50):  # bounded: the worker logs each within moments
        log = worker.process.log_path.read_text(errors="replace")
        if log.count("closed the connection") >= before + 3:
            break
        await asyncio.sleep(0.2)
    assert log.count("closed the connection") >= before + 3, worker.process.log_tail()
    assert "Error handling request" not in log
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answer = await client.get("/v1/batches/abandoned", headers=ACME)
        assert answer.status_code == 404
    assert_alive(worker)
