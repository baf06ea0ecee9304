"""Provider clients through the official SDKs, behind one provider-neutral ``complete``.

Two API styles cover all eighteen providers: Anthropic's Messages API and OpenAI-compatible
Chat Completions. Both SDKs are built with ``max_retries=0`` because retrying and falling back
are the router's decisions (``retry``, ``executor``), not the SDK's; every SDK exception is
mapped to :class:`~nova.errors.ProviderError` with the status, retriability and Retry-After the
policy needs. Clients are built once per provider by a :class:`ClientPool` that the process
creates in one place and closes with :meth:`ClientPool.aclose`; base URLs come from the
registry, so tests point them at the fake server. The pool's clients share one TLS context:
each SDK client otherwise loads the CA bundle into its own (~35 ms of CPU apiece), and a
worker that met its eighteen providers on its first probe round stalled its event loop for
0.6 s in the middle of serving (issue 9's steady-load p99). A worker builds them all before it
serves (:meth:`ClientPool.warm`).

The SDKs run on aiohttp (``DefaultAioHttpClient``, each SDK's own supported transport, installed
with its ``aiohttp`` extra) rather than on their default httpx pool: under load, the httpx pool
asked every pooled connection whether it had expired on each request it started and finished,
through anyio's typed attributes, 5.5% of the worker's CPU in ``make bench``'s burst; on aiohttp
the worker's CPU per request fell from 7.1 to 6.2 ms (bench/pipeline.py). What the aiohttp
transport does not do: anthropic's TCP keep-alive socket options, and a check that a pooled
connection is still open before it is reused; a connection the provider dropped fails that
call as retriable (``connection failed``), which the router retries or falls back from.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import aiohttp
import anthropic
import httpx
import openai
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from nova.errors import ProviderError
from nova.llm.registry import ProviderSpec, Registry, fake_registry
from nova.llm.retry import ContextWindowError, parse_retry_after
from nova.llm.tools import (
    Conversation,
    ToolCall,
    anthropic_calls,
    anthropic_tools,
    anthropic_turns,
    openai_calls,
    openai_tools,
    openai_turns,
)
from nova.settings import Settings

REQUEST_ID_HEADER = "x-nova-request-id"
NO_KEY_NEEDED = (
    "not-needed"  # local servers (ollama, lmstudio) ignore the key but the SDK wants one
)
FAKE_KEY = "nova-fake-key"
_CONTEXT_MARKERS = (
    "context length",
    "context_length",
    "context window",
    "prompt is too long",
    "maximum context",
    "too many tokens",
)

Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class Completion:
    """One successful call: the text and what it used. ``tokens_in`` includes cached tokens."""

    text: str
    tokens_in: int
    tokens_out: int
    cached_tokens: int
    latency_ms: float
    provider: str
    model: str
    tool_calls: tuple[ToolCall, ...] = ()  # the tools the model asks Nova to call (agents)
    stop_reason: str | None = None  # why the model stopped, as its provider says it


class ProviderClient(Protocol):
    provider: str

    async def complete(
        self, model: str, messages: Sequence[Message], max_tokens: int, request_id: str
    ) -> Completion: ...

    async def converse(
        self, model: str, conversation: Conversation, max_tokens: int, request_id: str
    ) -> Completion: ...

    async def probe(self) -> None: ...

    async def aclose(self) -> None: ...


def _is_context_overflow(status: int, message: str) -> bool:
    text = message.lower()
    return status in (400, 413) and any(marker in text for marker in _CONTEXT_MARKERS)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _refused_not_timed_out(exc: BaseException) -> BaseException | None:
    """The aiohttp error under an SDK "timeout" that is no timeout, if there is one.

    openai's aiohttp transport maps every ``aiohttp.ClientConnectionError`` (a refused
    connection, a DNS or TLS failure, a dropped keep-alive connection) to httpx's
    ``ConnectTimeout``, so the SDK raises ``APITimeoutError`` for a provider that is down;
    anthropic's transport tells them apart. aiohttp's own timeouts are ``TimeoutError``s."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientError) and not isinstance(seen, TimeoutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def map_sdk_error(provider: str, exc: Exception, timeout_s: float) -> ProviderError:
    """Translate an anthropic/openai SDK exception into Nova's error (the two SDKs mirror)."""
    if isinstance(exc, anthropic.APITimeoutError | openai.APITimeoutError):
        refused = _refused_not_timed_out(exc)
        if refused is not None:
            return ProviderError(f"{provider}: connection failed: {type(refused).__name__}: "
                                 f"{refused}", provider=provider)
        return ProviderError(f"{provider}: timed out after {timeout_s:g}s", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        return ProviderError(f"{provider}: connection failed: {exc}", provider=provider)
    if isinstance(exc, anthropic.APIStatusError | openai.APIStatusError):
        status = exc.status_code
        message = f"{provider}: HTTP {status}: {exc.message}"
        if _is_context_overflow(status, exc.message):
            return ContextWindowError(message, provider=provider, status=status)
        return ProviderError(
            message,
            provider=provider,
            status=status,
            retriable=status in (408, 429) or status >= 500,
            retry_after_s=_retry_after(exc.response.headers),
        )
    return ProviderError(
        f"{provider}: {type(exc).__name__}: {exc}", provider=provider, retriable=False
    )


def split_system(messages: Sequence[Message]) -> tuple[str, list[MessageParam]]:
    """Anthropic takes system text as a parameter, not as a message: move it there."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[MessageParam] = []
    for m in messages:
        role = m["role"]
        if role == "user":
            turns.append({"role": "user", "content": m["content"]})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": m["content"]})
        elif role != "system":
            raise ValueError(f"unknown message role {role!r}")
    return system, turns


def to_openai(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            out.append({"role": "system", "content": content})
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            out.append({"role": "assistant", "content": content})
        else:
            raise ValueError(f"unknown message role {role!r}")
    return out


class AnthropicClient:
    """The Messages API through ``anthropic.AsyncAnthropic``."""

    def __init__(self, spec: ProviderSpec, api_key: str, timeout_s: float,
                 tls: ssl.SSLContext) -> None:
        self.provider = spec.name
        self._timeout_s = timeout_s
        self._sdk = anthropic.AsyncAnthropic(
            base_url=spec.base_url, api_key=api_key, max_retries=0, timeout=timeout_s,
            http_client=anthropic.DefaultAioHttpClient(verify=tls),
        )

    async def complete(
        self, model: str, messages: Sequence[Message], max_tokens: int, request_id: str
    ) -> Completion:
        system, turns = split_system(messages)
        return await self._create(model, system, turns, max_tokens, request_id, None)

    async def converse(
        self, model: str, conversation: Conversation, max_tokens: int, request_id: str
    ) -> Completion:
        """One step of an agent's run: the conversation with its tools (``tool_use``)."""
        return await self._create(model, conversation.system,
                                  anthropic_turns(conversation.turns), max_tokens, request_id,
                                  anthropic_tools(conversation.tools))

    async def _create(
        self, model: str, system: str, turns: list[MessageParam], max_tokens: int,
        request_id: str, tools: list[ToolParam] | None,
    ) -> Completion:
        started = time.perf_counter()
        try:
            reply = await self._sdk.messages.create(
                model=model,
                max_tokens=max_tokens,
                messages=turns,
                system=system if system else anthropic.omit,
                tools=tools if tools else anthropic.omit,
                extra_headers={REQUEST_ID_HEADER: request_id},
            )
        except anthropic.AnthropicError as exc:
            raise map_sdk_error(self.provider, exc, self._timeout_s) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        usage = reply.usage
        cached = usage.cache_read_input_tokens or 0
        created = usage.cache_creation_input_tokens or 0
        return Completion(
            text="".join(block.text for block in reply.content if block.type == "text"),
            tokens_in=usage.input_tokens + cached + created,
            tokens_out=usage.output_tokens,
            cached_tokens=cached,
            latency_ms=latency_ms,
            provider=self.provider,
            model=model,
            tool_calls=anthropic_calls(reply.content),
            stop_reason=reply.stop_reason,
        )

    async def probe(self) -> None:
        try:
            await self._sdk.models.list(limit=1)
        except anthropic.AnthropicError as exc:
            raise map_sdk_error(self.provider, exc, self._timeout_s) from exc

    async def aclose(self) -> None:
        await self._sdk.close()


class OpenAICompatibleClient:
    """Chat Completions through ``openai.AsyncOpenAI`` pointed at the provider's base URL."""

    def __init__(self, spec: ProviderSpec, api_key: str, timeout_s: float,
                 tls: ssl.SSLContext) -> None:
        self.provider = spec.name
        self._timeout_s = timeout_s
        self._max_tokens_param = spec.max_tokens_param
        self._sdk = openai.AsyncOpenAI(
            base_url=spec.base_url, api_key=api_key, max_retries=0, timeout=timeout_s,
            http_client=openai.DefaultAioHttpClient(verify=tls),
        )

    async def complete(
        self, model: str, messages: Sequence[Message], max_tokens: int, request_id: str
    ) -> Completion:
        return await self._create(model, to_openai(messages), max_tokens, request_id, None)

    async def converse(
        self, model: str, conversation: Conversation, max_tokens: int, request_id: str
    ) -> Completion:
        """One step of an agent's run: the conversation with its tools (function calling)."""
        return await self._create(
            model, openai_turns(conversation.system, conversation.turns), max_tokens,
            request_id, openai_tools(conversation.tools))

    async def _create(
        self, model: str, turns: list[ChatCompletionMessageParam], max_tokens: int,
        request_id: str, tools: list[ChatCompletionToolParam] | None,
    ) -> Completion:
        headers = {REQUEST_ID_HEADER: request_id}
        create = self._sdk.chat.completions.create
        offered = tools if tools else openai.omit
        started = time.perf_counter()
        try:
            if self._max_tokens_param == "max_completion_tokens":
                reply = await create(
                    model=model,
                    messages=turns,
                    max_completion_tokens=max_tokens,
                    tools=offered,
                    extra_headers=headers,
                )
            else:
                reply = await create(
                    model=model, messages=turns, max_tokens=max_tokens, tools=offered,
                    extra_headers=headers,
                )
        except openai.OpenAIError as exc:
            raise map_sdk_error(self.provider, exc, self._timeout_s) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        usage = reply.usage
        details = usage.prompt_tokens_details if usage else None
        return Completion(
            text=(reply.choices[0].message.content or "") if reply.choices else "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            cached_tokens=(details.cached_tokens or 0) if details else 0,
            latency_ms=latency_ms,
            provider=self.provider,
            model=model,
            tool_calls=openai_calls(reply.choices[0].message.tool_calls)
            if reply.choices else (),
            stop_reason=reply.choices[0].finish_reason if reply.choices else None,
        )

    async def probe(self) -> None:
        try:
            await self._sdk.models.list()
        except openai.OpenAIError as exc:
            raise map_sdk_error(self.provider, exc, self._timeout_s) from exc

    async def aclose(self) -> None:
        await self._sdk.close()


class UnconfiguredClient:
    """Stands in for a provider whose key is not set: fails fast so the router falls back."""

    def __init__(self, spec: ProviderSpec) -> None:
        self.provider = spec.name
        self._message = f"{spec.name}: no API key; set {spec.api_key_env}"

    async def complete(
        self, model: str, messages: Sequence[Message], max_tokens: int, request_id: str
    ) -> Completion:
        raise ProviderError(self._message, provider=self.provider, retriable=False)

    async def converse(
        self, model: str, conversation: Conversation, max_tokens: int, request_id: str
    ) -> Completion:
        raise ProviderError(self._message, provider=self.provider, retriable=False)

    async def probe(self) -> None:
        raise ProviderError(self._message, provider=self.provider, retriable=False)

    async def aclose(self) -> None:
        return None


class ClientPool:
    """One client per provider, built on first use and reused; close it once with ``aclose``."""

    def __init__(
        self,
        registry: Registry,
        *,
        timeout_s: float,
        env: Mapping[str, str],
        key_override: str | None = None,
    ) -> None:
        self.registry = registry
        self._timeout_s = timeout_s
        self._env = dict(env)
        self._key_override = key_override
        self._clients: dict[str, ProviderClient] = {}
        self._closed = False

    @classmethod
    def fake(
        cls, fake_url: str, *, registry: Registry | None = None, timeout_s: float = 10.0
    ) -> ClientPool:
        """A pool whose providers all live on the fake server at ``fake_url``."""
        return cls(
            fake_registry(fake_url, registry), timeout_s=timeout_s, env={}, key_override=FAKE_KEY
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str], registry: Registry | None = None
    ) -> ClientPool:
        """The pool a process builds at start-up: the fake server when ``llm_fake_url`` is set."""
        if settings.llm_fake_url:
            return cls.fake(
                settings.llm_fake_url, registry=registry, timeout_s=settings.llm_timeout_s
            )
        from nova.llm.registry import deployment_registry

        return cls(registry or deployment_registry(settings, env),
                   timeout_s=settings.llm_timeout_s, env=env)

    def _api_key(self, spec: ProviderSpec) -> str | None:
        if self._key_override is not None:
            return self._key_override
        if spec.api_key_env is None:
            return NO_KEY_NEEDED
        return self._env.get(spec.api_key_env) or None

    def client(self, provider: str) -> ProviderClient:
        if self._closed:
            raise ProviderError("the client pool is closed", provider=provider, retriable=False)
        existing = self._clients.get(provider)
        if existing is not None:
            return existing
        spec = self.registry.provider(provider)
        key = self._api_key(spec)
        built: ProviderClient
        if key is None:
            built = UnconfiguredClient(spec)
        elif spec.api == "anthropic":
            built = AnthropicClient(spec, key, self._timeout_s, self._tls)
        else:
            built = OpenAICompatibleClient(spec, key, self._timeout_s, self._tls)
        self._clients[provider] = built
        return built

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        """The TLS context every client of the pool shares, as httpx builds its default one
        (certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set)."""
        return httpx.create_ssl_context()

    def warm(self) -> None:
        """Build every provider's client now, so none is built while requests wait."""
        for provider in self.registry.names:
            self.client(provider)

    async def complete(
        self,
        provider: str,
        model: str,
        messages: Sequence[Message],
        max_tokens: int,
        request_id: str,
    ) -> Completion:
        """Call ``provider``'s ``model`` once (no retries); raises :class:`ProviderError`."""
        return await self.client(provider).complete(model, messages, max_tokens, request_id)

    async def converse(
        self,
        provider: str,
        model: str,
        conversation: Conversation,
        max_tokens: int,
        request_id: str,
    ) -> Completion:
        """One step of an agent's run on ``provider``'s ``model`` (no retries)."""
        return await self.client(provider).converse(model, conversation, max_tokens, request_id)

    async def aclose(self) -> None:
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
