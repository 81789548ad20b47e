"""Bearer keys (`streams.api.auth.tenants_of`)."""

from __future__ import annotations

import pytest

from streams.api.auth import tenants_of
from streams.api.errors import ApiError
from streams.settings import Secret

KEYS = {"acme": Secret("k-acmé"), "globex": Secret("k-globex")}


def test_a_key_gives_its_tenants() -> None:
    assert tenants_of("Bearer k-acmé", KEYS) == {"acme"}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic k-globex",
        "Bearer ",
        "Bearer k-nobody",
        # bytes that are not UTF-8, as aiohttp hands them over (surrogate escapes)
        "Bearer \udcff\udcfe",
        b"Bearer k-acm\xe9".decode("utf-8", "surrogateescape"),
    ],
)
def test_anything_else_is_unauthorized(header: str | None) -> None:
    with pytest.raises(ApiError) as info:
        tenants_of(header, KEYS)
    assert info.value.code == "unauthorized"
