"""Cost maths: prices per million tokens, cached input at its own price, nano-dollar rounding."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nova.llm.cost import cost_usd, estimate_messages_tokens, estimate_tokens
from nova.llm.registry import ModelSpec

SONNET = ModelSpec(id="s", context_window=200_000, input=3.0, output=15.0, cached_input=0.30)
NO_CACHE_PRICE = ModelSpec(id="m", context_window=128_000, input=2.0, output=6.0)
FREE = ModelSpec(id="local", context_window=32_768, input=0.0, output=0.0)


def test_input_and_output_are_priced_per_million():
    assert cost_usd(SONNET, input_tokens=1_000_000, output_tokens=0) == 3.0
    assert cost_usd(SONNET, input_tokens=0, output_tokens=1_000_000) == 15.0
    assert cost_usd(SONNET, input_tokens=1000, output_tokens=500) == pytest.approx(
        0.0105, abs=1e-12
    )


def test_cached_tokens_are_part_of_input_and_billed_at_the_cached_price():
    # 1000 input of which 800 cached: 200 * 3 + 800 * 0.30 = 840 per million.
    assert cost_usd(SONNET, input_tokens=1000, output_tokens=0, cached_input_tokens=800) == 0.00084


def test_without_a_cached_price_cached_tokens_cost_full_input_price():
    plain = cost_usd(NO_CACHE_PRICE, input_tokens=1000, output_tokens=10)
    cached = cost_usd(NO_CACHE_PRICE, input_tokens=1000, output_tokens=10, cached_input_tokens=900)
    assert plain == cached == 0.002060


def test_results_are_rounded_to_a_nano_dollar():
    one_token = cost_usd(
        ModelSpec(id="x", context_window=1, input=0.15, output=0.6), input_tokens=1, output_tokens=1
    )
    assert one_token == 0.00000075
    assert (
        cost_usd(
            ModelSpec(id="y", context_window=1, input=0.0001, output=0),
            input_tokens=1,
            output_tokens=0,
        )
        == 0.0
    )


def test_local_models_cost_nothing():
    assert cost_usd(FREE, input_tokens=10**6, output_tokens=10**6) == 0.0


def test_negative_token_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        cost_usd(SONNET, input_tokens=-1, output_tokens=0)


@given(
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.integers(0, 10**7),
)
def test_cost_never_negative_and_caching_never_costs_more(input_tokens, output_tokens, cached):
    full = cost_usd(SONNET, input_tokens=input_tokens, output_tokens=output_tokens)
    with_cache = cost_usd(
        SONNET, input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached
    )
    assert 0 <= with_cache <= full


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)]
)
def test_token_estimate_is_characters_over_four_rounded_up(text, tokens):
    assert estimate_tokens(text) == tokens


def test_message_estimate_adds_a_small_overhead_per_message():
    messages = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 8}]
    assert estimate_messages_tokens(messages) == (10 + 4) + (2 + 4)
