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
- **Addresses**: the lists name hosts, and a name may point anywhere (cloud metadata at
  169.254.169.254, an internal service at 10.0.0.1). Before each hop its host is resolved (in
  a thread; tests hand in a resolver) and every address it resolves to is checked with the
  webhooks' check (``nova.alerts.urls.address_kind``): a link-local, reserved, multicast or
  unspecified address is never reached; a loopback one only for a loopback host (``localhost``,
  ``127.0.0.1``: a local service, a test's fake), a private one only for an IP literal on the
  list (the operator named that address itself). A first hop refused is answered ``refused``
  (nothing was sent, lane F tells the model and audits it as any refusal); a redirect's hop
  refused is a redirect not followed. The connection goes to the address that was checked,
  not to the name again (the URL names the address; the ``Host`` header, TLS SNI and the
  certificate's check keep the name), so a name that changes its answer between the check
  and the connection (DNS rebinding) cannot move the call; connections are not kept alive,
  so none is reused for another name at the same address.
- **No environment**: proxies and ``.netrc`` credentials of the worker's environment are not
  used (``trust_env=False``), so nothing of the worker's rides along.

It says what happened (:class:`HttpAnswer`); what the model may see of the body
(masked, withheld when it holds a credential) is ``streams.agent_tools``'s to decide.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

import httpx

from nova.alerts.urls import address_kind
from nova.domain.http_allow import AllowList, Target, UrlRefused, is_loopback, parse_url
from nova.settings import Settings

TIMEOUT_S: Final = 10.0
DEADLINE_S: Final = 20.0  # below the worker's stall watchdog (NOVA_WORKER_STALL_S, 30 s)
MAX_RESPONSE_BYTES: Final = 64 * 1024
MAX_REDIRECTS: Final = 3
USER_AGENT: Final = "nova-agent/1"

Method = Literal["GET", "POST"]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""The addresses a host name resolves to (``port``: the one to be called); raises OSError
when it does not resolve."""


async def resolve(host: str, port: int) -> Sequence[str]:
    """The system's resolver, in a thread (``getaddrinfo`` blocks)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


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
    refused: bool = False  # not made at all: a check refused it (``error`` says why)


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


def address_refused(host: str, address: str) -> str | None:
    """Why ``host`` may not be reached at ``address`` (one it resolves to), or None (module
    docstring: loopback only for a loopback host, private only for that IP literal)."""
    kind = address_kind(address)
    if kind == "public":
        return None
    if kind == "loopback" and is_loopback(host):
        return None
    literal = _literal(host)
    if kind == "private" and literal is not None and literal == _literal(address):
        return None
    what = {"never": "which is never called (link-local, reserved, multicast or unspecified)",
            "loopback": "this machine's loopback, called only for a loopback host on the list",
            "private": "a private address, called only for that address itself on the list"}
    return f"{host} resolves to {address}, {what[kind]}"


def _literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class _NotCalled(Exception):  # internal to AgentHttp, never escapes it
    """A hop that is not made: ``why``, and whether a check refused it (else: no address)."""

    def __init__(self, why: str, *, refused: bool) -> None:
        super().__init__(why)
        self.why = why
        self.refused = refused


class AgentHttp:
    """The one HTTP client of agents' calls on this worker (module docstring)."""

    def __init__(self, endpoints: AllowList, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = TIMEOUT_S, deadline_s: float = DEADLINE_S,
                 max_bytes: int = MAX_RESPONSE_BYTES, resolver: Resolver = resolve) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.resolver = resolver
        # No keep-alive: a connection is to a checked address for one name's TLS session;
        # pooled by address, it could serve another name's request.
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout_s,
                                         follow_redirects=False, trust_env=False,
                                         limits=httpx.Limits(max_keepalive_connections=0),
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
            return HttpAnswer(None, error=f"not called: {why}", url=target.shown, refused=True)
        redirect: HttpAnswer | None = None  # the answer that sent the call to ``target``
        for _ in range(MAX_REDIRECTS + 1):
            try:
                address = await self._address(target)
            except _NotCalled as exc:
                if redirect is None:  # nothing was sent
                    return HttpAnswer(None, error=f"not called: {exc.why}", url=target.shown,
                                      refused=exc.refused)
                return replace(redirect, error=f"redirected to an address that is not "
                               f"followed: {exc.why}")
            try:
                answer, location = await self._once(method, target, address, request.body)
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
            target, redirect = hop, answer
        return HttpAnswer(None, error=f"more than {MAX_REDIRECTS} redirects; not followed",
                          url=target.shown)

    async def _address(self, target: Target) -> str:
        """The address to connect to for ``target``, every one its host resolves to checked;
        :class:`_NotCalled` when there is none (refused, or the name does not resolve)."""
        literal = _literal(target.host)
        if literal is not None:
            addresses: Sequence[str] = [str(literal)]
        else:
            try:
                addresses = await self.resolver(target.host, target.port)
            except OSError:
                addresses = []
            if not addresses:  # no answer from the network, not a refusal
                raise _NotCalled(f"{target.host} does not resolve", refused=False)
        for address in addresses:  # every one: whichever would be picked must pass
            why = address_refused(target.host, address)
            if why is not None:
                raise _NotCalled(why, refused=True)
        return addresses[0].split("%", 1)[0]

    async def _once(self, method: Method, target: Target, address: str,
                    body: bytes | None) -> tuple[HttpAnswer, str | None]:
        """One request to ``target``'s checked ``address``, naming its host (``Host`` header,
        TLS SNI and certificate check)."""
        headers = {"content-type": "application/json"} if body is not None else {}
        netloc = httpx.URL(target.url).netloc.decode("ascii")
        headers["host"] = netloc
        named = target.scheme == "https" and _literal(target.host) is None
        extensions = {"sni_hostname": target.host} if named else {}
        url = replace(target, host=address).url
        async with self._client.stream(method, url, content=body, headers=headers,
                                       extensions=extensions) as response:
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
