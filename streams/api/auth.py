"""Bearer keys per tenant, compared in constant time; no key is ever logged."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from streams.api.errors import ApiError
from streams.settings import Secret


def tenants_of(authorization: str | None, keys: Mapping[str, Secret]) -> frozenset[str]:
    """The tenants whose key is the request's bearer token (one key may hold several).

    Every configured key is compared, whatever matched before, so the time taken does not
    tell which key or how much of it matched.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("unauthorized", "send `Authorization: Bearer <tenant key>`")
    # aiohttp decodes header bytes as UTF-8 with surrogates for the bytes that are not:
    # those cannot be any key
    presented = token.strip().encode("utf-8", "surrogateescape")
    held = {
        tenant for tenant, key in keys.items() if hmac.compare_digest(key.value.encode(), presented)
    }
    if not held:
        raise ApiError("unauthorized", "the bearer key is not valid")
    return frozenset(held)
