"""Lane A specification: deterministic intent rules in English and French."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nova.domain.intent import (
    ACTION_RISK_ORDER,
    CHECKPOINT_ACTIONS,
    action_rank,
    classify,
    parse_action,
    requires_checkpoint,
)


@pytest.mark.parametrize(
    ("prompt", "action", "task"),
    [
        # English
        ("What is the capital of Portugal?", "READ", "general"),
        ("Delete all my notes from last week", "DELETE", "general"),
        ("Please remove the draft from my dataspace", "DELETE", "general"),
        ("Erase the old folder, then pay the invoice", "PAYMENT", "general"),  # riskiest wins
        ("Send this summary to the team", "SEND", "analysis"),
        ("Email it to alice tomorrow", "SEND", "general"),
        ("Post to the company channel", "SEND", "general"),
        ("Transfer 200 EUR to my savings account", "TRANSFER", "general"),
        ("Move funds from checking to savings", "TRANSFER", "general"),
        ("Pay the electricity bill", "PAYMENT", "general"),
        ("Buy 10 shares of AAPL", "PAYMENT", "general"),
        ("Order 5 laptops from Dell", "PAYMENT", "general"),
        ("Achète 3 billets de train pour Lyon", "PAYMENT", "general"),
        ("Forward this to bob@example.com", "SEND", "general"),
        ("Reply all with the minutes", "SEND", "general"),
        ("Create an invoice for ACME", "PAYMENT", "general"),
        ("Write a python function that parses dates", "WRITE", "code"),
        ("Update my profile description", "WRITE", "general"),
        ("Fix this bug: stack trace below", "READ", "code"),
        ("Translate this paragraph into Spanish", "READ", "translation"),
        ("Search my notes for the word kafka", "READ", "search"),
        ("Look up the opening hours", "READ", "search"),
        ("Summarise this report and compare it with Q2", "READ", "analysis"),
        ("A poem about the sea", "READ", "creative"),
        ("Write a slogan for our bakery", "WRITE", "creative"),
        # French (with and without accents)
        ("Supprime tous mes brouillons", "DELETE", "general"),
        ("Efface la conversation d'hier", "DELETE", "general"),
        ("Envoie ce résumé à Paul", "SEND", "analysis"),
        ("Fais un virement de 50 euros à Marie", "TRANSFER", "general"),
        ("Payer la facture EDF", "PAYMENT", "general"),
        ("Modifier le titre du document", "WRITE", "general"),
        ("Écris une histoire pour enfants", "WRITE", "creative"),
        ("Traduire ce texte en anglais", "READ", "translation"),
        ("Rechercher les notes sur le projet", "READ", "search"),
        ("Résumer cet article", "READ", "analysis"),
        ("resumer cet article", "READ", "analysis"),
        ("Corrige ce bug dans ma fonction python", "READ", "code"),
    ],
)
def test_classification_table(prompt: str, action: str, task: str) -> None:
    intent = classify(prompt, None, None)
    assert (intent.action, intent.task_type) == (action, task)
    assert 0.0 <= intent.confidence <= 1.0
    assert intent.reasons


@pytest.mark.parametrize(
    "prompt",
    [
        "Explain transfer learning in simple terms",
        "Pay attention to the tone of this paragraph",
        "Summarise the email from my landlord",
    ],
)
def test_near_misses_stay_read(prompt: str) -> None:
    assert classify(prompt, None, None).action == "READ"


@pytest.mark.parametrize(
    ("prompt", "declared", "expected"),
    [
        ("What is the weather?", "PAYMENT", "PAYMENT"),  # raising is honoured
        ("What is the weather?", "send", "SEND"),  # case-insensitive
        ("Delete my files", "READ", "DELETE"),  # lowering is ignored
        ("Transfer 10 EUR to Bob", "WRITE", "TRANSFER"),
        ("Transfer 10 EUR to Bob", "TRANSFER", "TRANSFER"),
        ("Delete my files", "LAUNCH_MISSILES", "DELETE"),  # unknown: ignored
    ],
)
def test_declared_action_only_raises(prompt: str, declared: str, expected: str) -> None:
    intent = classify(prompt, declared, None)
    assert intent.action == expected
    assert any("declared action" in r for r in intent.reasons)


def test_unknown_declared_action_is_ignored_with_a_reason() -> None:
    intent = classify("Hello", "FLY", None)
    assert intent.action == "READ"
    assert any("unknown; ignored" in r for r in intent.reasons)


def test_declared_task_fills_in_only_without_text_evidence() -> None:
    assert classify("Hello there", None, "creative").task_type == "creative"
    assert classify("Fix this python bug", None, "general").task_type == "code"
    assert classify("Hello there", None, "astrology").task_type == "general"


def test_same_prompt_same_intent() -> None:
    prompt = "Supprime le fichier puis envoie un mail"
    assert classify(prompt, None, None) == classify(prompt, None, None)


def test_risk_order_is_documented_order() -> None:
    assert ACTION_RISK_ORDER == ("READ", "WRITE", "SEND", "DELETE", "TRANSFER", "PAYMENT")
    assert [action_rank(a) for a in ACTION_RISK_ORDER] == list(range(6))


@pytest.mark.parametrize("action", ACTION_RISK_ORDER)
def test_requires_checkpoint(action: str) -> None:
    parsed = parse_action(action)
    assert parsed is not None
    assert requires_checkpoint(parsed) is (action in {"DELETE", "SEND", "TRANSFER", "PAYMENT"})
    assert {"DELETE", "SEND", "TRANSFER", "PAYMENT"} == CHECKPOINT_ACTIONS


def test_confidence_reflects_evidence() -> None:
    assert classify("Hello", None, None).confidence == 0.5
    assert classify("Delete the python file", None, None).confidence == 0.9
    assert classify("Hello", "SEND", None).confidence == 0.5


@given(
    prompt=st.text(max_size=200) | st.sampled_from(["delete it", "payer", "envoie", "hello"]),
    declared=st.sampled_from(ACTION_RISK_ORDER),
)
def test_declared_action_never_lowers_risk(prompt: str, declared: str) -> None:
    parsed = parse_action(declared)
    assert parsed is not None
    alone = classify(prompt, None, None).action
    final = classify(prompt, declared, None).action
    assert action_rank(final) == max(action_rank(alone), action_rank(parsed))
