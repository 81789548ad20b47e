"""The local broker's helpers that need no Java."""

import uuid

import pytest

from streams.localkafka import broker


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 encodes to "-" as the first URL-safe base64 character; StorageTool would
    # read such an id as an option and refuse to format the log dir.
    ids = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(ids))
    cluster_id = broker._cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA"
    assert len(cluster_id) == 22
