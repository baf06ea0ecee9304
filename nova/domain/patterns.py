"""User-supplied text patterns of governance rules: matched in linear time, or refused.

An approver writes ``text_patterns`` for their identity's rules, and lane D matches them
against every prompt of that identity. Python's ``re`` backtracks: ``(a|aa)*b`` against a few
thousand ``a`` takes minutes, and while lane D is stuck on one request the worker serves
nobody else (issue 14: another identity's one-line request went from 0.14 s to over 60 s).
So patterns are compiled by RE2 (``google-re2``), whose matching time is linear in the text,
and refused when the rule is created if RE2 cannot match them (the rule API answers 422
problem+json saying why).

- **Refused**: back-references (``\\1``, ``(?P=name)``) and lookarounds (``(?=``, ``(?!``,
  ``(?<=``, ``(?<!``), which need backtracking; atomic groups and possessive quantifiers;
  counted repetitions above 1,000; patterns longer than :data:`MAX_PATTERN_LENGTH` characters;
  patterns RE2 compiles to more than :data:`MAX_PROGRAM_SIZE` instructions (``x{1000}`` is
  1,004) or not within :data:`MAX_MEMORY_BYTES` (``\\pL{1,100}x``); and, per identity,
  patterns whose sizes add up to more than :data:`IDENTITY_PROGRAM_BUDGET` instructions over
  all its rules (:func:`check_identity_budget`). Nested quantifiers (``(a+)+``) and the
  issue's ``.*.*.*x``, ``(a|a)*b``, ``(a|aa)*b`` are accepted: RE2 matches them in linear
  time, about 0.2 ms per 100,000 characters.
- **Matched**: all of the text, never a prefix of it. A prompt is at most 100,000 characters
  (the API's limit) and is matched whole as written and whole once folded (lowercase, accents
  removed). Folding can lengthen a text, so one search reads up to :data:`MAX_MATCHED_CHARS`
  characters, twice the API's limit; only a prompt made of long runs of compatibility
  ligatures folds longer, and its fold is matched on its first 200,000 characters.
- **Time**: RE2 reads the text once, forward, with a DFA it builds lazily from the pattern's
  program, and falls back to an NFA simulation, linear too, when the DFA's memory runs out.
  A search costs at most a constant times the program size times the text's UTF-8 bytes. For
  the patterns rules are made of (words, alternations, classes) that is 1-3 ns per byte
  whatever their size; shapes built to defeat the DFA reach about 20 ns per instruction per
  byte. Hence the budget: on one request, one identity's rules run at most 2 scans of the
  prompt for :data:`IDENTITY_PROGRAM_BUDGET` instructions, however they are written (for a
  100,000-character ASCII prompt: milliseconds for ordinary patterns, about 4 s for the worst
  shapes, the order of what lane A already spends reading such a prompt). Only that
  identity's requests pay it: lane D applies the requesting identity's rules alone, so
  another identity's request runs none of them.
- **Memory**: each compiled pattern is capped at :data:`MAX_MEMORY_BYTES` (RE2's ``max_mem``:
  the program and both DFA caches).

RE2's syntax is Perl's without backtracking; ``\\w``, ``\\d``, ``\\b`` are ASCII (``\\pL`` is any
letter), ``\\z`` ends the text (Python's ``\\Z``); matching is case-insensitive, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import re2

from nova.errors import NovaError

MAX_PATTERNS: Final = 16  # per rule
MAX_PATTERN_LENGTH: Final = 256  # characters
MAX_PROGRAM_SIZE: Final = 500  # RE2 instructions, forward or reverse
IDENTITY_PROGRAM_BUDGET: Final = 1000  # RE2 instructions over all patterns of one identity
MAX_MEMORY_BYTES: Final = 1 << 20  # RE2 max_mem per compiled pattern
MAX_MATCHED_CHARS: Final = 200_000  # what one search reads: twice the API's prompt limit


class InvalidRuleError(NovaError, ValueError):
    """A governance rule is malformed; it is also a ``ValueError`` so API validation maps it
    to a 422 response. (Candidate for ``nova.errors``.)"""


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True  # a yes/no answer needs no groups: the DFA alone suffices
    options.max_mem = MAX_MEMORY_BYTES
    options.log_errors = False  # a refused pattern is a 422, not a line on stderr
    return options


_OPTIONS: Final = _options()

# Constructs RE2 refuses, recognised in the pattern or in RE2's message, and what to tell the
# rule's author about each.
_REFUSALS: Final = (
    (re.compile(r"\\[1-9]|\(\?P="), re.compile(r"invalid escape sequence: \\[1-9]"),
     "uses a back-reference, which needs backtracking"),
    (re.compile(r"\(\?<?[=!]"), re.compile(r"invalid perl operator: \(\?<?[=!]"),
     "uses a lookaround ((?=, (?!, (?<=, (?<!), which needs backtracking"),
    (re.compile(r"\(\?>|[*+?}]\+"), re.compile(r"bad repetition operator: [*+?]\+"),
     "uses an atomic group or a possessive quantifier"),
    (None, re.compile(r"invalid repetition size"), "repeats something more than 1000 times"),
    (None, re.compile(r"pattern too large"),
     f"needs more than {MAX_MEMORY_BYTES} bytes of memory to compile"),
    (re.compile(r"\\Z"), re.compile(r"invalid escape sequence: \\Z"),
     "uses \\Z: write \\z for the end of the text"),
)


def _refusal(pattern: str, error: str) -> InvalidRuleError:
    for in_pattern, in_error, why in _REFUSALS:
        if (in_pattern is not None and in_pattern.search(pattern)) or in_error.search(error):
            return InvalidRuleError(
                f"text pattern {pattern!r} {why}; patterns are matched in linear time (RE2)"
            )
    return InvalidRuleError(f"text pattern {pattern!r} does not compile: {error}")


class UserPattern:
    """One compiled user pattern; :meth:`search` says whether it occurs in a text."""

    __slots__ = ("_regexp", "pattern", "program_size")

    def __init__(self, pattern: str, regexp: Any) -> None:
        self.pattern = pattern
        self._regexp = regexp
        self.program_size: int = max(regexp.programsize, regexp.reverseprogramsize)

    def search(self, text: str) -> bool:
        """True when the pattern occurs anywhere in ``text`` (its first
        :data:`MAX_MATCHED_CHARS` characters), case-insensitively; linear time."""
        return self._regexp.search(_utf8(text[:MAX_MATCHED_CHARS])) is not None

    def __repr__(self) -> str:
        return f"UserPattern({self.pattern!r}, program_size={self.program_size})"


_last_encoded: tuple[str, bytes] = ("", b"")


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, remembering the last one: a rule's patterns all scan the same prompt."""
    global _last_encoded
    last_text, last_bytes = _last_encoded
    if text is last_text:
        return last_bytes
    encoded = text.encode("utf-8", "surrogatepass")
    _last_encoded = (text, encoded)
    return encoded


def compile_pattern(pattern: str) -> UserPattern:
    """Compile one user-supplied text pattern with RE2, or refuse it (``InvalidRuleError``)."""
    if not pattern:
        raise InvalidRuleError("text pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidRuleError(f"text pattern longer than {MAX_PATTERN_LENGTH} characters")
    try:
        regexp = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        message = exc.args[0] if exc.args else ""
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        raise _refusal(pattern, text) from exc
    compiled = UserPattern(pattern, regexp)
    if compiled.program_size > MAX_PROGRAM_SIZE:
        raise InvalidRuleError(
            f"text pattern {pattern!r} compiles to {compiled.program_size} instructions; at "
            f"most {MAX_PROGRAM_SIZE} are allowed (narrow its counted repetitions and classes)"
        )
    return compiled


def program_cost(patterns: Iterable[str]) -> int:
    """Instructions RE2 runs per byte of text, at worst, for these patterns together; a stored
    pattern this build refuses counts for nothing (it is never enforced either)."""
    cost = 0
    for pattern in patterns:
        try:
            cost += compile_pattern(pattern).program_size
        except InvalidRuleError:
            continue
    return cost


def check_identity_budget(kept: Iterable[str], added: Iterable[str]) -> None:
    """Refuse ``added`` patterns (already valid one by one) when, with the ``kept`` patterns
    of the identity's other rules, they exceed :data:`IDENTITY_PROGRAM_BUDGET`."""
    cost = program_cost(kept) + program_cost(added)
    if cost > IDENTITY_PROGRAM_BUDGET:
        raise InvalidRuleError(
            f"the identity's text patterns would compile to {cost} RE2 instructions in all; "
            f"at most {IDENTITY_PROGRAM_BUDGET} are allowed per identity, which bounds what its "
            "rules may cost on each of its requests"
        )
