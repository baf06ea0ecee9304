"""The endpoints an agent's ``http_call`` may reach: the deployment's allow list, and whether a
URL is on it.

``NOVA_AGENT_HTTP_ALLOW`` lists entries ``https://host[:port][/path-prefix]``, comma-separated
(``http://`` only for a loopback host: a local service, or a test's server). A URL is on the
list when an entry has its scheme, its host, its port (the scheme's default when unwritten)
and a path prefix its path starts with at a segment boundary (``/v1`` admits ``/v1`` and
``/v1/x``, never ``/v1x``). Why this strict, and why comparing parsed parts rather than
strings:

- the host is compared whole, after IDNA encoding and lowercasing (``Bücher.example`` is
  ``xn--bcher-kva.example``), so ``allowed.com.evil.com`` or ``evilallowed.com`` never pass
  for ``allowed.com``;
- a URL with userinfo (``https://allowed.com@evil.com``, or a user and password) is refused:
  what a reader sees first is not the host, and credentials never ride in a URL;
- a path with dot segments or encoded dots, slashes or backslashes is refused: a server may
  resolve ``/v1/../admin`` or ``/v1%2f..%2fadmin`` out of the prefix it was checked against;
- the URL that is called is rebuilt from the parts that were checked (:attr:`Target.url`), so
  what was judged is what is sent.

A redirect is a new URL: the client checks each hop against the same list
(``streams.agent_http``).

Pure: the settings parse the list at start-up (a bad entry is a one-line settings error) and
lane F matches calls against it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit

Scheme = Literal["https", "http"]
DEFAULT_PORTS: Final[dict[str, int]] = {"https": 443, "http": 80}
MAX_URL_CHARS: Final = 2048
SETTING: Final = "NOVA_AGENT_HTTP_ALLOW"

_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x20\x7f\\]")
_ENCODED_TRICKS: Final = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)


class UrlRefused(ValueError):
    """A URL or an allow-list entry that is not what an ``http_call`` may name; the message
    says why, in words a model (or an operator) can act on."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL in canonical parts: lowercase scheme, IDNA host, explicit port."""

    scheme: Scheme
    host: str
    port: int
    path: str
    query: str = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{host}{port}{self.path}{query}"

    @property
    def shown(self) -> str:
        """Scheme, host, port and path, without the query (what the audit keeps of a URL)."""
        return Target(self.scheme, self.host, self.port, self.path).url


@dataclass(frozen=True, slots=True)
class Entry:
    scheme: Scheme
    host: str
    port: int
    prefix: str  # "" admits every path; else starts with "/" and has no trailing "/"

    def admits(self, target: Target) -> bool:
        if (target.scheme, target.host, target.port) != (self.scheme, self.host, self.port):
            return False
        return (not self.prefix or target.path == self.prefix
                or target.path.startswith(self.prefix + "/"))


@dataclass(frozen=True, slots=True)
class AllowList:
    entries: tuple[Entry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def admits(self, target: Target) -> bool:
        return any(e.admits(target) for e in self.entries)


NOTHING: Final = AllowList()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address (where
    plain ``http://`` may go, and where the placeholder JWT secret is tolerated)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(parts: SplitResult) -> str:
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("a URL with a user or password before its host is refused")
    raw = parts.hostname  # lowercased, brackets of an IPv6 address removed
    if not raw:
        raise UrlRefused("the URL has no host")
    raw = raw.removesuffix(".")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRefused("the URL's host is not a valid host name") from None
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*", host):
        raise UrlRefused("the URL's host is not a valid host name")
    return host


def _split(url: str) -> tuple[SplitResult, Scheme, str, int]:
    if len(url) > MAX_URL_CHARS:
        raise UrlRefused(f"the URL is longer than {MAX_URL_CHARS} characters")
    if _UNSAFE_CHARS.search(url):
        raise UrlRefused("the URL holds spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UrlRefused("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused("the URL is not https:// (or http:// to this machine)")
    host = _host(parts)
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 1 to 65535") from None
    if port == 0:
        raise UrlRefused("the URL's port is not a number from 1 to 65535")
    chosen: Scheme = "https" if scheme == "https" else "http"
    return parts, chosen, host, port or DEFAULT_PORTS[scheme]


def _path(path: str) -> str:
    if _ENCODED_TRICKS.search(path) or any(s in (".", "..") for s in path.split("/")):
        raise UrlRefused("the URL's path has dot segments or encoded dots, slashes or "
                         "backslashes")
    return path or "/"


def parse_url(url: str) -> Target:
    """``url`` in canonical parts, or :class:`UrlRefused` saying why it may not be called."""
    parts, scheme, host, port = _split(url)
    if scheme == "http" and not is_loopback(host):
        raise UrlRefused("http:// is only for this machine (loopback); use https://")
    return Target(scheme, host, port, _path(parts.path), parts.query)


def parse_entry(text: str) -> Entry:
    """One allow-list entry, or :class:`UrlRefused` saying what is wrong with it."""
    parts, scheme, host, port = _split(text)
    if scheme == "http" and not is_loopback(host):
        raise UrlRefused("http:// is allowed only for a loopback host (localhost, 127.0.0.1, "
                         "::1)")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise UrlRefused("an entry is a host and a path prefix, without ?query or #fragment")
    return Entry(scheme, host, port, _path(parts.path).rstrip("/"))


def parse_allow_list(text: str) -> AllowList:
    """The setting's entries (comma-separated, blanks ignored); a bad one raises
    :class:`UrlRefused` naming it."""
    entries = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            entries.append(parse_entry(item))
        except UrlRefused as exc:
            raise UrlRefused(f"{item!r} is not https://host[:port][/path-prefix]: {exc}"
                             ) from None
    return AllowList(tuple(entries))
