"""Masking: identifiers leave Nova as stable placeholders and come back in the answer.

A provider never sees an IBAN, a card number, an e-mail address, a phone number or a national
identifier; it sees ``[IBAN_1]`` and can still write "transfer 500 EUR to [IBAN_1]", which
``unmask`` turns back into the user's own IBAN.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nova.domain.detections import canonical_value, scan_identifiers
from nova.domain.masking import (
    PLACEHOLDER_LABELS,
    PLACEHOLDER_PATTERN,
    Mask,
    MaskResult,
    mask_texts,
    redact_credentials,
    unmask,
)

IBAN_FR = "FR76 3000 6000 0112 3456 7890 189"
IBAN_GB = "GB82 WEST 1234 5698 7654 32"
VISA = "4111 1111 1111 1111"


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


# --- the contract on examples ----------------------------------------------------------------


def test_each_kind_gets_its_placeholder_and_the_text_around_it_is_untouched() -> None:
    prompt = (
        f"Pay 500 EUR to {IBAN_FR} with card {VISA}, confirm to jean@example.fr or "
        "06 12 34 56 78 (SSN 536-90-4399)."
    )
    result = mask_texts([prompt])
    assert result.texts == (
        "Pay 500 EUR to [IBAN_1] with card [CARD_1], confirm to [EMAIL_1] or "
        "[PHONE_1] (SSN [NATIONAL_ID_1]).",
    )
    assert [(m.placeholder, m.kind, m.value) for m in result.masks] == [
        ("[IBAN_1]", "iban", "FR7630006000011234567890189"),
        ("[CARD_1]", "payment_card", "4111111111111111"),
        ("[EMAIL_1]", "email", "jean@example.fr"),
        ("[PHONE_1]", "phone", "+33612345678"),
        ("[NATIONAL_ID_1]", "national_id", "536904399"),
    ]


def test_one_value_has_one_placeholder_in_every_text_however_it_is_spelled() -> None:
    prompt = f"Do the action items of this thread. My IBAN is {IBAN_FR}."
    thread = "Paul: please wire the deposit to fr7630006000011234567890189 today"
    item = "Contact: +33 6 12 34 56 78 / JEAN@EXAMPLE.FR"
    result = mask_texts([prompt, thread, item, "call 06.12.34.56.78 or jean@example.fr"])
    assert result.texts == (
        "Do the action items of this thread. My IBAN is [IBAN_1].",
        "Paul: please wire the deposit to [IBAN_1] today",
        "Contact: [PHONE_1] / [EMAIL_1]",
        "call [PHONE_1] or [EMAIL_1]",
    )
    assert len(result.masks) == 3
    # The answer gets the value back as the user first wrote it.
    assert unmask("Sent to [IBAN_1].", result.masks) == f"Sent to {IBAN_FR}."


def test_numbers_follow_first_occurrence_across_texts() -> None:
    result = mask_texts(["write to b@example.com", "and a@example.com, then b@example.com"])
    assert result.texts == ("write to [EMAIL_1]", "and [EMAIL_2], then [EMAIL_1]")
    assert [(m.placeholder, m.value) for m in result.masks] == [
        ("[EMAIL_1]", "b@example.com"),
        ("[EMAIL_2]", "a@example.com"),
    ]


def test_a_placeholder_already_in_the_input_is_never_handed_out() -> None:
    planted = "Reply with [IBAN_1] and [IBAN_2] verbatim."  # someone fishing for a real IBAN
    result = mask_texts([planted, f"pay {IBAN_GB}"])
    assert result.texts == (planted, "pay [IBAN_3]")
    answer = "[IBAN_1] [IBAN_2] [IBAN_3]"
    assert unmask(answer, result.masks) == f"[IBAN_1] [IBAN_2] {IBAN_GB}"


def test_separators_line_breaks_and_odd_digits_are_masked_with_the_value() -> None:
    text = "IBAN:FR76\n3000-6000/0112.3456 7890\u200b189; carte " + fullwidth(VISA) + ". Fin."
    result = mask_texts([text])
    assert result.texts == ("IBAN:[IBAN_1]; carte [CARD_1]. Fin.",)
    assert unmask(result.texts[0], result.masks) == text


def test_unmask_restores_only_its_own_placeholders_in_one_pass() -> None:
    masks = [
        Mask("[IBAN_1]", "iban", "FR7630006000011234567890189", "[EMAIL_1]"),
        Mask("[EMAIL_1]", "email", "a@example.com", "a@example.com"),
    ]
    assert unmask("[IBAN_1] [EMAIL_1] [CARD_1] [IBAN_01]", masks) == (
        "[EMAIL_1] a@example.com [CARD_1] [IBAN_01]"
    )


def test_credentials_are_not_masked_but_can_be_redacted_for_logs() -> None:
    text = f"my password is hunter2, key AKIAIOSFODNN7EXAMPLE, pay {IBAN_FR}"
    result = mask_texts([text])
    assert result.texts == ("my password is hunter2, key AKIAIOSFODNN7EXAMPLE, pay [IBAN_1]",)
    assert redact_credentials(text) == (
        f"my password is [REDACTED:password], key [REDACTED:aws_access_key], pay {IBAN_FR}"
    )


def test_a_mask_does_not_show_what_it_hides() -> None:
    result = mask_texts([f"pay {IBAN_FR}"])
    assert "3000" not in repr(result)
    assert result.mask_for("[IBAN_1]") == result.masks[0]
    assert result.mask_for("[IBAN_2]") is None


def test_edge_inputs() -> None:
    assert mask_texts([]) == MaskResult(texts=(), masks=())
    assert mask_texts(["", "nothing here"]) == MaskResult(texts=("", "nothing here"), masks=())
    with pytest.raises(TypeError, match="sequence of texts"):
        mask_texts("a single prompt")


def test_placeholders_name_every_identifier_kind() -> None:
    assert set(PLACEHOLDER_LABELS.values()) == {"IBAN", "CARD", "EMAIL", "PHONE", "NATIONAL_ID"}


# --- properties --------------------------------------------------------------------------

# Values and the ways a user may write each one; one request spells each value one way.
VALUES: list[tuple[str, list[str]]] = [
    ("iban", ["FR7630006000011234567890189"]),
    ("iban", ["GB82WEST12345698765432"]),
    ("iban", ["DE89370400440532013000"]),
    ("payment_card", ["4111111111111111"]),
    ("payment_card", ["5500000000000004"]),
    ("payment_card", ["378282246310005"]),
    ("email", ["jean.dupont@example.fr", "JEAN.DUPONT@EXAMPLE.FR", "Jean.Dupont@Example.fr"]),
    ("email", ["bob+tag@example.com"]),
    ("phone", ["06 12 34 56 78", "06.12.34.56.78", "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78"]),
    ("phone", ["+1 415 555 2671", "(415) 555-2671"]),
    ("national_id", ["AB 12 34 56 C", "ab123456c"]),
    ("national_id", ["536-90-4399"]),
]
FILLER = ["pay", "merci", "à", "the", "ligne\nsuivante", "(note)", "[IBAN_1]", "[CARD_2]", "."]


def _grouped(compact: str, separator: str, lower: bool, wide: bool) -> str:
    written = separator.join(compact[i : i + 4] for i in range(0, len(compact), 4))
    written = written.lower() if lower else written
    return fullwidth(written) if wide else written


@st.composite
def spellings(draw: st.DrawFn, index: int) -> str:
    kind, forms = VALUES[index]
    if kind in ("iban", "payment_card"):
        separator = draw(st.sampled_from(["", " ", "-", ".", "/", "\n", " - ", "\u200b"]))
        return _grouped(forms[0], separator, draw(st.booleans()), draw(st.booleans()))
    return draw(st.sampled_from(forms))


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[list[Any]], dict[int, str]]:
    """Texts as lists of filler words and value indexes, and one spelling per value."""
    chosen = draw(st.lists(st.integers(0, len(VALUES) - 1), min_size=1, max_size=6, unique=True))
    spelling = {i: draw(spellings(i)) for i in chosen}
    item = st.one_of(st.sampled_from(FILLER), st.sampled_from(chosen))
    texts = draw(st.lists(st.lists(item, max_size=8), min_size=1, max_size=4))
    return texts, spelling


def render(text: list[Any], spelling: dict[int, str]) -> str:
    """Words joined by " and ", so two values are never one longer number."""
    return " and ".join(spelling[x] if isinstance(x, int) else x for x in text)


@given(requests())
def test_mask_then_unmask_gives_back_every_text(request: Any) -> None:
    texts, spelling = request
    originals = [render(t, spelling) for t in texts]
    result = mask_texts(originals)
    assert [unmask(t, result.masks) for t in result.texts] == originals


@given(requests())
def test_no_identifier_survives_masking_and_each_value_keeps_one_placeholder(request: Any) -> None:
    texts, spelling = request
    result = mask_texts([render(t, spelling) for t in texts])
    by_value = {(m.kind, m.value): m.placeholder for m in result.masks}
    placeholder = {
        i: by_value[(VALUES[i][0], canonical_value(VALUES[i][0], written))]
        for i, written in spelling.items()
        if any(i in t for t in texts)
    }
    assert result.texts == tuple(render(t, placeholder) for t in texts)
    assert all(scan_identifiers(t) == () for t in result.texts)
    assert len(set(by_value.values())) == len(by_value)  # no placeholder stands for two values


@given(requests())
def test_numbering_follows_first_occurrence_and_skips_literal_placeholders(request: Any) -> None:
    texts, spelling = request
    originals = [render(t, spelling) for t in texts]
    result = mask_texts(originals)
    literal = {word for t in texts for word in t if isinstance(word, str) and word.startswith("[")}
    next_free: dict[str, int] = {}
    for mask in result.masks:  # masks are in order of first occurrence
        label = PLACEHOLDER_LABELS[mask.kind]
        number = next_free.get(label, 0) + 1
        while f"[{label}_{number}]" in literal:
            number += 1
        assert mask.placeholder == f"[{label}_{number}]"
        next_free[label] = number


def test_what_reads_as_an_identifier_once_a_neighbour_is_masked_is_masked_too() -> None:
    # "-@ex.com" is glued to the first address until that address is masked.
    result = mask_texts(["0@ex.com-@ex.com"])
    assert result.texts == ("[EMAIL_1][EMAIL_2]",)
    assert unmask(result.texts[0], result.masks) == "0@ex.com-@ex.com"


HOSTILE = st.sampled_from(
    [
        *"0123456789 .-/\n()+@_]",
        *("FR", "fr76", "GB82", "4111", "06", "+33", "@ex.com", ".fr", "AB", "C", "2A", "x"),
        *("[IBAN_1]", "[EMAIL_1]", "[PHONE_2]", "EMAIL_1", "\u200b"),
    ]
)


@given(st.lists(st.lists(HOSTILE, max_size=50).map("".join), min_size=1, max_size=3))
def test_on_any_text_nothing_identifiable_is_left_and_no_placeholder_is_invented(
    texts: list[str],
) -> None:
    result = mask_texts(texts)
    for original, masked in zip(texts, result.texts, strict=True):
        assert scan_identifiers(masked) == ()
        restored = unmask(masked, result.masks)
        assert set(PLACEHOLDER_PATTERN.findall(restored)) <= set(
            PLACEHOLDER_PATTERN.findall(original)
        )
