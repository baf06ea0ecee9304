"""Built-in detections governance applies to every request, whatever the identity's rules say.

Three categories, by how much harm letting the text through could do:

* ``injection`` - phrasing that tries to override Nova's instructions ("ignore previous
  instructions", "tu es maintenant DAN"). Matched on ``fold(text)`` so accents, case,
  typographic apostrophes and zero-width characters do not hide it (OWASP LLM01).
* ``secret`` - credentials and payment identifiers that must never reach a third-party model
  (OWASP LLM02): provider API keys (``sk-...``), AWS access keys, GitHub/Slack/Google tokens,
  JWTs, Nova's own API keys, private key blocks, ``password=...`` assignments, payment card
  numbers and IBANs. Cards must pass the Luhn check and start with a network digit (2-6);
  IBANs must pass ISO 13616 mod-97 and, for known countries, have that country's length, so
  arbitrary long numbers are not flagged.
* ``pii`` - e-mail addresses and phone numbers: personal data a human may legitimately send,
  so the lower severity (governance asks for approval instead of refusing).

A ``Detection`` never carries the matched text, only its kind and span: detections end up in
audit records, and an audit trail must not become a second copy of the secret. Every pattern is
written without nested quantifiers and with bounded repetitions so scanning stays linear in the
text length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from nova.domain.textnorm import fold

Category = Literal["injection", "secret", "pii"]


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding. ``span`` indexes the raw text (None for injection, found on folded text)."""

    category: Category
    kind: str
    span: tuple[int, int] | None


_INJECTION: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "ignore_previous_instructions",
            r"\b(?:ignore|disregard|forget|override|skip)\s+(?:(?:all|any|the|your|my|of)\s+){0,3}"
            r"(?:previous|prior|above|earlier|preceding|former|initial|original|system)\s+"
            r"(?:instructions?|prompts?|rules|directions|messages?|guidelines)\b",
        ),
        (
            "ignore_previous_instructions",
            r"\b(?:ignore|disregard|forget)\s+(?:all|any|every)\s+(?:of\s+)?(?:the\s+|your\s+)?"
            r"(?:instructions?|rules|guidelines)\b",
        ),
        ("disregard_system_prompt", r"\bdisregard\s+(?:the\s+|your\s+)?system\s+prompt\b"),
        (
            "role_override",
            r"\byou\s+are\s+now\s+(?:dan|in\s+developer\s+mode|jailbroken|unfiltered|"
            r"unrestricted|free\s+of\s+(?:all\s+)?restrictions)\b",
        ),
        ("role_override", r"\bdo\s+anything\s+now\b"),
        ("role_override", r"\bdeveloper\s+mode\s+(?:enabled|on|activated)\b"),
        (
            "system_prompt_exfiltration",
            r"\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+"
            r"(?:system\s+prompt|hidden\s+instructions|initial\s+instructions)\b",
        ),
        # French (text is folded: no accents, lowercase).
        (
            "ignore_previous_instructions",
            r"\b(?:ignore\w*|oubli\w*)\s+(?:toutes|tous)\s+(?:les\s+|tes\s+|vos\s+|mes\s+)?"
            r"(?:instructions|consignes|regles|directives)\b",
        ),
        (
            "ignore_previous_instructions",
            r"\b(?:ignore\w*|oubli\w*)\s+(?:les|tes|vos)\s+(?:instructions|consignes|regles|"
            r"directives)\s+(?:precedentes|anterieures|ci-dessus|initiales|du\s+systeme|systeme)\b",
        ),
        (
            "ignore_previous_instructions",
            r"\bne\s+(?:tiens|tenez|tient)\s+(?:pas|plus)\s+compte\s+(?:des|de\s+tes|de\s+vos)\s+"
            r"(?:instructions|consignes|regles)\b",
        ),
        (
            "role_override",
            r"\btu\s+es\s+(?:maintenant|desormais)\s+(?:dan|en\s+mode\s+developpeur|libere|"
            r"sans\s+(?:aucune\s+)?restrictions?)\b",
        ),
        ("role_override", r"\bmode\s+developpeur\s+(?:active|actif|enclenche)\b"),
        (
            "system_prompt_exfiltration",
            r"\b(?:revele|affiche|montre|repete|donne)\w*\s+(?:moi\s+)?(?:ton|votre|le)\s+"
            r"(?:prompt|message)\s+(?:du\s+)?systeme\b",
        ),
    )
)

_SECRETS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("api_key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,200}"),
        ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        (
            "aws_secret_key",
            r"(?i:aws_secret_access_key)\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b",
        ),
        ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        ("slack_token", r"\bxox[abprs]-[A-Za-z0-9-]{10,200}"),
        ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{8,1024}"),
        # Nova's own API key format (see nova.auth.keys): nova_<16 hex>_<secret>.
        ("nova_api_key", r"\bnova_[0-9a-f]{16}_[A-Za-z0-9_-]{20,200}"),
        ("private_key", r"-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----"),
        (
            "password",
            r"(?i:\b(?:password|passwd|mot de passe|mdp)\s*[:=]\s*)[^\s\"']{6,256}",
        ),
    )
)

# Contiguous 13-19 digits, 4-4-4-4(-3) groups, or Amex 4-6-5, with one separator kind.
_CARD = re.compile(
    r"(?<![\d-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{5})"
    r"(?![\d-])"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}  # fmt: skip

_PII: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "email",
        re.compile(
            r"(?<![\w.+%-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b"
        ),
    ),
    # French national format, one separator kind throughout: 06 12 34 56 78, 06.12.34.56.78.
    ("phone", re.compile(r"(?<![\d+-])0[1-9]([ .-]?)\d{2}(?:\1\d{2}){3}(?![\d-])")),
    (
        "phone",
        re.compile(r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}(?!\d)"),
    ),
)


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812 check digit test; ``digits`` must contain digits only."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: known country length (when known) and mod-97 remainder of 1."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact[:2].isalpha():
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _looks_like_card(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return (
        13 <= len(digits) <= 19
        and digits[0] in "23456"
        and len(set(digits)) > 1
        and luhn_valid(digits)
    )


def scan_injection(text: str) -> tuple[Detection, ...]:
    """Injection phrasings in ``text``, one detection per kind."""
    folded = fold(text)
    kinds: dict[str, None] = {}
    for kind, pattern in _INJECTION:
        if kind not in kinds and pattern.search(folded):
            kinds[kind] = None
    return tuple(Detection("injection", kind, None) for kind in kinds)


def scan_sensitive(text: str) -> tuple[Detection, ...]:
    """Secrets then PII in ``text``, each with its span in the raw text, in text order."""
    found: list[Detection] = []
    for kind, pattern in _SECRETS:
        found.extend(Detection("secret", kind, m.span()) for m in pattern.finditer(text))
    found.extend(
        Detection("secret", "payment_card", m.span())
        for m in _CARD.finditer(text)
        if _looks_like_card(m.group(0))
    )
    found.extend(
        Detection("secret", "iban", m.span())
        for m in _IBAN.finditer(text)
        if sum(c.isdigit() for c in m.group(0)) >= 8 and iban_valid(m.group(0))
    )
    secret_spans = [d.span for d in found if d.span is not None]
    for kind, pattern in _PII:
        for m in pattern.finditer(text):
            start, end = m.span()
            # A phone-shaped run inside a card number or IBAN is already reported as a secret.
            if any(s <= start and end <= e for s, e in secret_spans):
                continue
            found.append(Detection("pii", kind, (start, end)))
    found.sort(key=lambda d: (d.span or (0, 0), d.category, d.kind))
    return tuple(found)


def scan(text: str) -> tuple[Detection, ...]:
    """Every built-in detection in ``text``: injections first, then secrets and PII."""
    return scan_injection(text) + scan_sensitive(text)


def redact(text: str) -> str:
    """``text`` with each secret and PII span replaced by ``[REDACTED:<kind>]``.

    For logs and audit excerpts; overlapping spans are merged under the first kind.
    """
    spans = sorted(
        (d.span[0], d.span[1], d.kind) for d in scan_sensitive(text) if d.span is not None
    )
    out: list[str] = []
    cursor = 0
    for start, end, kind in spans:
        if start < cursor:  # overlaps the previous redaction: extend it
            cursor = max(cursor, end)
            continue
        out.append(text[cursor:start])
        out.append(f"[REDACTED:{kind}]")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)
