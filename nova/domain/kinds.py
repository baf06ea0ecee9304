"""The closed vocabularies the domain decides in and the wire records carry.

Defined here, apart from the classifiers and detectors that produce them, so that
``nova.records`` can type its fields with them (a record with an action Nova does not know fails
to decode instead of reaching a lane) without loading the intent classifier or compiling the
detection patterns at import.
"""

from __future__ import annotations

from typing import Literal

Action = Literal["READ", "WRITE", "SEND", "DELETE", "TRANSFER", "PAYMENT"]
TaskType = Literal["code", "creative", "analysis", "search", "translation", "general"]
IdentifierKind = Literal["iban", "payment_card", "email", "phone", "national_id"]
CheckpointStatus = Literal["pending", "approved", "rejected", "expired"]
# The model tier a request asks for among each routed provider's models (nova.llm.routing).
Priority = Literal["low", "normal", "high"]
