"""One exception root for Nova.

Every error Nova raises on purpose derives from :class:`NovaError`. Subclasses say whether a
retry can help (``retriable``) so callers never inspect messages to decide.

    NovaError
    ├── ConfigError              settings or environment unusable (one-line fix in the message)
    │   └── StartupError         a collaborator a process relies on cannot be built: it refuses
    │                            to start (names what is missing and how to fix it)
    ├── LauncherError            the local Kafka broker could not be fetched, formatted or started
    ├── SchemaError              a record does not match its Avro contract (never retriable)
    │   └── UnknownSchemaError   a record names a writer schema we do not have
    ├── ProcessingError          a lane could not process a record (goes to the dead-letter topic)
    ├── PartitionLost            this worker no longer holds the record's partition: drop the
    │                            record, its next owner processes it again (not an error)
    ├── SignatureError           a decision or entity change is unsigned or its signature does
    │                            not verify with the gateway's key (never retriable)
    ├── NotFoundError            an entity id is unknown
    ├── ForbiddenError           identity boundary crossed
    ├── AuditUnavailableError    an act that must be audited first could not be (retriable)
    ├── KafkaUnavailableError    Kafka is unreachable: a write was refused or given up (retriable)
    ├── ConflictError            contradicts an earlier operation (opposite checkpoint decision)
    ├── AuthError                missing, malformed, expired or wrongly signed credentials
    ├── LimitError               a rate limit or budget says no; names the limit (retriable)
    └── ProviderError            an LLM provider call failed (retriable unless stated)
"""

from __future__ import annotations


class NovaError(Exception):
    """Root of every error Nova raises on purpose."""

    retriable: bool = False
    kafka_outage: bool = False  # the broker is away: retrying once it is back will do


class ConfigError(NovaError):
    """Settings or environment cannot work; the message names the fix."""


class StartupError(ConfigError):
    """A process cannot build a collaborator it relies on, so it refuses to start.

    Governance never runs with a guard missing (boundary guard, entity view, rules, rate limiter,
    budgets): a process without one stops at start-up instead of skipping checks later. The
    message is one line: who refuses, what is missing, why, and how to fix it.
    """

    def __init__(
        self, component: str, missing: str, fix: str, cause: BaseException | None = None
    ) -> None:
        why = f" ({one_line(cause)})" if cause is not None else ""
        super().__init__(f"{component} refuses to start: {missing}{why}; {fix}")
        self.component = component
        self.missing = missing


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and its message with whitespace collapsed."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if not text:
        return name
    return (text if text.startswith(name) else f"{name}: {text}")[:500]


class LauncherError(NovaError):
    """The project's own Kafka broker could not be fetched, formatted or started."""


class SchemaError(NovaError):
    """A record does not match its Avro contract."""


class UnknownSchemaError(SchemaError):
    """A record's header names a writer schema that this build does not know."""


class ProcessingError(NovaError):
    """A lane could not process a record; the record goes to the dead-letter topic."""


class PartitionLost(NovaError):
    """The worker lost the partition of the record it is processing (revoked, or fenced by the
    worker that took it): the record is dropped, neither dead-lettered nor failed, because its
    offset is not committed and the partition's new owner processes it again."""


class SignatureError(NovaError):
    """A decision or entity change is unsigned, names an unknown key, or does not verify.

    Readers treat the record as never written (fail closed); the worker dead-letters and
    audits it (``nova.signing``).
    """


class NotFoundError(NovaError):
    """An entity id is unknown."""


class ForbiddenError(NovaError):
    """An identity tried to reach another identity's resource."""


class AuditUnavailableError(NovaError):
    """The audit fact an operator's change needs could not be sent, so the change was not made."""

    retriable = True


class KafkaUnavailableError(NovaError):
    """Kafka is unreachable, so a write was refused (or given up while in flight); the message
    says whether anything may still be written. A 503 with ``Retry-After`` at the gateway."""

    retriable = True
    kafka_outage = True


class ConflictError(NovaError):
    """The operation contradicts an earlier one."""


class AuthError(NovaError):
    """Credentials are missing, malformed, expired or wrongly signed."""


class LimitError(NovaError):
    """A rate limit or budget refused the operation; ``limit`` names which one."""

    retriable = True

    def __init__(self, message: str, *, limit: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after_s = retry_after_s


class ProviderError(NovaError):
    """An LLM provider call failed."""

    retriable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retriable: bool = True,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retriable = retriable
        self.retry_after_s = retry_after_s
