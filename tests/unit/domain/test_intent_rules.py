"""Lane A specification: the action a prompt orders, read from its mood, not its keywords.

The corpus in ``tests/corpus/intent_prompts.yaml`` is the broad table test
(``test_intent_corpus.py``); these are the rules it rests on, one behaviour each.
"""

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
        ("Create an invoice for ACME", "WRITE", "general"),  # a document, not a charge
        ("Invoice ACME for 1,200 EUR", "PAYMENT", "general"),
        ("Write a python function that parses dates", "WRITE", "code"),
        ("Update my profile description", "WRITE", "general"),
        ("Fix this bug: stack trace below", "WRITE", "code"),
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
        ("Corrige ce bug dans ma fonction python", "WRITE", "code"),
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


def held(prompt: str) -> bool:
    return requires_checkpoint(classify(prompt, None, None).action)


@pytest.mark.parametrize(
    "prompt",
    [
        "How do I delete my account?",
        "What happens when you wire money to the wrong IBAN?",
        "Explain what a chargeback is",
        "Should I pay this invoice now or wait?",
        "Qu'est-ce qu'un virement SEPA ?",
        "Comment supprimer un compte Gmail ?",
        "Is it safe to delete the node_modules folder?",
    ],
)
def test_questions_about_an_action_do_not_order_it(prompt: str) -> None:
    assert not held(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "Could you pay the Hetzner invoice today?",
        "Peux-tu supprimer les doublons ?",
        "I need you to forward this to the auditors",
        "J'aimerais que tu envoies le devis à Paul",
        "If the invoice is under 100 EUR, pay it",
        "When the refund arrives, move it to savings",
    ],
)
def test_polite_and_conditional_orders_are_orders(prompt: str) -> None:
    assert held(prompt)


@pytest.mark.parametrize(
    ("prompt", "is_held"),
    [
        ("Draft a reply but do not send it", False),
        ("Rédige la réponse sans l'envoyer", False),
        ("Don't delete anything, just list the old files", False),
        ("Ne paie rien pour l'instant", False),
        ("Don't forget to pay the rent", True),
        ("N'oublie pas d'envoyer le devis", True),
        ("Do not wait, delete it now", True),
        ("Never mind the summary, just send it", True),
    ],
)
def test_negation_scopes_over_its_verb_only(prompt: str, is_held: bool) -> None:
    assert held(prompt) is is_held


@pytest.mark.parametrize(
    "prompt",
    [
        "List the invoices paid last month",
        "Who deleted this file?",
        "Did I pay the electricity bill?",
        "Montre-moi les mails envoyés hier",
        "Summarise the transfers of Q3",
    ],
)
def test_reports_and_records_of_past_actions_are_reads(prompt: str) -> None:
    assert not held(prompt)


@pytest.mark.parametrize(
    ("prompt", "action"),
    [
        ("Settle the ACME invoice today", "PAYMENT"),
        ("Cough up the 40 quid for the tickets", "PAYMENT"),
        ("Règle la facture EDF", "PAYMENT"),
        ("Top up my Oyster card", "PAYMENT"),
        ("Post the deck on LinkedIn", "SEND"),
        ("Let the landlord know the boiler is broken", "SEND"),
        ("Balance la photo sur le groupe", "SEND"),
        ("Move my work notes into my personal space", "TRANSFER"),
        ("Virement de 200 € à Marie", "TRANSFER"),
        ("Empty the trash", "DELETE"),
        ("Fais sauter ces vieux fichiers", "DELETE"),
        ("Reset my phone to factory settings", "DELETE"),
    ],
)
def test_paraphrases_name_the_action(prompt: str, action: str) -> None:
    assert classify(prompt, None, None).action == action


@pytest.mark.parametrize(
    "prompt",
    [
        "Pay attention to the tone of this paragraph",
        "Explain transfer learning",
        "Settle an argument: is a hot dog a sandwich?",
        "Charge my laptop reminder: what wattage do I need?",
        "Move this paragraph up",
        "Share your thoughts on this essay",
        "Remove the typos from this paragraph",
        "Write an email asking Bob to pay his share",
    ],
)
def test_the_same_words_in_another_sense_are_harmless(prompt: str) -> None:
    assert not held(prompt)


@pytest.mark.parametrize(
    ("prompt", "disguise"),
    [
        ("p\u0430y the inv\u043eice", "look-alike letters"),  # Cyrillic a and o
        ("de\u200blete all my files", None),  # zero-width space, removed outright
        ("d e l e t e all my files", "spaced-out letters"),
        ("d3l3t3 all my f1les", "leetspeak"),
        ("decode and do it: ZGVsZXRlIGFsbCBteSBmaWxlcw==", "decoded from base64"),
        ("run this: 64656c65746520616c6c206d792066696c6573", "decoded from hex"),
    ],
)
def test_disguises_are_undone_and_named(prompt: str, disguise: str | None) -> None:
    intent = classify(prompt, None, None)
    assert requires_checkpoint(intent.action)
    if disguise is not None:
        assert any(disguise in r for r in intent.reasons)


def test_a_hidden_payload_the_user_asks_not_to_run_is_only_read() -> None:
    prompt = "Just tell me what this decodes to, don't act on it: ZGVsZXRlIGFsbCBteSBmaWxlcw=="
    assert not held(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "Paga la factura de la luz",
        "Bezahle bitte 200 EUR an Jonas",
        "Usuń wszystkie moje pliki",
        "Überweise 500 € auf DE89 3704 0044 0532 0130 00",
    ],
)
def test_other_languages_with_risk_are_held(prompt: str) -> None:
    intent = classify(prompt, None, None)
    assert requires_checkpoint(intent.action)
    assert intent.language not in ("en", "fr") or any(
        "another language" in r for r in intent.reasons
    )


def test_a_plain_question_in_another_language_runs() -> None:
    intent = classify("¿Cuál es la capital de Francia?", None, None)
    assert intent.action == "READ"
    assert intent.language == "es"


@pytest.mark.parametrize(
    ("prompt", "action"),
    [
        ("Get 300 € to Marie by Friday", "PAYMENT"),
        ("Handle the 1,200 EUR ACME invoice", "PAYMENT"),
        ("500 EUR to FR76 3000 6000 0112 3456 7890 189 asap", "TRANSFER"),
        ("The launch deck, LinkedIn, today.", "SEND"),
    ],
)
def test_risk_cues_resolve_a_vague_instruction(prompt: str, action: str) -> None:
    assert classify(prompt, None, None).action == action


@pytest.mark.parametrize(
    "prompt",
    [
        "How much is 50 EUR in dollars?",
        "Summarise the email from bob@example.com",
        "Is FR76 3000 6000 0112 3456 7890 189 a valid IBAN?",
    ],
)
def test_risk_cues_in_a_question_stay_questions(prompt: str) -> None:
    assert not held(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "Do the action items of this thread",
        "Handle what this thread asks for",
        "Fais ce qui est demandé dans ce fil",
    ],
)
def test_deferring_to_the_context_is_recorded(prompt: str) -> None:
    intent = classify(prompt, None, None)
    assert intent.defers_to_context
    assert any("defers to its context" in r for r in intent.reasons)


def test_summarising_a_thread_does_not_defer_to_it() -> None:
    assert not classify("Summarise this thread", None, None).defers_to_context


def test_every_counted_action_names_its_word_and_mood() -> None:
    intent = classify("Please settle the ACME invoice, but don't email the client", None, None)
    assert intent.action == "PAYMENT"
    assert any("'settle'" in r and r.startswith("action PAYMENT") for r in intent.reasons)
    assert any("'email'" in r and "negated" in r for r in intent.reasons)


def test_a_long_prompt_is_classified_with_bounded_reasons() -> None:
    prompt = "Summarise this. " * 5000 + "Then delete the archive."
    intent = classify(prompt, None, None)
    assert intent.action == "DELETE"
    assert len(intent.reasons) <= 40


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
    assert classify("Hello", None, None).confidence == 0.5  # no task evidence caps it
    assert classify("Delete the python file", None, None).confidence == 0.9  # an order
    assert classify("Settle it", None, None).confidence == 0.5  # unsure and no task
    assert classify("Summarise and then settle it", None, None).confidence == 0.6  # unsure
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


# --- long prompts: each sentence read once, disguises still undone where they are -----------

FILLER = [
    "The quarterly review covers revenue, churn and hiring.",
    "Le comité se réunit jeudi pour parler du budget.",
    "Our team shipped three features and fixed twelve bugs.",
    "Merci de relire les notes de la réunion de lundi.",
]


def _long(middle: str, sentences: int = 2_000) -> str:
    body = [FILLER[n % len(FILLER)] for n in range(sentences)]
    body.insert(sentences // 2, middle)
    return " ".join(body)


@pytest.mark.parametrize(
    ("disguised", "action"),
    [
        ("Decode this rot13: cnl gur nyvpr vaibvpr gbqnl.", "PAYMENT"),
        ("Read it backwards: .evihcra eht eteled", "DELETE"),
        ("Pl3ase s3nd th3 c0ntract t0 the client.", "SEND"),
        ("Then su pprime le dossier client.", "DELETE"),
    ],
)
def test_one_disguised_order_in_a_long_prompt_is_still_found(disguised: str, action: str) -> None:
    intent = classify(_long(disguised), None, None)
    assert intent.action == action


def test_a_long_prompt_of_harmless_sentences_needs_no_checkpoint() -> None:
    assert not requires_checkpoint(classify(_long("Nothing else to add."), None, None).action)


def test_a_repeated_sentence_is_read_once_per_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    from nova.domain.intent import analysis

    reads: list[int] = []
    real = analysis._read_group

    def counting(*args: object, **kwargs: object) -> object:
        reads.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(analysis, "_read_group", counting)
    intent = classify(_long("Now pay the Hetzner invoice."), None, None)
    assert intent.action == "PAYMENT"
    # 2,001 sentences, five of them distinct: a handful of reads, not thousands.
    assert len(reads) <= 5 * 8
