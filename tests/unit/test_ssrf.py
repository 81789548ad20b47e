"""The SSRF guard for callback URLs (connectors.ssrf).

Only IP literals and "localhost" are used: `check` resolves but never connects, and no
test needs a DNS server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from connectors.ssrf import AddressGuard, CallbackRefused, CannotResolve, GuardedResolver
from streams.errors import BatchwireError, ConfigError

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


def url(host: str, scheme: str = "http", path: str = "/hook") -> str:
    literal = f"[{host}]" if ":" in host else host
    return f"{scheme}://{literal}:8080{path}"


#: (address, the category its refusal names)
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.10", "private"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible form
]


@pytest.mark.parametrize(("address", "category"), REFUSED)
async def test_internal_addresses_are_refused(address: str, category: str) -> None:
    guard = AddressGuard([])
    with pytest.raises(CallbackRefused) as info:
        await guard.check(url(address))
    assert category in info.value.reason
    assert str(info.value) == info.value.reason


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", "1.1.1.1", PUBLIC_V6])
async def test_public_addresses_are_accepted(address: str) -> None:
    guard = AddressGuard([])
    assert await guard.check(url(address)) == [address]
    assert await guard.check(url(address, scheme="https")) == [address]


async def test_an_ipv4_mapped_public_address_is_accepted() -> None:
    assert await AddressGuard([]).check(url(f"::ffff:{PUBLIC_V4}")) == ["::ffff:5db8:d822"]


async def test_ip_literals_are_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an IP literal must not be resolved")

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", no_dns)
    guard = AddressGuard([])
    assert await guard.check(url(PUBLIC_V4)) == [PUBLIC_V4]
    with pytest.raises(CallbackRefused):
        await guard.check(url("10.0.0.1"))


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        (["127.0.0.0/8"], "127.0.0.1"),
        (["127.0.0.0/8"], "127.0.0.53"),
        (["::1/128"], "::1"),
        (["10.0.0.0/8"], "10.1.2.3"),
        (["192.168.1.0/24"], "192.168.1.10"),
        (["fc00::/7"], "fd12::1"),
        (["169.254.0.0/16"], "169.254.1.1"),
        (["100.64.0.0/10"], "100.64.0.1"),
        (["127.0.0.0/8"], "::ffff:127.0.0.1"),  # judged by the IPv4 address inside
        (["10.0.0.5"], "10.0.0.5"),  # a bare address is a one-address network
        (["169.254.169.254/32"], "169.254.169.254"),
    ],
)
async def test_an_allow_listed_network_lets_its_addresses_through(
    allow: list[str], address: str
) -> None:
    got = await AddressGuard(allow).check(url(address))
    assert [ipaddress.ip_address(a) for a in got] == [ipaddress.ip_address(address)]


async def test_the_allow_list_covers_only_its_own_networks() -> None:
    guard = AddressGuard(["127.0.0.0/8"])
    assert await guard.check(url("127.0.0.1")) == ["127.0.0.1"]
    for other in ("10.0.0.1", "::1", "192.168.0.1", "::ffff:10.0.0.1", "169.254.169.254"):
        with pytest.raises(CallbackRefused):
            await guard.check(url(other))


async def test_metadata_needs_an_exact_allow_entry_even_inside_an_allowed_network() -> None:
    guard = AddressGuard(["0.0.0.0/0", "::/0"])
    assert await guard.check(url("10.0.0.1")) == ["10.0.0.1"]
    for metadata in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"):
        with pytest.raises(CallbackRefused, match="cloud metadata"):
            await guard.check(url(metadata))


async def test_localhost_resolves_to_loopback_and_is_refused_without_the_allow_list() -> None:
    with pytest.raises(CallbackRefused, match="loopback"):
        await AddressGuard([]).check("http://localhost:8080/hook")


async def test_localhost_is_accepted_when_loopback_is_allow_listed() -> None:
    # localhost may resolve to ::1 as well as 127.0.0.1, so both loopback networks are listed.
    addresses = await AddressGuard(["127.0.0.0/8", "::1/128"]).check("http://localhost/hook")
    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}


async def test_one_internal_address_among_public_ones_refuses_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        assert host == "callbacks.example"
        assert port == 443
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1", port, 0, 0)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(CallbackRefused, match="link-local"):
        await AddressGuard([]).check("https://callbacks.example/hook")
    # Allow-listing the internal one accepts the host; addresses are deduplicated.
    guard = AddressGuard(["fe80::/10"])
    assert await guard.check("https://callbacks.example/hook") == [PUBLIC_V4, "fe80::1"]


@pytest.mark.parametrize(
    "failure", [socket.gaierror(socket.EAI_NONAME, "Name or service not known"), OSError("x")]
)
async def test_a_resolution_failure_cannot_resolve(
    monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """A failed lookup may pass (the connector retries it), unlike a refusal."""

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing)
    with pytest.raises(CannotResolve, match="cannot resolve"):
        await AddressGuard([]).check("http://nowhere.invalid/hook")


async def test_a_name_no_lookup_can_take_is_refused_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def idna_refuses(*args: Any, **kwargs: Any) -> Any:
        raise UnicodeError("label too long")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", idna_refuses)
    with pytest.raises(CallbackRefused, match="label too long") as refused:
        await AddressGuard([]).check(f"http://{'a' * 64}.example/hook")
    assert not isinstance(refused.value, CannotResolve)


async def test_an_empty_resolution_cannot_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    async def empty(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", empty)
    with pytest.raises(CannotResolve, match="cannot resolve"):
        await AddressGuard([]).check("http://nothing.invalid/hook")


async def test_a_slow_resolution_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(*args: Any, **kwargs: Any) -> list[Any]:
        await asyncio.sleep(10)
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", slow)
    guard = AddressGuard([], resolve_timeout_s=0.01)
    with pytest.raises(CannotResolve, match=r"cannot resolve .*timed out"):
        await guard.check("http://slow.invalid/hook")


async def test_https_only_refuses_http() -> None:
    guard = AddressGuard([], https_only=True)
    with pytest.raises(CallbackRefused, match="scheme"):
        await guard.check(url(PUBLIC_V4, scheme="http"))
    assert await guard.check(url(PUBLIC_V4, scheme="https")) == [PUBLIC_V4]
    assert await guard.check(f"HTTPS://{PUBLIC_V4}/hook") == [PUBLIC_V4]


@pytest.mark.parametrize(
    "bad",
    [
        f"http://user:pass@{PUBLIC_V4}/hook",
        f"http://user@{PUBLIC_V4}/hook",
        f"http://@{PUBLIC_V4}/hook",
        f"https://{PUBLIC_V4}@127.0.0.1/hook",
    ],
)
async def test_userinfo_is_refused(bad: str) -> None:
    with pytest.raises(CallbackRefused, match="userinfo"):
        await AddressGuard(["127.0.0.0/8"]).check(bad)


@pytest.mark.parametrize(
    "bad",
    [
        f"ftp://{PUBLIC_V4}/hook",
        "file:///etc/passwd",
        f"gopher://{PUBLIC_V4}:70/_",
        f"ws://{PUBLIC_V4}/hook",
        f"//{PUBLIC_V4}/hook",
        f"{PUBLIC_V4}/hook",
        "javascript:alert(1)",
        "",
    ],
)
async def test_a_scheme_other_than_http_or_https_is_refused(bad: str) -> None:
    with pytest.raises(CallbackRefused, match="scheme"):
        await AddressGuard([]).check(bad)


@pytest.mark.parametrize(
    "bad", ["http:///hook", "http://:8080/hook", f"http://{PUBLIC_V4}:99999/", "http://[::1/"]
)
async def test_a_url_without_a_usable_host_or_port_is_refused(bad: str) -> None:
    with pytest.raises(CallbackRefused):
        await AddressGuard([]).check(bad)


@pytest.mark.parametrize(
    "cidr", ["not-a-net", "10.0.0.0/33", "300.0.0.0/8", "10.0.0.1/8", "::1/129", "", "fe80::/x"]
)
def test_a_malformed_allow_net_is_a_config_error(cidr: str) -> None:
    with pytest.raises(ConfigError, match="allow-list"):
        AddressGuard(["127.0.0.0/8", cidr])


def test_refusals_are_batchwire_errors_and_the_guard_repr_is_plain() -> None:
    assert issubclass(CallbackRefused, BatchwireError)
    guard = AddressGuard([" 127.0.0.0/8 ", "::1/128"], https_only=True)
    assert repr(guard) == "AddressGuard(allow_nets=[127.0.0.0/8, ::1/128], https_only=True)"


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1"])
async def test_shorthand_numeric_hosts_are_judged_by_what_they_resolve_to(host: str) -> None:
    # Not IP literals to `ipaddress`, but the C resolver reads them as 127.0.0.1 without DNS,
    # and so would the HTTP client that later connects.
    with pytest.raises(CallbackRefused, match=r"127\.0\.0\.1 is loopback"):
        await AddressGuard([]).check(f"http://{host}:8080/hook")


class ChangingAnswers(AbstractResolver):
    """A DNS stand-in whose answer for a name changes between lookups (rebinding)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.addresses.pop(0)
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        pass


async def test_the_connect_time_resolver_refuses_a_name_that_rebinds_to_an_internal_address() -> (
    None
):
    resolver = GuardedResolver(AddressGuard([]), ChangingAnswers(PUBLIC_V4, "169.254.169.254"))
    assert [a["host"] for a in await resolver.resolve("hooks.example", 443)] == [PUBLIC_V4]
    with pytest.raises(
        OSError, match=r"'hooks\.example' refused when connecting: .*cloud metadata"
    ):
        await resolver.resolve("hooks.example", 443)


async def test_the_connect_time_resolver_lets_allow_listed_addresses_through() -> None:
    resolver = GuardedResolver(AddressGuard(["10.0.0.0/8"]), ChangingAnswers("10.1.2.3"))
    assert [a["host"] for a in await resolver.resolve("hooks.internal", 80)] == ["10.1.2.3"]
