"""Splitting an NDJSON body into lines as it arrives (streams.api.ndjson.lines_of)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streams.api.errors import ApiError
from streams.api.ndjson import lines_of


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def lines(data: bytes, size: int, max_line: int) -> list[bytes]:
    return [line async for line in lines_of(chunks(data, size), max_line)]


@pytest.mark.parametrize("size", [1, 2, 3, 100])
async def test_lines_whatever_the_chunks(size: int) -> None:
    assert await lines(b"ab\ncdef\n\nghi", size, max_line=4) == [b"ab", b"cdef", b"", b"ghi"]


@pytest.mark.parametrize(("data", "line"), [(b"ab\ncdefg\nx", 2), (b"abcdefgh", 1)])
@pytest.mark.parametrize("size", [1, 3, 100])
async def test_a_line_over_the_limit_is_413_at_once(data: bytes, line: int, size: int) -> None:
    seen: list[bytes] = []
    with pytest.raises(ApiError) as refused:
        async for each in lines_of(chunks(data + b"\n" + b"y" * 1000, size), max_line=4):
            seen.append(each)
    assert (refused.value.status, refused.value.details) == (413, [{"path": f"line {line}"}])
    assert len(seen) == line - 1  # the lines before it, nothing after
