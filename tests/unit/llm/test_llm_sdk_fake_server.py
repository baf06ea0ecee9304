"""The real anthropic and openai SDKs against Nova's fake provider server on loopback.

Nothing is patched: the clients are the production clients with base URLs on the fake server,
and the fake server's call log is the evidence of where requests went.
"""

import socket
import ssl
import uuid
from typing import Any

import aiohttp
import httpx
import pytest

from nova.errors import ProviderError
from nova.llm.clients import ClientPool, UnconfiguredClient
from nova.llm.executor import ExecutionRequest, Executor
from nova.llm.fake_server import FakeServerThread
from nova.llm.health import BreakerConfig, HealthBoard, probe
from nova.llm.registry import fake_registry, load_registry
from nova.llm.retry import ContextWindowError
from nova.llm.routing import Router, RouteRequest
from nova.settings import Settings

HELLO = [
    {"role": "user", "content": "Summarise the quarterly report in three bullet points please"}
]


@pytest.fixture(scope="module")
def fake():
    with FakeServerThread() as server:
        yield server


class Control:
    """``control(provider, **settings)`` sets how a fake provider answers; ``control.calls()``
    reads what it received."""

    def __init__(self, client):
        self.client = client

    def __call__(self, provider, **settings):
        self.client.post(f"/_control/{provider}", json=settings).raise_for_status()

    def calls(self, rid=None):
        return self.client.get(f"/_calls/{rid}" if rid else "/_calls").json()


@pytest.fixture
def control(fake):
    with httpx.Client(base_url=fake.url) as client:
        client.post("/_control/reset").raise_for_status()
        yield Control(client)


@pytest.fixture
async def pool(fake):
    async with ClientPool.fake(fake.url, timeout_s=5.0) as pool:
        yield pool


class Sleeps:
    def __init__(self):
        self.delays = []

    async def __call__(self, seconds):
        self.delays.append(seconds)


def rid():
    return f"req-{uuid.uuid4().hex[:8]}"


async def test_anthropic_sdk_round_trip_moves_system_text_into_the_system_parameter(pool, control):
    request_id = rid()
    messages = [{"role": "system", "content": "s" * 40}, *HELLO]
    done = await pool.complete("anthropic", "claude-haiku-4-5", messages, 256, request_id)
    assert done.text == f"[fake:anthropic/claude-haiku-4-5] {HELLO[0]['content']}"
    assert done.tokens_in == -(-(40 + len(HELLO[0]["content"])) // 4)  # system text was sent
    assert done.tokens_out == -(-len(done.text) // 4)
    assert (done.provider, done.model, done.cached_tokens) == ("anthropic", "claude-haiku-4-5", 0)
    assert done.latency_ms > 0
    assert control.calls(request_id) == [
        {"provider": "anthropic", "model": "claude-haiku-4-5", "status": 200}
    ]


async def test_openai_sdk_round_trip_for_openai_compatible_providers(pool, control):
    request_id = rid()
    for provider, model in [
        ("openai", "gpt-5.1"),
        ("groq", "llama-3.3-70b-versatile"),
        ("ollama", "llama3.1:8b"),
    ]:
        done = await pool.complete(provider, model, HELLO, 64, request_id)
        assert done.text.startswith(f"[fake:{provider}/{model}] Summarise")
        assert done.tokens_in == -(-len(HELLO[0]["content"]) // 4)
    summary = control.calls()
    assert summary["by_request"] == {request_id: 3}
    assert summary["by_provider"] == {"openai": 1, "groq": 1, "ollama": 1}


async def test_max_tokens_truncates_deterministically(pool, control):
    done = await pool.complete("mistral", "mistral-small-latest", HELLO, 2, rid())
    assert done.tokens_out == 2
    assert len(done.text) == 8


async def test_a_429_maps_to_a_retriable_error_with_retry_after(pool, control):
    control("openai", rate_limit_retry_after=1.5, fail_times=1)
    with pytest.raises(ProviderError) as caught:
        await pool.complete("openai", "gpt-5.1", HELLO, 64, rid())
    assert (caught.value.status, caught.value.retriable, caught.value.retry_after_s) == (
        429,
        True,
        1.5,
    )
    done = await pool.complete("openai", "gpt-5.1", HELLO, 64, rid())  # fail_times ran out
    assert done.provider == "openai"


@pytest.mark.parametrize("provider", ["anthropic", "deepseek"])
async def test_5xx_and_down_map_to_retriable_errors(pool, control, provider):
    model = load_registry().provider(provider).default_model
    control(provider, fail_status=500)
    with pytest.raises(ProviderError) as caught:
        await pool.complete(provider, model, HELLO, 64, rid())
    assert (caught.value.status, caught.value.retriable) == (500, True)
    control(provider, fail_status=None, down=True)
    with pytest.raises(ProviderError) as caught:
        await pool.complete(provider, model, HELLO, 64, rid())
    assert caught.value.status == 503


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-opus-4-6"), ("openai", "gpt-5.1")]
)
async def test_context_overflow_maps_to_a_context_window_error(pool, control, provider, model):
    control(provider, context_window=5)
    with pytest.raises(ContextWindowError) as caught:
        await pool.complete(provider, model, HELLO, 64, rid())
    assert caught.value.status == 400


async def test_a_fatal_4xx_is_not_retriable(pool, control):
    control("xai", fail_status=401)
    with pytest.raises(ProviderError) as caught:
        await pool.complete("xai", "grok-4", HELLO, 64, rid())
    assert (caught.value.status, caught.value.retriable) == (401, False)


async def test_timeouts_and_refused_connections_are_retriable_without_status(fake, control):
    control("openai", latency_ms=600)
    async with ClientPool.fake(fake.url, timeout_s=0.2) as slow:
        with pytest.raises(ProviderError, match=r"timed out after 0\.2s") as caught:
            await slow.complete("openai", "gpt-5.1", HELLO, 64, rid())
    assert (caught.value.status, caught.value.retriable) == (None, True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with ClientPool.fake(dead, timeout_s=1.0) as nowhere:
        for provider, model in (("anthropic", "claude-haiku-4-5"), ("openai", "gpt-5.1")):
            with pytest.raises(ProviderError, match="connection failed") as caught:
                await nowhere.complete(provider, model, HELLO, 64, rid())
            assert caught.value.status is None
            assert caught.value.retriable


async def test_the_pool_builds_each_client_once_and_refuses_use_after_close(fake):
    pool = ClientPool.fake(fake.url)
    assert pool.client("openai") is pool.client("openai")
    await pool.aclose()
    with pytest.raises(ProviderError, match="closed"):
        pool.client("openai")


async def test_warming_builds_every_providers_client_loading_the_ca_bundle_once(
    fake, control, monkeypatch
):
    """Each SDK client would otherwise load the CA bundle (~35 ms of CPU) on its first use,
    in the middle of serving; warmed, they share one TLS context and all still answer."""
    loads = []
    real = ssl.create_default_context

    def counted(*args, **kwargs):
        loads.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    async with ClientPool.fake(fake.url, timeout_s=5.0) as pool:
        pool.warm()
        assert len(loads) == 1
        built = {name: pool.client(name) for name in pool.registry.names}
        assert len(built) == len(pool.registry) > 1
        assert all(pool.client(name) is client for name, client in built.items())
        answered = [(await pool.complete(name, pool.registry.provider(name).models[0].id,
                                         HELLO, 10, rid())).provider
                    for name in ("anthropic", "openai", "mistral")]
        assert answered == ["anthropic", "openai", "mistral"]
        assert len(loads) == 1


async def test_both_sdks_call_through_aiohttp_connections(fake, control):
    """The SDKs' aiohttp transport, not their httpx pool (which walked every pooled connection
    on each request it started and finished): a call of each style leaves an open aiohttp
    connection behind it, kept alive for the next."""
    async with ClientPool.fake(fake.url, timeout_s=5.0) as pool:
        for name in ("anthropic", "openai"):
            reply = await pool.complete(name, pool.registry.provider(name).models[0].id,
                                        HELLO, 10, rid())
            assert reply.provider == name
            sdk: Any = getattr(pool.client(name), "_sdk")  # noqa: B009 (a private attribute)
            session = sdk._client._transport.client
            assert isinstance(session, aiohttp.ClientSession)
            assert not session.closed
            assert session.connector is not None
            assert len(session.connector._conns) == 1


async def test_a_provider_without_a_key_fails_fast_and_names_the_variable(fake):
    registry = fake_registry(fake.url)
    async with ClientPool(registry, timeout_s=1.0, env={"OPENAI_API_KEY": "sk-test"}) as pool:
        assert isinstance(pool.client("anthropic"), UnconfiguredClient)
        assert not isinstance(pool.client("ollama"), UnconfiguredClient)  # local: no key needed
        with pytest.raises(ProviderError, match="set ANTHROPIC_API_KEY"):
            await pool.complete("anthropic", "claude-haiku-4-5", HELLO, 10, rid())
        assert (await pool.complete("openai", "gpt-5.1", HELLO, 10, rid())).provider == "openai"


async def test_pool_from_settings_uses_the_fake_server_when_configured(fake, control):
    async with ClientPool.from_settings(Settings(llm_fake_url=fake.url), env={}) as pool:
        assert (
            await pool.complete("google", "gemini-2.5-flash", HELLO, 10, rid())
        ).provider == "google"


async def test_probes_feed_the_health_board(pool, control):
    board = HealthBoard(["anthropic", "mistral"], config=BreakerConfig(failure_threshold=2))
    assert await probe("anthropic", pool, board) is True
    assert await probe("mistral", pool, board) is True
    control("mistral", down=True)
    assert await probe("mistral", pool, board) is False
    assert await probe("mistral", pool, board) is False
    assert board.circuit_open("mistral")
    assert board.status("anthropic") == "healthy"
    assert control.calls()["probes"] == {"anthropic": 1, "mistral": 3}


# --- the router and executor end to end through the SDKs ---------------------------------


def make_executor(pool, sleeps, board=None):
    return Executor(pool, pool.registry, board=board, sleep=sleeps)


async def test_fail_then_fallback_records_two_attempts_and_two_calls(pool, control):
    control("anthropic", fail_status=503)
    decision = Router(pool.registry).decide(RouteRequest(task_type="code"))
    sleeps = Sleeps()
    request_id = rid()
    outcome = await make_executor(pool, sleeps).execute(
        decision, ExecutionRequest(request_id, tuple(HELLO))
    )
    assert outcome.status == "completed"
    assert [(a.provider, a.model, a.status) for a in outcome.attempts] == [
        ("anthropic", "claude-sonnet-4-6", "error"),
        ("openai", "gpt-5.1", "ok"),
    ]
    assert outcome.attempts[1].fallback_from == "anthropic/claude-sonnet-4-6"
    assert outcome.attempts[1].cost_usd > 0
    assert outcome.attempts[1].tokens_out > 0
    assert [c["provider"] for c in control.calls(request_id)] == ["anthropic", "openai"]
    assert sleeps.delays == []


async def test_a_429_with_retry_after_is_waited_as_told(pool, control):
    control("anthropic", rate_limit_retry_after=1.5, fail_times=1)
    decision = Router(pool.registry).decide(RouteRequest(task_type="creative"))
    sleeps = Sleeps()
    request_id = rid()
    outcome = await make_executor(pool, sleeps).execute(
        decision, ExecutionRequest(request_id, tuple(HELLO))
    )
    assert sleeps.delays == [1.5]
    assert outcome.status == "completed"
    assert outcome.completion is not None
    assert outcome.completion.provider == "anthropic"
    assert [c["status"] for c in control.calls(request_id)] == [429, 200]
    assert outcome.attempts[1].waited_s == 1.5


async def test_nova_role_with_anthropic_down_fails_and_never_reaches_another_provider(
    pool, control
):
    control("anthropic", down=True)
    board = HealthBoard(pool.registry.names, config=BreakerConfig(failure_threshold=3))
    router = Router(pool.registry)
    executor = make_executor(pool, Sleeps(), board)

    # First the board still thinks anthropic is healthy: every Claude model is tried, nothing else.
    decision = router.decide(RouteRequest(task_type="general", role="nova"), board.snapshot())
    request_id = rid()
    outcome = await executor.execute(decision, ExecutionRequest(request_id, tuple(HELLO)))
    assert outcome.status == "failed"
    assert {c["provider"] for c in control.calls(request_id)} == {"anthropic"}

    # Now the breaker is open and the router refuses outright, naming the lock.
    assert board.circuit_open("anthropic")
    with pytest.raises(ProviderError, match="locked to anthropic") as caught:
        router.decide(RouteRequest(task_type="general", role="nova"), board.snapshot())
    assert caught.value.retriable is False
    assert control.calls()["by_provider"] == {"anthropic": 3}


async def test_the_same_outage_for_an_ordinary_role_falls_back(pool, control):
    control("anthropic", down=True)
    decision = Router(pool.registry).decide(RouteRequest(task_type="general", role="orchestrator"))
    outcome = await make_executor(pool, Sleeps()).execute(
        decision, ExecutionRequest(rid(), tuple(HELLO))
    )
    assert outcome.completion is not None
    assert outcome.completion.provider == "openai"


async def test_control_api_validates_and_reports_settings(fake, control):
    async with httpx.AsyncClient(base_url=fake.url) as client:
        bad = await client.post("/_control/openai", json={"latency": 5})
        assert bad.status_code == 422
        ok = await client.post("/_control/openai", json={"fail_status": 502, "fail_times": 2})
        assert ok.json()["fail_status"] == 502
        assert ok.json()["fail_times"] == 2
        assert (await client.get("/_calls/nobody")).json() == []


async def test_the_fake_server_keeps_every_body_it_received(fake, pool, control):
    request_id = rid()
    secret_ish = "Pay FR76 3000 6000 0112 3456 7890 189 today"
    message = [{"role": "user", "content": secret_ish}]
    await pool.complete("anthropic", "claude-haiku-4-5", message, 64, request_id)
    control("openai", fail_status=500, fail_times=1)
    with pytest.raises(ProviderError):  # a failed call still received its body
        await pool.complete("openai", "gpt-5.1", message, 64, request_id)
    await pool.complete("openai", "gpt-5.1", HELLO, 64, rid())

    received = fake.state.bodies_for(request_id)
    assert [(b.provider, b.path) for b in received] == [
        ("anthropic", "/anthropic/v1/messages"),
        ("openai", "/openai/v1/chat/completions"),
    ]
    assert all(b.request_id == request_id for b in received)
    assert received[0].body["messages"] == message  # the parsed JSON, as the SDK sent it
    assert received[1].body["model"] == "gpt-5.1"
    assert all(secret_ish in b.raw for b in received)  # and the exact text on the wire
    assert secret_ish in received[1].strings()  # every string of the body, to scan for leaks
    assert len(fake.state.all_bodies()) == 3

    async with httpx.AsyncClient(base_url=fake.url) as client:
        over_http = (await client.get(f"/_bodies/{request_id}")).json()
        assert [b["body"] for b in over_http] == [b.body for b in received]
        assert {b["provider"] for b in (await client.get("/_bodies")).json()} == {
            "anthropic",
            "openai",
        }
        assert (await client.get("/_bodies/nobody")).json() == []
        (await client.post("/_control/reset")).raise_for_status()
        assert (await client.get("/_bodies")).json() == []
    assert fake.state.all_bodies() == []


async def test_base_urls_from_the_environment_reach_a_proxy_with_the_real_sdks(fake, control):
    """OPENAI_BASE_URL / ANTHROPIC_BASE_URL / OLLAMA_BASE_URL point the production clients at
    another server (here the fake one standing in for a proxy); nothing else moves."""
    env = {
        "OPENAI_BASE_URL": f"{fake.url}/openai/v1",
        "OPENAI_API_KEY": "sk-proxy",
        "ANTHROPIC_BASE_URL": f"{fake.url}/anthropic",
        "ANTHROPIC_API_KEY": "sk-ant-proxy",
        "OLLAMA_BASE_URL": f"{fake.url}/ollama/v1",
    }
    settings = Settings(environment="test", llm_fake_url=None)
    async with ClientPool.from_settings(settings, env) as pool:
        assert pool.registry.provider("ollama").enabled
        for provider, model in [("openai", "gpt-5-mini"), ("anthropic", "claude-haiku-4-5"),
                                ("ollama", pool.registry.provider("ollama").default_model)]:
            request_id = rid()
            done = await pool.complete(provider, model, HELLO, 64, request_id)
            assert done.text.startswith(f"[fake:{provider}/{model}]")
            assert control.calls(request_id) == [
                {"provider": provider, "model": model, "status": 200}
            ]
        with pytest.raises(ProviderError, match="no API key"):
            await pool.complete("groq", "llama-3.1-8b-instant", HELLO, 64, rid())


async def test_the_fake_servers_connections_send_without_waiting_for_acks() -> None:
    """asyncio sets TCP_NODELAY on what it accepts only from a socket whose protocol says TCP;
    without it every answer after a connection's first waited some 40 ms (Nagle + delayed
    ACK), and every benchmark baseline and test call to the fake server paid it."""
    import asyncio

    from nova.llm.fake_server import _listening_socket

    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    listening = _listening_socket()
    listening.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(on_connect, sock=listening)
    async with server:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
