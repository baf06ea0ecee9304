"""Sessions and refresh tokens, the pure rules (``nova.auth.sessions``), and the ``sid`` claim."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest

from nova.auth.sessions import (
    MAX_RETIRED,
    check_refresh,
    open_session,
    parse_session_id,
    refresh_hash,
    refuse_access,
    revoke,
    rotate,
)
from nova.auth.tokens import issue_token, verify_token
from nova.entities.models import SessionEntity, from_event, to_event
from nova.errors import AuthError
from nova.settings import load_settings

NOW = 1_800_000_000_000
TTL_S = 3600


def opened(key_id: str | None = "0123456789abcdef") -> tuple[SessionEntity, str]:
    o = open_session(identity_id="alice-personal", user_id="alice", roles=["member", "approver"],
                     key_id=key_id, now_ms=NOW, ttl_s=TTL_S)
    return o.session, o.refresh_token


def test_a_session_stores_the_hash_never_the_refresh_token() -> None:
    session, token = opened()
    assert token.startswith("nova_rt_")
    assert parse_session_id(token) == session.id
    assert session.refresh_hash == refresh_hash(token)
    assert token not in session.canonical_json()
    assert token not in repr(session)
    assert session.refresh_hash not in repr(session)
    assert session.expires_at == NOW + TTL_S * 1000
    assert session.roles == ("approver", "member")


@pytest.mark.parametrize("presented", [
    "", "nova_rt_", "nova_rt_x_y", "nova_0123456789abcdef_" + "a" * 43,
    "nova_rt_0190f0e0-0000-7000-8000-000000000000_short"])
def test_malformed_refresh_tokens_name_no_session(presented: str) -> None:
    with pytest.raises(AuthError):
        parse_session_id(presented)


def test_rotation_retires_the_token_and_a_retired_one_is_a_reuse() -> None:
    session, first = opened()
    assert check_refresh(session, first, NOW + 1) == "current"
    second = rotate(session, NOW + 1)
    assert second.session.expires_at == session.expires_at  # refreshing never extends
    assert check_refresh(second.session, second.refresh_token, NOW + 2) == "current"
    assert check_refresh(second.session, first, NOW + 2) == "reused"
    assert check_refresh(second.session, first[:-1] + ("A" if first[-1] != "A" else "B"),
                         NOW + 2) == "invalid"


def test_only_the_last_retired_tokens_are_remembered() -> None:
    session, token = opened()
    tokens = [token]
    for step in range(MAX_RETIRED + 2):
        o = rotate(session, NOW + step)
        session = o.session
        tokens.append(o.refresh_token)
    assert len(session.retired_hashes) == MAX_RETIRED
    assert check_refresh(session, tokens[-2], NOW) == "reused"
    assert check_refresh(session, tokens[0], NOW) == "invalid"  # too old to be told apart


def test_a_revoked_or_expired_session_refuses_even_its_current_token() -> None:
    session, token = opened()
    assert check_refresh(session, token, session.expires_at) == "expired"
    ended = revoke(session, "logout", NOW + 5)
    assert check_refresh(ended, token, NOW + 6) == "revoked"
    again = revoke(ended, "reuse", NOW + 9)
    assert (again.revoked_at, again.revoked_reason) == (NOW + 5, "logout")  # the first stays


def test_access_is_refused_for_every_reason_a_session_gives() -> None:
    session, _ = opened()
    ok = {"identity": "alice-personal", "sub": "alice", "now_ms": NOW + 1, "key_live": True}
    assert refuse_access(session, **ok) is None  # type: ignore[arg-type]
    assert refuse_access(None, **ok) == "session unknown or ended"  # type: ignore[arg-type]
    assert refuse_access(revoke(session, "logout", NOW), **ok) == "token revoked"  # type: ignore[arg-type]
    assert refuse_access(session, **{**ok, "now_ms": session.expires_at}) == "session expired"  # type: ignore[arg-type]
    assert refuse_access(session, **{**ok, "identity": "bob"}) is not None  # type: ignore[arg-type]
    assert refuse_access(session, **{**ok, "sub": "mallory"}) is not None  # type: ignore[arg-type]
    assert refuse_access(session, **{**ok, "key_live": False}) == "token revoked"  # type: ignore[arg-type]


def test_a_session_record_round_trips_and_refuses_unknown_roles() -> None:
    session, _ = opened(key_id=None)
    back = from_event(to_event(rotate(session, NOW).session, version=2, ts=NOW))
    assert isinstance(back, SessionEntity)
    assert back.key_id is None
    assert len(back.retired_hashes) == 1
    with pytest.raises(ValueError, match="roles"):
        SessionEntity.model_validate({**session.model_dump(), "roles": ["root"]})


def test_the_sid_claim_travels_and_a_malformed_one_is_refused() -> None:
    settings = load_settings(environment="test")
    now = datetime.now(UTC)
    session, _ = opened()
    token = issue_token(settings, "alice", "alice-personal", ["member"], now,
                        session_id=session.id)
    assert verify_token(settings, token).session_id == session.id
    assert verify_token(settings, issue_token(settings, "a", "b", ["member"], now)).session_id \
        is None
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "sid": "../../etc"}, settings.jwt_secret.get_secret_value(),
                        algorithm="HS256")
    with pytest.raises(AuthError, match="sid"):
        verify_token(settings, forged)
    with pytest.raises(AuthError):
        issue_token(settings, "a", "b", ["member"], now, session_id="not-a-uuid")
