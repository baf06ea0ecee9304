"""Cost of one LLM call, from its token usage and the model's registry prices.

Budgets are checked before a call with an estimate and charged after it with the actual
usage; both go through :func:`cost_usd` so the two can never disagree about prices. Results are
rounded to 1e-9 USD (a nano-dollar), fine enough for the cheapest models and stable enough to
compare and sum without float noise leaking into reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nova.llm.registry import ModelSpec

PER_MILLION = 1_000_000
USD_PRECISION = 9
CHARS_PER_TOKEN = 4


def cost_usd(
    model: ModelSpec, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float:
    """USD for one call. ``input_tokens`` includes ``cached_input_tokens``.

    Cached tokens are billed at the cached-input price where the model has one, otherwise at the
    normal input price (the provider gives no discount).
    """
    if min(input_tokens, output_tokens, cached_input_tokens) < 0:
        raise ValueError("token counts cannot be negative")
    cached = min(cached_input_tokens, input_tokens)
    cached_price = model.input if model.cached_input is None else model.cached_input
    total = (
        (input_tokens - cached) * model.input + cached * cached_price + output_tokens * model.output
    ) / PER_MILLION
    return round(total, USD_PRECISION)


def estimate_tokens(text: str) -> int:
    """Rough token count: one token per four characters, rounded up.

    The chars/4 rule is the usual average for English text with BPE tokenisers (OpenAI's and
    Anthropic's alike). It is only used before the call, for routing by context window, rate
    limiting and budget checks; the provider's own usage figures replace it afterwards.
    """
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_messages_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """Token estimate of a provider-neutral message list, with a small per-message overhead."""
    return sum(estimate_tokens(m.get("content", "")) + 4 for m in messages)
