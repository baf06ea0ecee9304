"""The worker's HTTP client for agents' ``http_call``: one request to an allow-listed endpoint,
bounded in time and size, redirects checked hop by hop.

Built once with lane F's execution service (``ExecutionService.build``) from
``NOVA_AGENT_HTTP_ALLOW`` and handed to the agent loop; tests hand in an httpx transport.
What it guards, and why here rather than in governance:

- **Redirects** are never followed by httpx. A GET's redirect is followed by hand, at most
  :data:`MAX_REDIRECTS` hops, each hop a new URL checked against the deployment's list and
  the agent's hosts as the first was: a redirect off the list is answered as such, not
  followed. A POST's redirect is not followed at all: following it would send the body again,
  a second effect a person did not approve.
- **Time**: one attempt, :data:`TIMEOUT_S` for each of connect, write and read, and
  :data:`DEADLINE_S` for the whole call, redirects included (an endpoint dripping its body a
  byte at a time would otherwise hold lane F's partition), never retried (the call may have
  reached the endpoint; lane F's attempt marker makes sure it is not made twice either).
- **Size**: at most :data:`MAX_RESPONSE_BYTES` of the body are read, the rest dropped.
- **No environment**: proxies and ``.netrc`` credentials of the worker's environment are not
  used (``trust_env=False``), so nothing of the worker's rides along.

It says what happened (:class:`HttpAnswer`); what the model may see of the body
(masked, withheld when it holds a credential) is ``streams.agent_tools``'s to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Final, Literal

import httpx

from nova.domain.http_allow import AllowList, Target, UrlRefused, parse_url
from nova.settings import Settings

TIMEOUT_S: Final = 10.0
DEADLINE_S: Final = 20.0  # below the worker's stall watchdog (NOVA_WORKER_STALL_S, 30 s)
MAX_RESPONSE_BYTES: Final = 64 * 1024
MAX_REDIRECTS: Final = 3
USER_AGENT: Final = "nova-agent/1"

Method = Literal["GET", "POST"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A call judged and approved: the canonical target, and the JSON body's bytes (POST)."""

    method: Method
    target: Target
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What one call came to: the final status and the first bytes of the body, or why there
    is none (``error``: a timeout, a refused connection, a redirect not followed)."""

    status: int | None
    body: bytes = b""
    truncated: bool = False
    content_type: str = ""
    error: str | None = None
    url: str = ""  # the URL that answered (a redirect's hop), as the audit shows it


def off_list(target: Target, endpoints: AllowList, hosts: Collection[str]) -> str | None:
    """Why ``target`` may not be called, or None: it must be on the deployment's list and its
    host among the agent's ``allowed_hosts``."""
    if not endpoints:
        return ("http_call is off on this deployment (the operator enables it by listing "
                "endpoints in NOVA_AGENT_HTTP_ALLOW)")
    if not endpoints.admits(target):
        return "the URL is not on this deployment's allow list (NOVA_AGENT_HTTP_ALLOW)"
    if target.host not in {h.lower() for h in hosts}:
        return "the URL's host is not on this agent's allow list (its allowed_hosts)"
    return None


class AgentHttp:
    """The one HTTP client of agents' calls on this worker (module docstring)."""

    def __init__(self, endpoints: AllowList, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = TIMEOUT_S, deadline_s: float = DEADLINE_S,
                 max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout_s,
                                         follow_redirects=False, trust_env=False,
                                         headers={"user-agent": USER_AGENT})

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentHttp:
        return cls(settings.agent_http_endpoints)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, request: HttpRequest, hosts: Collection[str]) -> HttpAnswer:
        """Make ``request`` once (following a GET's redirects on the list); never raises for
        what the endpoint or the network does."""
        try:
            async with asyncio.timeout(self.deadline_s):
                return await self._call(request, hosts)
        except TimeoutError:
            return HttpAnswer(None, error=f"no whole answer within {self.deadline_s:g} s (the "
                              "endpoint may have received the call)",
                              url=request.target.shown)

    async def _call(self, request: HttpRequest, hosts: Collection[str]) -> HttpAnswer:
        target, method = request.target, request.method
        why = off_list(target, self.endpoints, hosts)
        if why is not None:  # checked again here: the client never calls off the lists
            return HttpAnswer(None, error=f"not called: {why}", url=target.shown)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                answer, location = await self._once(method, target, request.body)
            except httpx.TimeoutException:
                return HttpAnswer(None, error=f"no answer within {self.timeout_s:g} s (the "
                                  "endpoint may have received the call)", url=target.shown)
            except httpx.HTTPError as exc:
                return HttpAnswer(None, error=f"the call failed: {type(exc).__name__}",
                                  url=target.shown)
            if location is None:
                return answer
            if method != "GET":
                return replace(answer, error="redirected; a POST's redirect is not followed "
                               "(its body would be sent again)")
            try:
                hop = parse_url(str(httpx.URL(target.url).join(location)))
            except UrlRefused as exc:
                return replace(answer, error=f"redirected to a URL that is not followed: {exc}")
            except httpx.InvalidURL:  # the message would quote the endpoint's Location
                return replace(answer, error="redirected to an invalid URL; not followed")
            why = off_list(hop, self.endpoints, hosts)
            if why is not None:
                return replace(answer, error=f"redirected off the allow lists, not followed: "
                               f"{why}")
            target = hop
        return HttpAnswer(None, error=f"more than {MAX_REDIRECTS} redirects; not followed",
                          url=target.shown)

    async def _once(self, method: Method, target: Target, body: bytes | None
                    ) -> tuple[HttpAnswer, str | None]:
        headers = {"content-type": "application/json"} if body is not None else {}
        async with self._client.stream(method, target.url, content=body,
                                       headers=headers) as response:
            location = response.headers.get("location")
            if response.is_redirect and location:
                return HttpAnswer(response.status_code, url=target.shown), location
            read = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                read += chunk
                if len(read) > self.max_bytes:
                    truncated = True
                    del read[self.max_bytes:]
                    break
            return HttpAnswer(response.status_code, bytes(read), truncated,
                              response.headers.get("content-type", ""), url=target.shown), None
