"""A fake LLM provider server that the official SDKs cannot tell from the real ones.

Nova must never call real providers in tests or the offline demo, yet the code under test should
be the production code, SDKs included. So instead of patching SDKs we point their base URLs here
(``registry.fake_registry``): one server speaks the Anthropic Messages API at ``/anthropic/v1``
and OpenAI Chat Completions at ``/{provider}/v1`` for every other provider. Answers are
deterministic (``"[fake:{provider}/{model}] "`` plus the start of the prompt) with realistic usage
(input ≈ prompt chars / 4). A JSON control API injects latency, error statuses, 429s with
Retry-After, outages, context limits and fixed replies per provider, and counts the calls per
provider and per ``x-nova-request-id`` so tests can prove where a request did, and did not,
go. It also keeps the raw JSON body of every completion call (``FakeState.bodies_for``,
``GET /_bodies``), so tests can prove what left Nova: that a masked IBAN or card number never
reached a provider.

Tool calls are scripted (``POST /_script``, :class:`ScriptBody`): a script names a text to
match in the system prompt or any message and the replies to give, one per model step, each a
text or tool calls. The step is the number of assistant turns the conversation already holds,
so the reply depends on the request alone (no counter on the server): a run replayed after a
crash gets the same replies, and concurrent runs with their own match texts never mix. Calls
come back in the caller's format: Anthropic ``tool_use`` blocks (``stop_reason`` ``tool_use``)
or OpenAI ``tool_calls`` (``finish_reason`` ``tool_calls``), with deterministic ids.

Run it with ``python -m nova.llm.fake_server --port 8300``, :func:`serve`, or in tests with
:class:`FakeServerThread`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from nova.llm.registry import Registry, load_registry

REQUEST_ID_HEADER = "x-nova-request-id"
CREATED = 1_760_000_000  # fixed so whole responses are deterministic


class ControlBody(BaseModel):
    """``POST /_control/{provider}``: fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = None
    fail_status: int | None = None
    rate_limit_retry_after: float | None = None
    down: bool | None = None
    fail_times: int | None = None
    context_window: int | None = None
    reply: str | None = None


class ScriptedCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = {}


class ScriptStep(BaseModel):
    """One scripted reply: ``text``, or ``tool_calls`` (with an optional text beside them)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    tool_calls: list[ScriptedCall] = []


class ScriptBody(BaseModel):
    """``POST /_script``: the replies to a conversation containing ``match``.

    ``repeat_last`` answers every later step with the last reply (an agent that never stops,
    for step and cost limits)."""

    model_config = ConfigDict(extra="forbid")

    match: str
    steps: list[ScriptStep]
    repeat_last: bool = False

    def step(self, index: int) -> ScriptStep | None:
        if index < len(self.steps):
            return self.steps[index]
        return self.steps[-1] if self.repeat_last and self.steps else None


@dataclass(frozen=True)
class ProviderControl:
    latency_ms: int = 0
    fail_status: int | None = None
    rate_limit_retry_after: float | None = None
    down: bool = False
    fail_times: int | None = None  # None: fail every call while a failure mode is set
    context_window: int | None = None
    reply: str | None = None  # a fixed answer instead of the echo (a classifier's one word)

    @property
    def failing(self) -> bool:
        return self.down or self.fail_status is not None or self.rate_limit_retry_after is not None


@dataclass(frozen=True)
class Call:
    provider: str
    model: str
    request_id: str | None
    status: int


@dataclass(frozen=True)
class ReceivedBody:
    """One completion request as it arrived: ``raw`` is the exact text, ``body`` its JSON.

    Both are kept because they answer different questions: ``body`` what the SDK meant to
    send, ``raw`` what was on the wire (JSON escapes included).
    """

    provider: str
    path: str
    request_id: str | None
    raw: str
    body: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def strings(self) -> list[str]:
        """Every string in the JSON body, keys and values: what to scan for a leaked value.

        Scan these rather than ``raw``: JSON may escape non-ASCII characters, so a full-width
        IBAN on the wire reads ``\\uff26\\uff32...`` and a scanner of the raw text misses it.
        """
        found: list[str] = []
        stack: list[Any] = [self.body]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict):
                stack.extend(reversed([*item.keys(), *item.values()]))
            elif isinstance(item, list):
                stack.extend(reversed(item))
        return found


@dataclass
class FakeState:
    """Controls, the call log and the received bodies, shared by the server thread and test
    code (hence the lock)."""

    controls: dict[str, ProviderControl] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    bodies: list[ReceivedBody] = field(default_factory=list)
    probes: Counter[str] = field(default_factory=Counter)
    scripts: list[ScriptBody] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, body: ScriptBody) -> None:
        with self.lock:
            self.scripts.append(body)

    def scripted(self, prompt: str, turns: list[Any]) -> tuple[int, ScriptStep] | None:
        """The newest script matching ``prompt`` and its reply to this conversation's step."""
        index = sum(1 for t in turns if isinstance(t, dict) and t.get("role") == "assistant")
        with self.lock:
            script = next((s for s in reversed(self.scripts) if s.match in prompt), None)
        if script is None:
            return None
        step = script.step(index)
        return None if step is None else (index, step)

    def configure(self, provider: str, **changes: Any) -> ProviderControl:
        with self.lock:
            current = self.controls.get(provider, ProviderControl())
            # An explicit null clears a nullable setting; latency and down have no null.
            applied = {
                k: v for k, v in changes.items() if v is not None or k not in ("latency_ms", "down")
            }
            updated = replace(current, **applied)
            self.controls[provider] = updated
            return updated

    def reset(self) -> None:
        with self.lock:
            self.controls.clear()
            self.calls.clear()
            self.bodies.clear()
            self.probes.clear()
            self.scripts.clear()

    def control(self, provider: str) -> ProviderControl:
        with self.lock:
            return self.controls.get(provider, ProviderControl())

    def take_failure(self, provider: str) -> ProviderControl | None:
        """The failure to serve now, if any; counts down ``fail_times`` and clears at zero."""
        with self.lock:
            control = self.controls.get(provider, ProviderControl())
            if not control.failing:
                return None
            if control.fail_times is not None:
                left = control.fail_times - 1
                self.controls[provider] = (
                    replace(control, fail_times=left)
                    if left > 0
                    else replace(
                        control,
                        fail_times=None,
                        fail_status=None,
                        rate_limit_retry_after=None,
                        down=False,
                    )
                )
            return control

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def record_body(self, received: ReceivedBody) -> None:
        with self.lock:
            self.bodies.append(received)

    def all_bodies(self) -> list[ReceivedBody]:
        """Every completion request received since the last reset, in arrival order."""
        with self.lock:
            return list(self.bodies)

    def bodies_for(self, request_id: str) -> list[ReceivedBody]:
        """The completion requests carrying ``x-nova-request-id: request_id``, in order."""
        with self.lock:
            return [b for b in self.bodies if b.request_id == request_id]

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": len(self.calls),
                "by_provider": dict(Counter(c.provider for c in self.calls)),
                "by_request": dict(Counter(c.request_id or "" for c in self.calls)),
                "probes": dict(self.probes),
            }

    def calls_for(self, request_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"provider": c.provider, "model": c.model, "status": c.status}
                for c in self.calls
                if c.request_id == request_id
            ]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(b.get("content")) if b.get("type") == "tool_result"
                        else str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _tokens(chars: int) -> int:
    return max(1, -(-chars // 4))


def _answer(
    provider: str, model: str, prompt: str, last_user: str, max_tokens: int,
    reply: str | None = None,
) -> tuple[str, int, int, bool]:
    """Deterministic reply text, input tokens, output tokens, and whether max_tokens cut it.

    The text echoes the start of the last user message, or is ``reply`` when the provider's
    control sets one."""
    words = last_user.split()
    summary = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
    text = reply if reply is not None else f"[fake:{provider}/{model}] {summary}".rstrip()
    out = _tokens(len(text))
    truncated = out > max_tokens
    if truncated:
        text, out = text[: max(1, max_tokens) * 4], max(1, max_tokens)
    return text, _tokens(len(prompt)), out, truncated


def _error(
    anthropic_style: bool, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if anthropic_style:
        kind = {
            400: "invalid_request_error",
            429: "rate_limit_error",
            503: "overloaded_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind = {400: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            status, "server_error"
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(registry: Registry | None = None, state: FakeState | None = None) -> FastAPI:
    """The fake provider app; ``state`` is exposed as ``app.state.fake`` for in-process tests."""
    fake = state or FakeState()
    known = registry or load_registry()
    app = FastAPI(title="Nova fake LLM providers", docs_url=None, redoc_url=None)
    app.state.fake = fake

    async def failure_or_none(
        provider: str, anthropic_style: bool, prompt_tokens: int
    ) -> JSONResponse | None:
        control = fake.control(provider)
        if control.latency_ms:
            await asyncio.sleep(control.latency_ms / 1000)
        failure = fake.take_failure(provider)
        if failure is not None:
            if failure.down:
                return _error(anthropic_style, 503, f"{provider} is down (fake)")
            if failure.rate_limit_retry_after is not None:
                return _error(
                    anthropic_style,
                    429,
                    "rate limit exceeded (fake)",
                    {"retry-after": f"{failure.rate_limit_retry_after:g}"},
                )
            assert failure.fail_status is not None
            return _error(
                anthropic_style,
                failure.fail_status,
                f"injected failure {failure.fail_status} (fake)",
            )
        if control.context_window is not None and prompt_tokens > control.context_window:
            message = (
                f"prompt is too long: {prompt_tokens} tokens > {control.context_window} maximum"
                if anthropic_style
                else f"This model's maximum context length is {control.context_window} tokens. "
                f"However, your messages resulted in {prompt_tokens} tokens."
            )
            return _error(anthropic_style, 400, message)
        return None

    @app.post("/_control/reset")
    async def reset() -> dict[str, bool]:
        fake.reset()
        return {"ok": True}

    @app.post("/_control/{provider}")
    async def control(provider: str, body: ControlBody) -> dict[str, Any]:
        updated = fake.configure(provider, **body.model_dump(exclude_unset=True))
        return {"provider": provider, **asdict(updated)}

    @app.post("/_script")
    async def script(body: ScriptBody) -> dict[str, Any]:
        fake.script(body)
        return {"ok": True, "steps": len(body.steps)}

    @app.get("/_calls")
    async def calls() -> dict[str, Any]:
        return fake.summary()

    @app.get("/_calls/{request_id}")
    async def calls_for(request_id: str) -> list[dict[str, Any]]:
        return fake.calls_for(request_id)

    @app.get("/_bodies")
    async def bodies() -> list[dict[str, Any]]:
        return [b.as_dict() for b in fake.all_bodies()]

    @app.get("/_bodies/{request_id}")
    async def bodies_for(request_id: str) -> list[dict[str, Any]]:
        return [b.as_dict() for b in fake.bodies_for(request_id)]

    async def received(provider: str, request: Request) -> Any:
        """The request's JSON body, recorded before anything else looks at it.

        An unparsable body is recorded too (with ``body`` None): it still left the caller.
        """
        raw = (await request.body()).decode("utf-8", errors="replace")
        body: Any = None
        try:
            body = json.loads(raw)
        finally:
            request_id = request.headers.get(REQUEST_ID_HEADER)
            fake.record_body(ReceivedBody(provider, request.url.path, request_id, raw, body))
        return body

    @app.post("/{provider}/v1/messages", response_model=None)
    async def messages(provider: str, request: Request) -> JSONResponse | dict[str, Any]:
        body = await received(provider, request)
        model = str(body.get("model", ""))
        turns = body.get("messages", [])
        system = _text_of(body.get("system", ""))
        prompt = system + "".join(_text_of(m.get("content")) for m in turns)
        last_user = next(
            (_text_of(m.get("content")) for m in reversed(turns) if m.get("role") == "user"), ""
        )
        text, tokens_in, tokens_out, truncated = _answer(
            provider, model, prompt, last_user, int(body.get("max_tokens", 1024)),
            fake.control(provider).reply,
        )
        request_id = request.headers.get(REQUEST_ID_HEADER)
        roles = {m.get("role") for m in turns}
        if not roles <= {"user", "assistant"}:
            # As the real Messages API does: system text belongs in the ``system`` parameter.
            fake.record(Call(provider, model, request_id, 400))
            return _error(True, 400, f"messages: unexpected roles {sorted(map(str, roles))}")
        failed = await failure_or_none(provider, True, tokens_in)
        fake.record(Call(provider, model, request_id, failed.status_code if failed else 200))
        if failed is not None:
            return failed
        digest = hashlib.sha256(f"{provider}|{model}|{prompt}".encode()).hexdigest()[:24]
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        stop = "max_tokens" if truncated else "end_turn"
        scripted = fake.scripted(prompt, turns) if body.get("tools") else None
        if scripted is not None:
            index, step = scripted
            content = [{"type": "text", "text": step.text}] if step.text else []
            content += [{"type": "tool_use", "id": f"toolu_{digest[:12]}_{index}_{j}",
                         "name": c.name, "input": c.arguments}
                        for j, c in enumerate(step.tool_calls)]
            stop = "tool_use" if step.tool_calls else "end_turn"
        return {
            "id": f"msg_fake_{digest}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    @app.post("/{provider}/v1/chat/completions", response_model=None)
    async def chat(provider: str, request: Request) -> JSONResponse | dict[str, Any]:
        body = await received(provider, request)
        model = str(body.get("model", ""))
        turns = body.get("messages", [])
        prompt = "".join(_text_of(m.get("content")) for m in turns if isinstance(m, dict))
        last_user = next(
            (_text_of(m.get("content")) for m in reversed(turns) if m.get("role") == "user"), ""
        )
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
        text, tokens_in, tokens_out, truncated = _answer(
            provider, model, prompt, last_user, int(limit), fake.control(provider).reply
        )
        request_id = request.headers.get(REQUEST_ID_HEADER)
        failed = await failure_or_none(provider, False, tokens_in)
        fake.record(Call(provider, model, request_id, failed.status_code if failed else 200))
        if failed is not None:
            return failed
        digest = hashlib.sha256(f"{provider}|{model}|{prompt}".encode()).hexdigest()[:24]
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "length" if truncated else "stop"
        scripted = fake.scripted(prompt, turns) if body.get("tools") else None
        if scripted is not None:
            index, step = scripted
            message = {"role": "assistant", "content": step.text, "refusal": None}
            if step.tool_calls:
                message["tool_calls"] = [
                    {"id": f"call_{digest[:12]}_{index}_{j}", "type": "function",
                     "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for j, c in enumerate(step.tool_calls)]
                finish = "tool_calls"
        return {
            "id": f"chatcmpl-fake-{digest}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }

    @app.get("/{provider}/v1/models", response_model=None)
    async def models(provider: str, request: Request) -> JSONResponse | dict[str, Any]:
        anthropic_style = "anthropic-version" in request.headers
        with fake.lock:
            fake.probes[provider] += 1
        failed = await failure_or_none(provider, anthropic_style, 0)
        if failed is not None:
            return failed
        ids = [m.id for m in known.provider(provider).models] if provider in known else []
        if anthropic_style:
            data = [
                {
                    "id": i,
                    "type": "model",
                    "display_name": i,
                    "created_at": "2025-09-29T00:00:00Z",
                    "lifecycle": "active",
                }
                for i in ids
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        return {
            "object": "list",
            "data": [
                {"id": i, "object": "model", "created": CREATED, "owned_by": provider} for i in ids
            ],
        }

    return app


def _config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", ws="none", access_log=False
    )


def _listening_socket() -> socket.socket:
    """A TCP socket to listen on, created with its protocol named (``IPPROTO_TCP``).

    asyncio sets ``TCP_NODELAY`` on an accepted connection only when the listening socket's
    ``proto`` says TCP, and ``socket.socket(AF_INET, SOCK_STREAM)`` leaves it 0. Without
    NODELAY every answer after a connection's first waits for the client's delayed ACK (Nagle):
    some 40 ms a call on a kept-alive connection, which was most of what a call to this server
    cost.
    """
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)


def serve(host: str = "127.0.0.1", port: int = 8300, announce: Callable[[], None] = lambda: None,
          ) -> None:
    """Run the fake server in the foreground until interrupted (the ``nova fake-llm`` command).

    The port is bound before anything is served, so one in use is an ``OSError`` the command
    turns into its one line, not uvicorn's log and exit 3.
    """
    sock = _listening_socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    announce()
    uvicorn.Server(_config(create_app(), host, port)).run(sockets=[sock])


class FakeServerThread:
    """The fake server on a background thread, on a free port chosen by the OS (tests)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, registry: Registry | None = None
    ) -> None:
        self.state = FakeState()
        self.app = create_app(registry, self.state)
        self._socket = _listening_socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(_config(self.app, self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="nova-fake-llm",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        """False once the server's thread has ended (stopped, or crashed)."""
        return self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> FakeServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> FakeServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nova.llm.fake_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
