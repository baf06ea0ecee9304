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


def check_address(address: str, *, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    never = ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved
    if never and not ip.is_loopback:  # ::1 counts as reserved too
        raise UrlRefused(f"the webhook host resolves to {ip}, which is never a destination")
    if not allow_private and (ip.is_loopback or ip.is_private or not ip.is_global):
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
