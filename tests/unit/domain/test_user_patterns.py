"""User patterns (issue 14, item 3): linear-time matching or refusal, bounded work per request.

No timings: the bounds are checked structurally, by counting what lane D's decision scans.
"""

from __future__ import annotations

from typing import Any

import pytest
import re2

import nova.domain.textnorm as textnorm
from nova.domain import patterns
from nova.domain.governance import GovernanceFacts, Rule, RuleMatch, decide
from nova.domain.patterns import (
    IDENTITY_PROGRAM_BUDGET,
    MAX_MATCHED_CHARS,
    MAX_PROGRAM_SIZE,
    InvalidRuleError,
    UserPattern,
    check_identity_budget,
    compile_pattern,
)

ISSUE_PATTERNS = (".*.*.*x", "(a|a)*b", "(a|aa)*b")
X, Y = "identity-x", "identity-y"


def facts(identity: str, prompt: str) -> GovernanceFacts:
    return GovernanceFacts(identity_id=identity, sphere_id=None, action="READ",
                           task_type="general", roles=frozenset({"member"}), provider=None,
                           cost_estimate_usd=0.0, prompt=prompt)


@pytest.mark.parametrize("pattern", [*ISSUE_PATTERNS, "(a+)+$", r"(\w*x)*", "(x+x+)+y"])
def test_backtracking_shapes_are_accepted_and_compiled_by_re2(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    assert isinstance(compiled._regexp, re2._Regexp)  # the linear-time engine, not `re`
    assert compiled.program_size <= 16  # so RE2 does at most ~16 steps per byte of text


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "back-reference"),
        (r"(?P<w>a)(?P=w)", "back-reference"),
        ("(?=a)b", "lookaround"),
        ("(?!a)b", "lookaround"),
        ("(?<=a)b", "lookaround"),
        ("(?<!a)b", "lookaround"),
        ("(?>ab)c", "atomic group or a possessive"),
        ("a++b", "atomic group or a possessive"),
        ("x{1001}", "more than 1000 times"),
        ("x{600}", f"at most {MAX_PROGRAM_SIZE} are allowed"),
        (r"\pL{1,100}x", "bytes of memory"),
        (r"end\Z", r"write \z"),
        ("[unclosed", "does not compile: missing ]"),
        ("", "empty"),
        ("a" * 257, "longer than 256"),
    ],
)
def test_what_re2_cannot_match_in_linear_time_is_refused_saying_why(
    pattern: str, why: str
) -> None:
    with pytest.raises(InvalidRuleError) as info:
        compile_pattern(pattern)
    assert why in str(info.value)
    assert isinstance(info.value, ValueError)  # the rule API turns it into a 422


def test_matching_is_case_insensitive_and_reads_the_whole_text() -> None:
    needle = compile_pattern("needle")
    prompt = "a" * 99_990 + "NEEDLE"  # at the very end of a 100,000-character prompt
    assert needle.search(prompt)
    assert not needle.search("a" * 100_000)
    assert compile_pattern("résumé").search("RÉSUMÉ")
    # A fold longer than the prompt is still read whole up to twice the API's limit.
    assert needle.search("b" * (MAX_MATCHED_CHARS - 6) + "needle")
    assert not needle.search("b" * MAX_MATCHED_CHARS + "needle")


def test_the_identity_budget_bounds_all_its_patterns_together() -> None:
    check_identity_budget(["x{400}"], ["y{400}"])
    with pytest.raises(InvalidRuleError, match=f"at most {IDENTITY_PROGRAM_BUDGET}"):
        check_identity_budget(["x{400}", "y{400}"], ["z{300}"])
    check_identity_budget([r"(a)\1"] * 50, ["y{400}"])  # stored but unenforced: costs nothing


class Scans:
    """Counts every search each pattern makes and the UTF-8 bytes it reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.by_pattern: dict[str, list[int]] = {}
        self.folds = 0
        real_search, real_fold = UserPattern.search, textnorm._fold

        def search(pattern: UserPattern, text: str) -> bool:
            scanned = len(text[:MAX_MATCHED_CHARS].encode())
            self.by_pattern.setdefault(pattern.pattern, []).append(scanned)
            return real_search(pattern, text)

        def fold(text: str) -> str:
            self.folds += 1
            return real_fold(text)

        monkeypatch.setattr(UserPattern, "search", search)
        monkeypatch.setattr(textnorm, "_fold", fold)

    def work(self, compiled: dict[str, UserPattern]) -> int:
        """RE2 steps at most: program size times bytes read, over every search."""
        return sum(compiled[p].program_size * sum(b) for p, b in self.by_pattern.items())


def rules_of(identity: str, *pattern_sets: tuple[str, ...]) -> list[Rule]:
    return [Rule(f"{identity}-r{i}", identity, None, "deny", 0,
                 RuleMatch(text_patterns=pattern_set))
            for i, pattern_set in enumerate(pattern_sets)]


def test_another_identitys_rules_do_no_work_on_a_request(monkeypatch: Any) -> None:
    """X's rules hold the issue's patterns; Y's 100,000-character request scans none of them."""
    x_rules = rules_of(X, ISSUE_PATTERNS, ("(a|aa)*c",), ("z+z+z+y",))
    y_rules = rules_of(Y, ("zzz",))
    scans = Scans(monkeypatch)
    decision = decide(facts(Y, "a" * 100_000), [*x_rules, *y_rules])
    assert decision.outcome == "allow"
    assert set(scans.by_pattern) == {"zzz"}  # Y's own pattern only: X's did nothing


def test_an_identitys_own_rules_cost_at_most_two_scans_per_pattern(monkeypatch: Any) -> None:
    """The worst prompt for the issue's patterns (100,000 'a', no 'x' nor 'b' at the end)."""
    sets = (ISSUE_PATTERNS, ("(a|aa)*c",), ("z+z+z+y",), ("a{1,50}q",))
    x_rules = rules_of(X, *sets) * 10  # ten times the same rules: folding is still done once
    x_rules = [Rule(f"{r.rule_id}-{i}", X, None, "deny", 0, r.match)
               for i, r in enumerate(x_rules)]
    compiled = {p: compile_pattern(p) for s in sets for p in s}
    prompt = "a" * 100_000
    scans = Scans(monkeypatch)
    decision = decide(facts(X, prompt), x_rules)
    assert decision.outcome == "allow"  # nothing matched: every pattern read everything
    assert scans.folds == 1  # one fold of the prompt for every rule
    for pattern, scanned in scans.by_pattern.items():
        # as written and folded, once per rule holding it, each read whole, never more
        assert all(b == len(prompt) for b in scanned), pattern
        assert len(scanned) == 2 * 10
    # Linear: the whole decision is bounded by program size x bytes, nothing exponential.
    budget = 2 * len(prompt) * sum(c.program_size for c in compiled.values()) * 10
    assert scans.work(compiled) <= budget
    assert sum(c.program_size for c in compiled.values()) <= IDENTITY_PROGRAM_BUDGET


def test_work_grows_linearly_with_the_prompt(monkeypatch: Any) -> None:
    x_rules = rules_of(X, ISSUE_PATTERNS)
    compiled = {p: compile_pattern(p) for p in ISSUE_PATTERNS}
    work = []
    for n in (1_000, 10_000, 100_000):
        scans = Scans(monkeypatch)
        decide(facts(X, "a" * n), x_rules)
        work.append(scans.work(compiled))
    assert work[1] == 10 * work[0]
    assert work[2] == 10 * work[1]


def test_the_patterns_module_is_what_governance_uses() -> None:
    match = RuleMatch(text_patterns=ISSUE_PATTERNS)
    assert all(isinstance(p, UserPattern) for p in match._compiled)
    assert patterns.MAX_PATTERNS == 16
