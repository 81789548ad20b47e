"""The SSRF guard for callback URLs.

A tenant chooses where its callbacks go, so a callback URL is untrusted input: left alone,
it could make the connector POST to the cloud metadata service, to a database's HTTP port
on the private network, or to the connector's own host. `AddressGuard.check` resolves the
URL's host and refuses it unless every address it resolves to is public, or lies in a
network the operator allow-listed (`BATCHWIRE_CALLBACK_ALLOW_NETS`).

The addresses are classified with explicit tables rather than `ipaddress`'s `is_private`
and friends, whose answers changed between Python versions (notably for IPv4-mapped IPv6).
Addresses that embed an IPv4 address a dual-stack host or a translator would reach
(IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are
judged by the IPv4 address inside.

`check` only resolves, it never connects: it gives a refused URL its reason (the callback is
dead-lettered with it). The HTTP client resolves the host again when it connects, and a
name may answer otherwise the second time (DNS rebinding), so the connector's client
resolves through `GuardedResolver`, which applies the same guard to the addresses it
actually connects to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import TypeAlias
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from streams.errors import BatchwireError, ConfigError

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RESOLVE_TIMEOUT_S = 5.0


class CallbackRefused(BatchwireError):
    """A callback URL is not acceptable: bad scheme, userinfo, unresolvable or internal host.

    `reason` is safe to log and to show to the tenant.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CannotResolve(CallbackRefused):
    """The callback host's name did not resolve (timed out, failed, no address): possibly a
    passing DNS failure, so the attempt is retried on the schedule rather than refused."""


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: Cloud instance metadata endpoints (AWS/GCP/Azure/OCI, AWS IPv6, Alibaba). Refused even
#: when a broader allow-listed network contains them: only an allow-listed network that is
#: exactly the one address lets them through.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

#: (category, networks), checked in order; the first match names the refusal.
_V4_REFUSED: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("unspecified", _nets("0.0.0.0/8")),
    ("loopback", _nets("127.0.0.0/8")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("link-local", _nets("169.254.0.0/16")),
    ("carrier-grade NAT", _nets("100.64.0.0/10")),
    ("multicast", _nets("224.0.0.0/4")),
    (
        "reserved",
        _nets(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation (TEST-NET-1)
            "192.88.99.0/24",  # 6to4 relay anycast
            "198.18.0.0/15",  # benchmarking
            "198.51.100.0/24",  # documentation (TEST-NET-2)
            "203.0.113.0/24",  # documentation (TEST-NET-3)
            "240.0.0.0/4",  # future use, and 255.255.255.255 broadcast
        ),
    ),
)

_V6_REFUSED: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("unspecified", _nets("::/128")),
    ("loopback", _nets("::1/128")),
    ("private", _nets("fc00::/7", "fec0::/10", "64:ff9b:1::/48")),
    ("link-local", _nets("fe80::/10")),
    ("multicast", _nets("ff00::/8")),
    (
        "reserved",
        _nets(
            "::/8",  # includes the deprecated IPv4-compatible ::a.b.c.d
            "100::/64",  # discard-only
            "2001::/23",  # IETF protocol assignments, including Teredo 2001::/32
            "2001:db8::/32",  # documentation
            "3fff::/20",  # documentation
        ),
    ),
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for when traffic to it reaches IPv4."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _category(addr: IPAddress) -> str | None:
    """Why `addr` is internal ("loopback", "private", ...), or None when it is public."""
    if addr in _METADATA:
        return "cloud metadata"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            category = _category(inner)
            return None if category is None else f"{category} (embeds {inner})"
    table = _V4_REFUSED if isinstance(addr, ipaddress.IPv4Address) else _V6_REFUSED
    for category, nets in table:
        if any(addr in net for net in nets):
            return category
    return None


def _parse_net(cidr: str) -> IPNetwork:
    text = cidr.strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(
            f"callback allow-list: {cidr!r} is not a network in CIDR form (e.g. 10.0.0.0/8)"
        ) from None
    raise ConfigError(f"callback allow-list: {cidr!r} has host bits set; did you mean {loose}?")


class AddressGuard:
    """Refuses callback URLs whose host resolves to an internal address.

    `allow_nets` are CIDRs (e.g. "127.0.0.0/8", "::1/128") exempt from the guard; a bare
    address counts as a single-address network. With `https_only`, plain http is refused.
    """

    def __init__(
        self,
        allow_nets: Iterable[str],
        https_only: bool = False,
        *,
        resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
    ) -> None:
        self.allow_nets: tuple[IPNetwork, ...] = tuple(_parse_net(n) for n in allow_nets)
        self.https_only = https_only
        self.resolve_timeout_s = resolve_timeout_s

    def __repr__(self) -> str:
        nets = ", ".join(str(n) for n in self.allow_nets)
        return f"AddressGuard(allow_nets=[{nets}], https_only={self.https_only})"

    def _allowed(self, addr: IPAddress) -> bool:
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address):
            inner = _embedded_v4(addr)
            if inner is not None:
                candidates.append(inner)
        metadata = any(c in _METADATA for c in candidates)
        return any(
            candidate.version == net.version
            and candidate in net
            and (net.num_addresses == 1 or not metadata)
            for candidate in candidates
            for net in self.allow_nets
        )

    def refusal(self, addr: IPAddress) -> str | None:
        """Why `addr` is refused under this guard, or None when it is acceptable."""
        category = _category(addr)
        if category is None or self._allowed(addr):
            return None
        return f"{addr} is {category} and not in an allowed network"

    async def check(self, url: str) -> list[str]:
        """The addresses `url`'s host resolves to, when every one is acceptable.

        Raises `CallbackRefused` for a scheme other than http/https (or http under
        `https_only`), a URL with userinfo or without a host, a host that cannot be
        resolved, or any resolved address that is internal and not allow-listed: one bad
        address among good ones is enough, since a client may pick any of them.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise CallbackRefused(f"malformed callback URL: {exc}") from None
        scheme = parts.scheme.lower()
        allowed_schemes = ("https",) if self.https_only else ("http", "https")
        if scheme not in allowed_schemes:
            raise CallbackRefused(
                f"callback URL scheme {scheme or '(none)'!r} is not allowed "
                f"(allowed: {', '.join(allowed_schemes)})"
            )
        if "@" in parts.netloc:
            raise CallbackRefused("callback URL must not carry userinfo (user:password@)")
        host = parts.hostname
        if not host:
            raise CallbackRefused("callback URL has no host")
        if port is None:
            port = 443 if scheme == "https" else 80

        addresses = await self._resolve(host, port)
        for addr in addresses:
            why = self.refusal(addr)
            if why is not None:
                raise CallbackRefused(f"callback host {host!r} refused: {why}")
        return [str(a) for a in addresses]

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]  # an IP literal: no DNS
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout_s):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError:
            raise CannotResolve(f"cannot resolve {host!r}: timed out") from None
        except UnicodeError as exc:  # not a valid host name: no retry will help
            raise CallbackRefused(f"cannot resolve {host!r}: {exc}") from None
        except OSError as exc:
            raise CannotResolve(f"cannot resolve {host!r}: {exc}") from None
        seen: dict[IPAddress, None] = {}
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                seen.setdefault(ipaddress.ip_address(str(sockaddr[0])), None)
            except ValueError:
                raise CallbackRefused(
                    f"cannot resolve {host!r}: unexpected address {sockaddr[0]!r}"
                ) from None
        if not seen:
            raise CannotResolve(f"cannot resolve {host!r}: no IPv4 or IPv6 address")
        return list(seen)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing at connect time any address `guard` refuses: a connection
    goes only to addresses the guard accepted, whatever the name answered to `check`.

    A refusal is an `OSError`, so the attempt fails to connect (and is retried; the next
    attempt's `check` dead-letters the callback if the name still answers so). IP literals
    never reach a resolver; `check` has judged them.
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner  # aiohttp's default is made on first use, in the running loop

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            why = self._guard.refusal(ipaddress.ip_address(answer["host"]))
            if why is not None:
                raise OSError(f"callback host {host!r} refused when connecting: {why}")
        return answers

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
