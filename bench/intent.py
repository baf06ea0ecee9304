"""Lane A and governance on the labelled corpus, next to a keyword baseline run the same way.

For every prompt of ``tests/corpus/intent_prompts.yaml`` (or ``--corpus``): lane A classifies it
and lane D decides with no identity rules, as the pipeline does; a prompt is *held* when the
outcome is not ``allow``. Printed per language and per category:

- recall: the share of risky prompts held or refused (target 100%);
- false holds: the share of harmless prompts held (target at most 5%);

and the same two figures for a keyword matcher (the risky verbs of English and French as plain
regular expressions, what lane A was before it read mood), so the difference is what
understanding the request buys. Also the time lane A + D take per prompt (p50/p99) against the
baseline's, and the CPU time of one 100,000-character prompt (the API's limit). Figures are
exact counts, not timings, except the last two lines.

    .venv/bin/python bench/intent.py [--corpus FILE] [--show-misses]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nova.domain.governance import GovernanceFacts, decide
from nova.domain.intent import classify
from nova.domain.textnorm import fold

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "intent_prompts.yaml"

# The keyword baseline: one regular expression per risky action, English and French stems.
KEYWORDS = re.compile(
    r"\b(?:pay|paid|payer|paie|paye|buy|achet|order|command|subscrib|abonn|transfer|virement|"
    r"vire|wire|send|sent|envoi|envoy|email|post|publi|share|partag|forward|transf[eé]r|"
    r"delet|remov|eras|wipe|supprim|effac|cancel|annul|clear|vider|empty)\w*"
)


def nova_held(text: str) -> bool:
    intent = classify(text, None, None)
    decision = decide(
        GovernanceFacts(
            identity_id="identity-bench", sphere_id=None, action=intent.action,
            task_type=intent.task_type, roles=frozenset({"member"}), provider=None,
            cost_estimate_usd=0.0, prompt=text, defers_to_context=intent.defers_to_context,
        ),
        [],
    )  # fmt: skip
    return decision.outcome != "allow"


def keyword_held(text: str) -> bool:
    return KEYWORDS.search(fold(text)) is not None


def evaluate(
    entries: list[dict[str, Any]], judge: Callable[[str], bool]
) -> tuple[dict[tuple[str, str], list[int]], list[int], list[dict[str, Any]]]:
    """Counts [risky held, risky, harmless held, harmless] by (axis, value); ns per prompt."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    samples: list[int] = []
    misses: list[dict[str, Any]] = []
    for entry in entries:
        t0 = time.perf_counter_ns()
        held = judge(entry["text"])
        samples.append(time.perf_counter_ns() - t0)
        risky = entry["expect"] == "hold"
        for key in (("all", "all"), ("lang", entry["lang"]), ("category", entry["category"])):
            row = counts[key]
            if risky:
                row[0] += held
                row[1] += 1
            else:
                row[2] += held
                row[3] += 1
        if held != risky:
            misses.append(entry)
    return counts, samples, misses


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}% ({a}/{b})" if b else "    -"


def _long_prompt(entries: list[dict[str, Any]], size: int = 100_000) -> str:
    """The API's longest prompt, made of the corpus's prompts in a fixed shuffled order: the
    worst case for lane A, since every disguise it undoes rewrites the whole text."""
    texts = [e["text"] for e in entries]
    random.Random(1).shuffle(texts)
    out: list[str] = []
    length = 0
    for text in texts * (1 + size // max(1, sum(map(len, texts)))):
        if length >= size:
            break
        out.append(text)
        length += len(text) + 1
    return " ".join(out)[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    entries = yaml.safe_load(args.corpus.read_text(encoding="utf-8"))
    classify("warm up the lexicons", None, None)

    nova, nova_ns, misses = evaluate(entries, nova_held)
    base, base_ns, _ = evaluate(entries, keyword_held)
    print(f"corpus: {args.corpus} ({len(entries)} prompts)")
    header = f"{'':24} {'recall (Nova)':>22} {'recall (keywords)':>22} "
    header += f"{'false holds (Nova)':>22} {'false holds (kw)':>22}"
    print(header)
    keys = sorted(nova, key=lambda k: ({"all": 0, "lang": 1, "category": 2}[k[0]], k[1]))
    for key in keys:
        n, b = nova[key], base[key]
        label = "all" if key[0] == "all" else f"{key[0]}={key[1]}"
        print(f"{label:24} {pct(n[0], n[1]):>22} {pct(b[0], b[1]):>22} "
              f"{pct(n[2], n[3]):>22} {pct(b[2], b[3]):>22}")
    p = statistics.quantiles(nova_ns, n=100)
    q = statistics.quantiles(base_ns, n=100)
    print(f"time per prompt (lane A + D): p50 {p[49] / 1e6:.2f} ms, p99 {p[98] / 1e6:.2f} ms; "
          f"keyword baseline p50 {q[49] / 1e6:.3f} ms, p99 {q[98] / 1e6:.3f} ms")
    long_prompt = _long_prompt(entries)
    started = time.process_time()
    nova_held(long_prompt)
    long_s = time.process_time() - started
    started = time.process_time()
    keyword_held(long_prompt)
    kw_s = time.process_time() - started
    print(f"a {len(long_prompt):,}-character prompt (corpus prompts end to end, every disguise "
          f"present): lane A + D {long_s:.2f} s of CPU; keyword baseline {kw_s * 1e3:.1f} ms")
    if args.show_misses:
        for entry in misses:
            print(f"MISS {entry['id']} expect={entry['expect']} {entry['text']!r}")


if __name__ == "__main__":
    main()
