"""The worker's client for agents' ``http_call``, against an httpx mock transport: one attempt,
redirects followed only on the lists (and never for a POST), the body read up to its cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from nova.domain.http_allow import parse_allow_list, parse_url
from streams.agent_http import DEADLINE_S, MAX_RESPONSE_BYTES, AgentHttp, HttpRequest

LIST = parse_allow_list("https://api.example.com/v1, https://cdn.example.com")
HOSTS = ("api.example.com", "cdn.example.com", "evil.example.com")


class Endpoint:
    """Answers by path; counts every request it receives."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.routes.get(f"{request.url.host}{request.url.path}", httpx.Response(404))


def client(endpoint: Endpoint, *, max_bytes: int = MAX_RESPONSE_BYTES,
           deadline_s: float = DEADLINE_S) -> AgentHttp:
    return AgentHttp(LIST, transport=httpx.MockTransport(endpoint), max_bytes=max_bytes,
                     deadline_s=deadline_s)


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
    assert [str(r.url) for r in endpoint.seen] == ["https://api.example.com/v1/items?x=1"]


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
    assert (answer.status, endpoint.seen) == (None, [])
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
        http = AgentHttp(LIST, transport=httpx.MockTransport(handler))
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
