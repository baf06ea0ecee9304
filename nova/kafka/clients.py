"""Every Kafka client Nova builds is built here, so one place decides how and as whom it logs in.

Three cases, from :class:`~nova.settings.Settings`:

- **Nova's own broker** (no ``KAFKA_BOOTSTRAP_SERVERS``), or a Nova broker reached by address
  with ``NOVA_KAFKA_CREDENTIALS_DIR``: always ``SASL_PLAINTEXT`` with ``SCRAM-SHA-512``, as
  ``nova-<kafka_client>`` with the password the launcher generated
  (:mod:`nova.kafka.credentials`). Each process picks its principal: the gateway logs in as
  ``nova-gateway``, the worker as ``nova-worker``, the tools as ``nova-tools``, the launcher as
  ``nova-admin``; the broker's ACLs (:mod:`nova.kafka.acls`) say what each may read and write.
- **An external cluster with Kafka's client settings** (``KAFKA_SECURITY_PROTOCOL``,
  ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
  ``KAFKA_SSL_CAFILE``/``CERTFILE``/``KEYFILE``): exactly those, mapped to aiokafka's names
  (``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
  ``sasl_plain_password``, ``ssl_context``) and to Faust's ``broker_credentials``.
- **An external cluster without them**: ``PLAINTEXT``, as before, so an open development
  cluster keeps working.

Nothing else in the code base constructs an aiokafka client (``tests/unit/test_kafka_clients.py``
fails on one that does), so a new consumer cannot forget to log in. Consumers and producers are
started with :func:`start_client` (a failed start leaves nothing unclosed) and every client is
stopped with :func:`stop_client`, which always releases its connections and never lets
aiokafka's own cancellations out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from nova.errors import ConfigError
from nova.kafka import credentials
from nova.settings import Settings

log = logging.getLogger(__name__)

NOVA_PROTOCOL = "SASL_PLAINTEXT"
NOVA_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class ClientSecurity:
    """How one process authenticates to Kafka (what aiokafka and Faust are given)."""

    protocol: str
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def principal(self) -> str:
        """The ACL principal the broker sees (``User:ANONYMOUS`` without SASL or TLS)."""
        return f"User:{self.username}" if self.username else "User:ANONYMOUS"


def client_security(settings: Settings) -> ClientSecurity:
    """The security of every client this process builds (see the module docstring)."""
    directory = settings.nova_broker_credentials
    if directory is not None:
        role = settings.kafka_client
        return ClientSecurity(
            protocol=NOVA_PROTOCOL,
            mechanism=NOVA_MECHANISM,
            username=credentials.username(role),
            password=credentials.read_password(directory, role),
        )
    protocol = settings.kafka_security_protocol or "PLAINTEXT"
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None
        return ClientSecurity(
            protocol=protocol,
            mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
        )
    return ClientSecurity(protocol=protocol, ssl_context=context)


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path: Path | None = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{name.upper()}={path} is not a readable file")
    key_password = settings.kafka_ssl_key_password
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=key_password.get_secret_value() if key_password else None,
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot build the Kafka TLS context from KAFKA_SSL_*: {exc}") from exc
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's connection keyword arguments: bootstrap servers and security."""
    security = client_security(settings)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": security.protocol,
    }
    if security.ssl_context is not None:
        options["ssl_context"] = security.ssl_context
    if security.mechanism is not None:
        options["sasl_mechanism"] = security.mechanism
        options["sasl_plain_username"] = security.username
        options["sasl_plain_password"] = security.password
    return options


def kafka_consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **client_options(settings), **options)


def kafka_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**client_options(settings), **options)


def kafka_admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), **options)


def kafka_client(settings: Settings, **options: Any) -> AIOKafkaClient:
    return AIOKafkaClient(**client_options(settings), **options)


def faust_broker(settings: Settings) -> dict[str, Any]:
    """Faust's ``broker`` and ``broker_credentials`` for the worker's app."""
    import faust

    security = client_security(settings)
    credentials_: faust.types.auth.CredentialsT | None = None
    if security.mechanism is not None:
        credentials_ = faust.SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.mechanism,
            ssl_context=security.ssl_context,  # SASL_SSL when set, else SASL_PLAINTEXT
        )
    elif security.ssl_context is not None:
        credentials_ = faust.SSLCredentials(security.ssl_context)
    return {"broker": f"kafka://{settings.bootstrap_servers}",
            "broker_credentials": credentials_}


KafkaClientT: TypeAlias = AIOKafkaConsumer | AIOKafkaProducer | AIOKafkaAdminClient | AIOKafkaClient


async def start_client(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Start ``client``; one that cannot (no broker, refused login) is stopped again, because it
    already holds a client that would otherwise be left unclosed."""
    try:
        await client.start()
    except BaseException:
        await stop_client(client)
        raise


async def stop_client(client: KafkaClientT) -> None:
    """Stop ``client`` and close its connections, whatever state the broker is in.

    aiokafka's ``Fetcher.close`` cancels the consumer's in-flight fetches and awaits them
    without suppressing their ``CancelledError``, so a consumer stopped while a fetch is in
    flight (or retrying against a broker that went away) raises ``CancelledError`` out of
    ``stop()`` and never closes its connections: shutdown tracebacks ("Application shutdown
    failed") and "Unclosed" warnings. That error is aiokafka's, not a cancellation of the caller,
    so it is absorbed and the rest of the close is done here; a real cancellation of the calling
    task (``Task.cancelling()``) still propagates. A broker error while leaving a group or
    flushing is logged, not raised: a stop has to finish.
    """
    try:
        if isinstance(client, AIOKafkaAdminClient | AIOKafkaClient):
            await client.close()
            return
        await client.stop()
        return
    except asyncio.CancelledError:
        if _caller_cancelled():
            raise
        log.debug("%s: aiokafka cancelled its own task while stopping", type(client).__name__)
    except Exception as exc:  # noqa: BLE001 - whatever the broker answers, the stop completes
        log.debug("%s: stopping failed: %s", type(client).__name__, exc)
    await _finish_close(client)


def _caller_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _finish_close(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """What ``stop()`` left undone when it raised: the fetches, then the connections."""
    fetcher = getattr(client, "_fetcher", None)
    for task in list(getattr(fetcher, "_pending_tasks", ())):
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if _caller_cancelled():
                raise
        except Exception as exc:  # noqa: BLE001 - a fetch that failed is as good as stopped
            log.debug("fetch failed while stopping: %s", exc)
    inner: AIOKafkaClient | None = getattr(client, "_client", None) or getattr(
        client, "client", None)
    if inner is not None:
        with contextlib.suppress(Exception):
            await inner.close()
