"""The worker's client for agents' ``http_call``, against an httpx mock transport and a
resolver handed in: one attempt, redirects followed only on the lists (and never for a POST),
every address a host resolves to checked and the call made to the one checked, the body read
up to its cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from nova.domain.http_allow import parse_allow_list, parse_url
from streams.agent_http import (
    DEADLINE_S,
    MAX_RESPONSE_BYTES,
    AgentHttp,
    HttpRequest,
    address_refused,
)

LIST = parse_allow_list("https://api.example.com/v1, https://cdn.example.com")
HOSTS = ("api.example.com", "cdn.example.com", "evil.example.com")
API, CDN = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"  # public addresses


class Dns:
    """The resolver handed in: names to addresses; records what was asked."""

    def __init__(self, names: dict[str, Sequence[str]]) -> None:
        self.names = names
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.names:
            raise OSError(f"{host}: no such name")
        return self.names[host]


DNS = Dns({"api.example.com": [API], "cdn.example.com": [CDN], "evil.example.com": [API]})


class Endpoint:
    """Answers by path; counts every request it receives."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)  # routed by name: the URL names the address connected to
        return self.routes.get(f"{request.headers['host']}{request.url.path}",
                               httpx.Response(404))


def client(endpoint: Endpoint, *, max_bytes: int = MAX_RESPONSE_BYTES,
           deadline_s: float = DEADLINE_S, dns: Dns = DNS, allow: str = "") -> AgentHttp:
    return AgentHttp(parse_allow_list(allow) if allow else LIST,
                     transport=httpx.MockTransport(endpoint), max_bytes=max_bytes,
                     deadline_s=deadline_s, resolver=dns)


def get(url: str) -> HttpRequest:
    return HttpRequest("GET", parse_url(url))


def moved(to: str, status: int = 302) -> httpx.Response:
    return httpx.Response(status, headers={"location": to})


async def test_a_get_is_made_once_with_the_status_and_the_body() -> None:
    endpoint = Endpoint({"api.example.com/v1/items": httpx.Response(
        200, json={"items": [1]}, headers={"content-type": "application/json"})})
    answer = await client(endpoint).call(get("https://api.example.com/v1/items?x=1"), HOSTS)
    assert (answer.status, answer.body, answer.error) == (200, b'{"items":[1]}', None)
    assert answer.content_type == "application/json"
    assert answer.url == "https://api.example.com/v1/items"
    (sent,) = endpoint.seen
    assert str(sent.url) == f"https://{API}/v1/items?x=1", "connected to the address checked"
    assert sent.headers["host"] == "api.example.com"
    assert sent.extensions["sni_hostname"] == "api.example.com", "TLS is for the name"


async def test_the_call_goes_to_the_address_that_was_checked_not_to_the_name_again() -> None:
    dns = Dns({"api.example.com": [API, "93.184.216.35"]})
    endpoint = Endpoint({"api.example.com:8443/v1": httpx.Response(204)})
    http = client(endpoint, dns=dns, allow="https://api.example.com:8443/v1")
    answer = await http.call(get("https://api.example.com:8443/v1"), HOSTS)
    assert (answer.status, answer.refused, dns.asked) == (204, False, [("api.example.com", 8443)])
    (sent,) = endpoint.seen
    assert (sent.url.host, sent.url.port, sent.headers["host"]) == (
        API, 8443, "api.example.com:8443")


@pytest.mark.parametrize("addresses", [
    ["169.254.169.254"],  # cloud metadata (link-local)
    ["10.0.0.1"],  # a private network
    ["127.0.0.1"],  # this machine, for a name that is not loopback's
    [API, "10.0.0.1"],  # every address counts, not only the first
    ["::ffff:169.254.169.254"],  # IPv4-mapped: judged as the IPv4 address
    ["fe80::1%eth0"], ["224.0.0.1"], ["0.0.0.0"], ["240.0.0.1"],  # noqa: S104
])
async def test_a_name_that_resolves_to_an_address_not_to_be_reached_is_refused(
        addresses: list[str]) -> None:
    endpoint = Endpoint({})
    dns = Dns({"api.example.com": addresses})
    answer = await client(endpoint, dns=dns).call(get("https://api.example.com/v1"), HOSTS)
    assert (answer.status, answer.refused, endpoint.seen) == (None, True, [])
    assert (answer.error or "").startswith("not called: api.example.com resolves to ")


async def test_a_redirect_to_a_name_resolving_inside_is_not_followed() -> None:
    dns = Dns({"api.example.com": [API], "cdn.example.com": ["169.254.169.254"]})
    endpoint = Endpoint({"api.example.com/v1/a": moved("https://cdn.example.com/latest")})
    answer = await client(endpoint, dns=dns).call(get("https://api.example.com/v1/a"), HOSTS)
    assert (answer.status, answer.refused, len(endpoint.seen)) == (302, False, 1)
    assert "redirected to an address that is not followed: cdn.example.com resolves to " \
        "169.254.169.254" in (answer.error or "")


async def test_a_name_that_does_not_resolve_is_no_answer_not_a_refusal() -> None:
    answer = await client(Endpoint({}), dns=Dns({})).call(get("https://api.example.com/v1"),
                                                           HOSTS)
    assert (answer.status, answer.refused, answer.error) == (
        None, False, "not called: api.example.com does not resolve")


async def test_loopback_and_private_addresses_only_for_such_entries_themselves() -> None:
    dns = Dns({"localhost": ["127.0.0.1", "::1"]})
    endpoint = Endpoint({"localhost:8080/": httpx.Response(200), "127.0.0.1:8081/": httpx.Response(
        200), "10.0.0.5/": httpx.Response(200)})
    http = client(endpoint, dns=dns, allow="http://localhost:8080, http://127.0.0.1:8081, "
                  "https://10.0.0.5")
    hosts = ("localhost", "127.0.0.1", "10.0.0.5")
    for url in ("http://localhost:8080/", "http://127.0.0.1:8081/", "https://10.0.0.5/"):
        answer = await http.call(get(url), hosts)
        assert (answer.status, answer.error) == (200, None), url
    assert dns.asked == [("localhost", 8080)], "an IP literal is not resolved"
    assert [r.url.host for r in endpoint.seen] == ["127.0.0.1", "127.0.0.1", "10.0.0.5"]
    assert "sni_hostname" not in endpoint.seen[2].extensions, "an address is its own name"


def test_which_addresses_a_host_may_be_reached_at() -> None:
    assert address_refused("api.example.com", API) is None
    assert address_refused("localhost", "::1") is None
    assert address_refused("127.0.0.1", "127.0.0.1") is None
    assert address_refused("10.0.0.5", "10.0.0.5") is None
    assert "never called" in (address_refused("169.254.169.254", "169.254.169.254") or "")
    assert "loopback" in (address_refused("api.example.com", "127.0.0.1") or "")
    assert "private" in (address_refused("localhost", "10.0.0.5") or "")
    assert "private" in (address_refused("10.0.0.5", "10.0.0.6") or "")


async def test_a_post_sends_its_json_body() -> None:
    endpoint = Endpoint({"api.example.com/v1/hook": httpx.Response(202)})
    answer = await client(endpoint).call(
        HttpRequest("POST", parse_url("https://api.example.com/v1/hook"), b'{"a": 1}'), HOSTS)
    assert answer.status == 202
    (sent,) = endpoint.seen
    assert (sent.method, sent.content, sent.headers["content-type"]) == (
        "POST", b'{"a": 1}', "application/json")


async def test_redirects_are_followed_only_on_the_lists_and_never_for_a_post() -> None:
    endpoint = Endpoint({
        "api.example.com/v1/a": moved("https://cdn.example.com/a"),
        "cdn.example.com/a": httpx.Response(200, text="from the cdn"),
        "api.example.com/v1/off": moved("https://evil.example.com/steal"),
        "api.example.com/v1/up": moved("/admin"),
        "api.example.com/v1/loop": moved("/v1/loop"),
        "api.example.com/v1/post": moved("/v1/a", 307),
    })
    http = client(endpoint)
    followed = await http.call(get("https://api.example.com/v1/a"), HOSTS)
    assert (followed.status, followed.body, followed.url) == (
        200, b"from the cdn", "https://cdn.example.com/a")

    for path in ("off", "up"):  # another host, or the same host out of the path prefix
        endpoint.seen.clear()
        answer = await http.call(get(f"https://api.example.com/v1/{path}"), HOSTS)
        assert answer.status == 302
        assert "redirected off the allow lists, not followed" in (answer.error or ""), answer
        assert [r.url.path for r in endpoint.seen] == [f"/v1/{path}"], "never followed"

    looped = await http.call(get("https://api.example.com/v1/loop"), HOSTS)
    assert (looped.status, looped.error) == (None, "more than 3 redirects; not followed")

    endpoint.seen.clear()
    post = await http.call(HttpRequest("POST", parse_url("https://api.example.com/v1/post"),
                                       b"{}"), HOSTS)
    assert post.status == 307
    assert "a POST's redirect is not followed" in (post.error or "")
    assert len(endpoint.seen) == 1, "the body is never sent twice"


async def test_the_client_never_calls_off_the_lists_even_when_handed_such_a_request() -> None:
    endpoint = Endpoint({})
    answer = await client(endpoint).call(get("https://cdn.example.com/x"), ("api.example.com",))
    assert (answer.status, answer.refused, endpoint.seen) == (None, True, [])
    assert "not on this agent's allow list" in (answer.error or "")


async def test_the_body_is_read_up_to_its_cap() -> None:
    endpoint = Endpoint({"api.example.com/v1/big": httpx.Response(200, content=b"x" * 5000)})
    answer = await client(endpoint, max_bytes=1024).call(get("https://api.example.com/v1/big"),
                                                        HOSTS)
    assert (len(answer.body), answer.truncated) == (1024, True)


async def test_a_timeout_or_a_failed_connection_is_an_answer_not_an_exception() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, said in ((hang, "no answer within 10 s"), (refuse, "ConnectError")):
        http = AgentHttp(LIST, transport=httpx.MockTransport(handler), resolver=DNS)
        answer = await http.call(get("https://api.example.com/v1"), HOSTS)
        assert answer.status is None
        assert said in (answer.error or "")
        await http.aclose()


async def test_an_endpoint_that_drips_its_answer_is_cut_off_at_the_call_s_deadline() -> None:
    class Drip(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                yield b"x"
                await asyncio.sleep(0.05)  # each read in time, the whole never

    endpoint = Endpoint({"api.example.com/v1": httpx.Response(200, stream=Drip())})
    answer = await client(endpoint, max_bytes=10**9, deadline_s=0.2).call(
        get("https://api.example.com/v1"), HOSTS)
    assert answer.status is None
    assert "no whole answer within 0.2 s" in (answer.error or "")
