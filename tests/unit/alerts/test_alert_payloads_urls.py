"""Webhook bodies, signatures and the URLs a destination may have."""

from __future__ import annotations

import json

import pytest

from nova.alerts import payloads
from nova.alerts.notices import Notice
from nova.alerts.urls import UrlRefused, check_address, check_shape, check_url, shown

NOTICE = Notice("budget.soft/identity-a/cap/2026-01-01", "budget.soft", "identity-a", "cap",
                "budget cap for identity-a: spent 4 of soft limit 5 USD", "warning", 1,
                {"budget": "cap"})


def test_the_slack_form_is_an_incoming_webhook_body() -> None:
    body = json.loads(payloads.body(NOTICE, "slack", "d1", "http://gw/console"))
    assert set(body) == {"text"}
    assert "budget.soft" in body["text"]
    assert "spent 4 of soft limit 5 USD" in body["text"]
    assert "<http://gw/console|open the console>" in body["text"]


def test_the_json_form_carries_the_notice_and_its_delivery_id() -> None:
    body = json.loads(payloads.body(NOTICE, "json", "d1", None))
    assert body["delivery_id"] == "d1"
    assert body["alert_id"] == NOTICE.alert_id
    assert (body["kind"], body["identity"], body["severity"]) == (
        "budget.soft", "identity-a", "warning")
    assert body["details"] == {"budget": "cap"}


def test_a_signature_verifies_with_its_secret_and_body_only() -> None:
    raw = payloads.body(NOTICE, "json", "d1", None)
    header = payloads.signature("secret-1", 1_700_000_000, raw)
    assert header.startswith("t=1700000000,v1=")
    assert payloads.verify("secret-1", header, raw)
    assert not payloads.verify("secret-2", header, raw)
    assert not payloads.verify("secret-1", header, raw + b" ")
    assert not payloads.verify("secret-1", "v1=abc", raw)


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/hook", "http:// or https://"),
    ("https://user:pw@example.com/hook", "no user or password"),
    ("https:///nohost", "no host"),
    ("https://example.com:99999/", "does not parse"),
    ("https://example.com/" + "x" * 2050, "at most 2048"),
])
def test_url_shapes_refused(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why):
        check_shape(url)


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1"])  # noqa: S104
def test_link_local_and_the_like_are_never_destinations(address: str) -> None:
    with pytest.raises(UrlRefused, match="never a destination"):
        check_address(address, allow_private=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "::1"])
def test_private_addresses_need_the_setting(address: str) -> None:
    with pytest.raises(UrlRefused, match="NOVA_ALERT_PRIVATE_URLS"):
        check_address(address, allow_private=False)
    check_address(address, allow_private=True)


def test_a_literal_address_is_checked_without_dns() -> None:
    with pytest.raises(UrlRefused):
        check_url("http://169.254.169.254/latest/meta-data", allow_private=True)
    check_url("http://127.0.0.1:9/hook", allow_private=True)


def test_the_url_is_shown_without_its_secret_path() -> None:
    assert shown("https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com/…"
    assert shown("https://example.com") == "https://example.com"
