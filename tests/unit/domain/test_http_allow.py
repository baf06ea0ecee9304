"""The allow list of agents' ``http_call``: entries parsed strictly, and a URL admitted only when
its scheme, host, port and path are an entry's, compared as parsed parts, never as strings."""

from __future__ import annotations

import pytest

from nova.domain.http_allow import UrlRefused, parse_allow_list, parse_url
from nova.settings import load_settings, settings_problem

LIST = parse_allow_list(
    "https://api.example.com/v1/, https://files.example.com:8443, http://127.0.0.1:8300/hook,"
    "https://Bücher.example")


def admitted(url: str) -> bool:
    return LIST.admits(parse_url(url))


@pytest.mark.parametrize("url", [
    "https://api.example.com/v1",
    "https://api.example.com/v1/",
    "https://api.example.com/v1/items?page=2",
    "https://API.EXAMPLE.COM/v1/items",  # host names are case-insensitive
    "https://api.example.com:443/v1",  # the default port written out
    "https://api.example.com./v1",  # the root's trailing dot
    "https://files.example.com:8443/any/where",
    "http://127.0.0.1:8300/hook/7",
    "https://xn--bcher-kva.example/",  # the IDN entry, in its ASCII form
    "https://BÜCHER.example/x",  # and in Unicode, uppercase
])
def test_urls_on_the_list_are_admitted(url: str) -> None:
    assert admitted(url)


@pytest.mark.parametrize("url", [
    "https://api.example.com.evil.com/v1",  # the allowed name as a prefix of another
    "https://evilapi.example.com/v1",
    "https://example.com/v1",  # a parent domain
    "https://sub.api.example.com/v1",  # a sub-domain
    "https://api.example.com/v2",  # another path
    "https://api.example.com/v1x",  # a prefix, not at a segment boundary
    "https://api.example.com/",
    "https://api.example.com:8443/v1",  # another port
    "https://files.example.com/x",  # the default port, where 8443 was listed
    "https://127.0.0.1:8300/hook",  # another scheme
    "http://127.0.0.1:8301/hook",
    "https://evil.example#@api.example.com/v1",  # the fragment holds the "host"
    "https://evil.example?@api.example.com/v1",
])
def test_urls_off_the_list_are_not_admitted(url: str) -> None:
    assert not admitted(url)


@pytest.mark.parametrize(("url", "why"), [
    ("https://api.example.com@evil.example/v1", "user or password"),  # userinfo hides the host
    ("https://user:pw@api.example.com/v1", "user or password"),
    ("https://api.example.com/v1/../admin", "dot segments"),
    ("https://api.example.com/v1/%2e%2e/admin", "encoded dots"),
    ("https://api.example.com/v1%2F..%2Fadmin", "encoded dots"),
    ("https://api.example.com\\@evil.example/v1", "backslashes"),
    ("https://api.example.com/v1 x", "spaces"),
    ("http://api.example.com/v1", "only for this machine"),  # http:// off loopback
    ("ftp://api.example.com/v1", "not https://"),
    ("https:///v1", "no host"),
    ("https://api.example.com:99999/v1", "port"),
    ("https://[::1/v1", "cannot be parsed"),
    ("https://exa_mple.com/", "not a valid host name"),
])
def test_urls_that_hide_what_they_call_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why):
        parse_url(url)


def test_the_url_called_is_rebuilt_from_the_parts_that_were_checked() -> None:
    target = parse_url("HTTPS://BÜCHER.example:443/a/b?q=1#frag")
    assert target.url == "https://xn--bcher-kva.example/a/b?q=1"
    assert target.shown == "https://xn--bcher-kva.example/a/b"  # no query: the audit's form
    assert parse_url("http://[::1]:8300").url == "http://[::1]:8300/"
    assert parse_url("http://localhost:8300/x").port == 8300


def test_an_empty_setting_allows_nothing() -> None:
    assert not parse_allow_list("")
    assert not parse_allow_list(" , ")
    assert not load_settings().agent_http_endpoints, "off by default"


@pytest.mark.parametrize(("value", "why"), [
    ("http://api.example.com", "http:// is allowed only for a loopback host"),
    ("https://api.example.com/v1?key=1", "without ?query"),
    ("https://user@api.example.com", "user or password"),
    ("api.example.com", "not https://"),
    ("https://ok.example, https://bad host", "spaces"),
])
def test_a_bad_entry_is_one_line_naming_the_variable(value: str, why: str) -> None:
    with pytest.raises(ValueError, match="is not https://host") as caught:
        load_settings(agent_http_allow=value)
    line = settings_problem(caught.value)
    assert line.startswith("invalid settings: NOVA_AGENT_HTTP_ALLOW=")
    assert why in line
    assert "\n" not in line
