"""Auth specification: the JWT tampering matrix and API keys that are never stored in clear."""

from __future__ import annotations

import base64
import contextlib
import json
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from pydantic import SecretStr

from nova.auth.keys import (
    API_KEY_PREFIX,
    create_api_key,
    generate_api_key,
    parse_key_id,
    verify_api_key,
)
from nova.auth.tokens import issue_token, verify_token
from nova.errors import AuthError
from nova.settings import Settings

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        jwt_secret=SecretStr(SECRET),
        jwt_issuer="nova",
        jwt_audience="nova-api",
        jwt_ttl_s=600,
    )


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": "nova",
        "aud": "nova-api",
        "sub": "user-1",
        "identity": "id_alice",
        "roles": ["member"],
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip(settings: Settings) -> None:
    token = issue_token(settings, "user-1", "id_alice", ["member", "approver"], NOW)
    principal = verify_token(settings, token, NOW + timedelta(seconds=30))
    assert principal.sub == "user-1"
    assert principal.identity == "id_alice"
    assert principal.roles == frozenset({"member", "approver"})
    assert principal.expires_at == NOW + timedelta(seconds=600)


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _none_alg_token() -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."


def _hs512_token() -> str:
    # Signed with the real secret: only the algorithm pin stops it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims(), SECRET, algorithm="HS512")


def _rs256_token() -> str:
    # An RS256 header on an HMAC-signed body (algorithm confusion): refused on the header alone.
    _, payload, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: "", "missing token"),
        (lambda: "not-a-jwt", "malformed token"),
        (lambda: "a.b.c", "malformed token"),
        (lambda: "x" * 5000, "token too large"),
        (lambda: jwt.encode(claims(exp=int(NOW.timestamp()) - 1), SECRET), "token expired"),
        (lambda: jwt.encode(claims(), "another-secret-0123456789abcdef012345"), "bad signature"),
        (_none_alg_token, "algorithm not allowed"),
        (_hs512_token, "algorithm not allowed"),
        (_rs256_token, "algorithm not allowed"),
        (lambda: jwt.encode(claims(aud="someone-else"), SECRET), "wrong audience"),
        (lambda: jwt.encode(claims(iss="evil"), SECRET), "wrong issuer"),
        (lambda: jwt.encode(claims(exp=None), SECRET), "missing claim exp"),
        (lambda: jwt.encode(claims(aud=None), SECRET), "missing claim aud"),
        (lambda: jwt.encode(claims(identity=None), SECRET), "missing claim identity"),
        (lambda: jwt.encode(claims(roles=None), SECRET), "missing claim roles"),
        (lambda: jwt.encode(claims(roles=["member", "root"]), SECRET), "unknown role"),
        (lambda: jwt.encode(claims(roles="admin"), SECRET), "missing claim roles"),
        (
            lambda: jwt.encode(claims(nbf=int(NOW.timestamp()) + 60), SECRET),
            "token not yet valid",
        ),
    ],
)
def test_tampering_matrix(settings: Settings, make: object, reason: str) -> None:
    token = make()  # type: ignore[operator]
    with pytest.raises(AuthError) as info:
        verify_token(settings, token, NOW)
    assert str(info.value) == reason


def test_tampered_payload_fails_signature(settings: Settings) -> None:
    token = issue_token(settings, "user-1", "id_alice", ["member"], NOW)
    header, _, signature = token.split(".")
    forged = jwt.encode(claims(roles=["admin"]), "x" * 40).split(".")[1]
    with pytest.raises(AuthError, match="bad signature"):
        verify_token(settings, f"{header}.{forged}.{signature}", NOW)


def test_expiry_boundary(settings: Settings) -> None:
    token = issue_token(settings, "user-1", "id_alice", ["member"], NOW)
    verify_token(settings, token, NOW + timedelta(seconds=599))
    with pytest.raises(AuthError, match="token expired"):
        verify_token(settings, token, NOW + timedelta(seconds=600))


def test_issuing_an_unknown_role_is_refused(settings: Settings) -> None:
    with pytest.raises(AuthError, match="unknown role"):
        issue_token(settings, "user-1", "id_alice", ["superuser"], NOW)


def test_operator_is_a_role_of_its_own(settings: Settings) -> None:
    token = issue_token(settings, "ops", "id_ops", ["operator"], NOW)
    principal = verify_token(settings, token, NOW)
    assert principal.roles == frozenset({"operator"})
    assert not principal.has_role("admin")  # neither implies the other


def test_api_key_round_trip_and_storage() -> None:
    record, plaintext = create_api_key("id_alice", ["member"], NOW)
    assert plaintext.startswith(API_KEY_PREFIX)
    assert parse_key_id(plaintext) == record.key_id
    assert plaintext not in record.hash
    assert plaintext not in repr(record)
    assert record.hash.startswith("pbkdf2_sha256$")
    principal = verify_api_key(record, plaintext)
    assert (principal.identity, principal.roles, principal.expires_at) == (
        "id_alice",
        frozenset({"member"}),
        None,
    )


def test_same_key_hashes_differently_each_time() -> None:
    first, _ = create_api_key("id_alice", ["member"], NOW)
    second, _ = create_api_key("id_alice", ["member"], NOW)
    assert first.hash != second.hash


def test_api_key_rejections() -> None:
    record, plaintext = create_api_key("id_alice", ["member"], NOW)
    _, other_plaintext = generate_api_key()
    flipped = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    with pytest.raises(AuthError, match="invalid api key"):
        verify_api_key(record, flipped)
    with pytest.raises(AuthError, match="invalid api key"):
        verify_api_key(record, other_plaintext)  # another key id
    with pytest.raises(AuthError, match="malformed api key"):
        verify_api_key(record, "Bearer something")
    with pytest.raises(AuthError, match="unknown role"):
        create_api_key("id_alice", ["root"], NOW)


# -- strict claims (issue 14, item 8): a valid signature over absurd claims is a clean 401 ------
T = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": 1e300}, "malformed claim exp"),
        ({"exp": 10**400}, "malformed claim exp"),
        ({"exp": -1}, "malformed claim exp"),
        ({"exp": "9999999999"}, "malformed claim exp"),
        ({"exp": True}, "malformed claim exp"),
        ({"exp": [T + 60]}, "malformed claim exp"),
        ({"iat": "now"}, "malformed claim iat"),
        ({"iat": None}, "missing claim iat"),
        ({"nbf": 1e308}, "malformed claim nbf"),
        ({"iat": T + 365 * 86400, "exp": T + 365 * 86400 + 60}, "token issued in the future"),
        ({"iat": T + 61, "exp": T + 600}, "token issued in the future"),
        ({"exp": T + 600 + 61}, "token lifetime out of bounds"),  # longer than jwt_ttl_s
        ({"iat": T - 10, "exp": T + 10**9}, "token lifetime out of bounds"),
        ({"iat": T + 30, "exp": T + 20}, "token lifetime out of bounds"),  # expires before issued
        ({"identity": "id_al\x00ice"}, "malformed claim identity"),
        ({"identity": "id alice"}, "malformed claim identity"),
        ({"identity": "x" * 129}, "malformed claim identity"),
        ({"identity": ""}, "malformed claim identity"),
        ({"identity": 42}, "malformed claim identity"),
        ({"sub": "user\x00-1"}, "malformed claim sub"),
        ({"sub": "user-1\n"}, "malformed claim sub"),
        ({"sub": "user\u202e1"}, "malformed claim sub"),  # right-to-left override
        ({"sub": "u" * 129}, "malformed claim sub"),
        ({"sub": " user-1"}, "malformed claim sub"),
        ({"roles": []}, "empty roles"),
        ({"roles": ["member"] * 17}, "malformed claim roles"),
        ({"roles": [None]}, "unknown role"),
    ],
)
def test_signed_tokens_with_absurd_claims_are_refused(
    settings: Settings, overrides: dict[str, object], reason: str
) -> None:
    payload = {**claims(), **overrides}
    token = jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET)
    with pytest.raises(AuthError) as info:
        verify_token(settings, token, NOW)
    assert str(info.value) == reason


def _signed_raw(payload_json: str) -> str:
    """A token over JSON that ``jwt.encode`` would not write (NaN)."""
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = base64.urlsafe_b64encode(payload_json.encode()).decode().rstrip("=")
    mac = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numeric_dates_are_refused(settings: Settings, value: str) -> None:
    fields = json.dumps(claims(exp=None))[1:-1]  # every claim but exp
    token = _signed_raw(f'{{{fields}, "exp": {value}}}')
    with pytest.raises(AuthError, match="malformed claim exp"):
        verify_token(settings, token, NOW)


def test_iat_within_the_skew_and_a_full_lifetime_are_accepted(settings: Settings) -> None:
    token = jwt.encode(claims(iat=T + 59, exp=T + 59 + 600), SECRET)
    assert verify_token(settings, token, NOW).identity == "id_alice"


def test_issuing_refuses_what_verifying_would_refuse(settings: Settings) -> None:
    with pytest.raises(AuthError, match="empty roles"):
        issue_token(settings, "user-1", "id_alice", [], NOW)
    with pytest.raises(AuthError, match="malformed identity id"):
        issue_token(settings, "user-1", "id\x00alice", ["member"], NOW)
    with pytest.raises(AuthError, match="malformed subject"):
        issue_token(settings, "user\n1", "id_alice", ["member"], NOW)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@settings_hypothesis(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["exp", "iat", "nbf", "sub", "identity", "roles", "iss", "aud"]),
    value=JSON,
)
def test_any_signed_claim_value_is_a_principal_or_an_auth_error(name: str, value: object) -> None:
    """Whatever a correctly signed token carries in one claim, the answer is never a crash."""
    s = Settings(environment="test", jwt_secret=SecretStr(SECRET), jwt_issuer="nova",
                 jwt_audience="nova-api", jwt_ttl_s=600)
    token = _signed_raw(json.dumps({**claims(), name: value}, allow_nan=True))
    with contextlib.suppress(AuthError):
        verify_token(s, token, NOW)
