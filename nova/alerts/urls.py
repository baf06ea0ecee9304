"""Which URLs a webhook destination may have (checked at creation and again at delivery).

A destination is a URL the gateway will POST to: left unchecked, it lets whoever creates one
make the gateway reach inside its own network (SSRF). So: ``http`` or ``https`` only, a host,
no user or password in the URL, at most 2,048 characters; never a link-local address (cloud
metadata services live at 169.254.169.254), an unspecified, multicast or reserved one; and,
unless ``NOVA_ALERT_PRIVATE_URLS`` allows it (for a receiver on this machine or a private
network), no loopback or private address. A name is resolved and every address it resolves
to must pass, at creation and before each delivery (a name may change what it points at).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal
from urllib.parse import urlsplit

MAX_LENGTH = 2048


class UrlRefused(ValueError):
    """The URL may not be a destination; the message says why (shown to the caller)."""


def check_shape(url: str) -> tuple[str, int]:
    """The host and port of an acceptable URL; :class:`UrlRefused` otherwise."""
    if len(url) > MAX_LENGTH:
        raise UrlRefused(f"a webhook URL has at most {MAX_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("the webhook URL does not parse") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("a webhook URL is http:// or https://")
    if not parts.hostname:
        raise UrlRefused("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("put no user or password in a webhook URL (a secret in the path is "
                         "fine: Nova never shows the URL whole again)")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


AddressKind = Literal["never", "loopback", "private", "public"]


def address_kind(address: str) -> AddressKind:
    """What ``address`` is as a destination: ``never`` one (link-local: cloud metadata lives at
    169.254.169.254; multicast, unspecified, reserved), this machine (``loopback``), a
    ``private`` network (or any other address that is not global), or ``public``. An
    IPv4-mapped IPv6 address is judged as the IPv4 address it carries. Shared by the webhooks
    here and agents' ``http_call`` (``streams.agent_http``), which differ only in when a
    loopback or private address may be reached."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:  # ::1 counts as reserved too
        return "loopback"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "never"
    if ip.is_private or not ip.is_global:
        return "private"
    return "public"


def check_address(address: str, *, allow_private: bool) -> None:
    kind = address_kind(address)
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if kind == "never":
        raise UrlRefused(f"the webhook host resolves to {ip}, which is never a destination")
    if not allow_private and kind != "public":
        raise UrlRefused(f"the webhook host resolves to {ip}, a private address (allowed only "
                         "with NOVA_ALERT_PRIVATE_URLS=true)")


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` unless every address its host resolves to may be reached (blocks on
    DNS: call it from a thread)."""
    host, port = check_shape(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefused(f"the webhook host {host} does not resolve") from exc
    for info in infos:
        check_address(str(info[4][0]), allow_private=allow_private)


def shown(url: str) -> str:
    """The URL as the API shows it after creation: scheme and host, the rest elided (the path
    of an incoming webhook is its secret)."""
    parts = urlsplit(url)
    tail = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{tail}"
