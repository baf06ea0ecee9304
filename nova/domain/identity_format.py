"""What an identity id and a subject may look like, wherever one enters Nova.

An identity id becomes a Kafka key, a ClickHouse value, a path segment and part of audit
records; a subject (the user behind a token) is written into every request and shown to
approvers. Neither is ever trusted as it arrives: a signed token is only as good as the code
that minted it, and a NUL, a line break or a right-to-left override in a claim must be refused
at the door, not discovered as a 500 (or a spoofed name on an approval screen) further down.

- **Identity ids** have the entity id shape (``nova.entities.models``): a letter or digit,
  then letters, digits and ``. _ @ -``, at most 128 characters in all.
- **Subjects** are looser because user ids are chosen by operators (``alice``,
  ``alice@example.org``, ``apikey:<key id>``, ``Alice Martin``): 1 to 128 characters, every one
  printable (no control, format, surrogate or unassigned characters, so no NUL, no zero-width
  or bidi controls), with no space at either end.
"""

from __future__ import annotations

import re
from typing import Final

from typing_extensions import TypeIs

MAX_ID_LENGTH: Final = 128
IDENTITY_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
_IDENTITY_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


def is_identity_id(value: object) -> TypeIs[str]:
    """True when ``value`` is a string of the identity id shape."""
    return isinstance(value, str) and _IDENTITY_ID.fullmatch(value) is not None


def is_subject(value: object) -> TypeIs[str]:
    """True when ``value`` is a printable string of 1 to 128 characters, not space-padded."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isprintable()
        and value == value.strip()
    )
