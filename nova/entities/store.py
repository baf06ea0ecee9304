"""The entities read model: the compacted ``entities`` topic tailed into memory, and its writer.

Every process that needs entities (the gateway for its routes and the identity boundary, the
worker for lanes B and D) builds one :class:`EntityStore`. It reads every partition of the
topic from the beginning with a group-less consumer (each replica needs the whole state, not a
share of it), folds records with :class:`~nova.entities.state.EntityState` and keeps tailing.
``start()`` returns only once the state has caught up with the end of the topic, so a gateway
never answers from a half-loaded view.

``sync()`` is the read-your-writes barrier of :class:`~nova.entities.view.EntityView`: it asks
the broker for the current end offsets and waits until the consumed positions reach them. A
record acknowledged anywhere before the call is therefore applied when it returns, whichever
process wrote it. It costs one offsets request per call; callers that already see what they
need locally skip it, and lanes pass their record as a witness so that a burst's records share
one request (:meth:`EntityStore.sync`).

Writes go through :class:`EntityWriter`: the record is produced with the idempotent producer,
acknowledged by the broker (``acks=all``), then applied locally at once, so the writer reads
its own write without waiting for the consumer. The fold ignores versions older than the one
applied, so the consumer later seeing the same record (or an older one still in flight) never
rolls the state back.

Signed records only (``nova.signing``). Every record read from the topic must verify with the
gateway's public key before it is folded in; one that does not (unsigned, signed with another
key, altered), a null-value tombstone (Nova never writes one, and it cannot carry a signature)
and an undecodable record are ignored as if never written, so a forged "delete this rule" or
"add this API key" changes nothing. The writer signs every record it produces with the
gateway's private key, which the worker's store never has: it only verifies.

Compaction keeps only the newest record of a key, so a forged record, even ignored, would
evict the key's signed state at the next compaction and the entity would vanish from every
view rebuilt after it (a deny rule or a revoked key's deletion among them). So a key whose
newest record is not its trusted state (untrusted, undecodable, or an older signed version
replayed) is *tainted*, and a store with a ``healer`` (the gateway's, :meth:`EntityWriter.heal`)
re-signs the key's last trusted state at the next version as soon as it has caught up: the
newest record of the key is signed again before the cleaner can act on the forgery.

The same store and writer keep the gateways' sessions on their own topic (``topic="sessions"``,
``gateway.sessions``): signed, healed and read the same way, but compacted *and* expired, and
read by no worker.

Bounds: the state is as large as the entities, which the gateway caps per identity (threads,
messages per thread, rules, ...); the consumer fetches at most ``max_records`` per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from nova.audit.facts import RecordSender
from nova.entities.models import AnyEntity, entity_key, from_event, to_event
from nova.entities.state import EntityState, Outcome, Stored
from nova.entities.view import Witness
from nova.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    NovaError,
    SchemaError,
    SignatureError,
    StartupError,
)
from nova.kafka.admin import all_partitions
from nova.kafka.tail import TopicReader, open_reader
from nova.records import EntityEvent, now_ms
from nova.settings import Settings
from nova.signing import Signer, Verifier
from schemas import TOPICS, SchemaSet, load_schema_set

log = logging.getLogger(__name__)

TOPIC = "entities"


class EntitiesUnavailableError(NovaError):
    """The entity store is not started or could not catch up in time (candidate for
    ``nova.errors``); retrying later can help."""

    retriable = True
    kafka_outage = True  # it catches up once the broker answers again


class EntityStore(EntityState):
    """An :class:`EntityState` kept current from Kafka; implements ``EntityView``."""

    def __init__(
        self,
        settings: Settings,
        schemas: SchemaSet | None = None,
        *,
        verifier: Verifier,
        sync_timeout_s: float = 15.0,
        max_records: int = 5000,
        topic: str = TOPIC,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.name = topic  # logical: "entities", or "sessions" (gateway.sessions)
        self.verifier = verifier
        self.healer: Callable[[str], Awaitable[None]] | None = None  # see module docstring
        self.heal_delay_s = 1.0
        self._tainted: set[str] = set()
        self._healing: dict[str, asyncio.Task[None]] = {}
        self._unadopted: dict[str, EntityEvent] = {}  # unsigned, and no signed state to keep
        self.sync_timeout_s = sync_timeout_s
        self.max_records = max_records
        self._schemas = schemas or load_schema_set()
        self._codec = self._schemas[TOPICS[topic].value_schema]
        self._topic = settings.topic(topic)
        self._consumer: Any = None
        self._offsets: Any = None
        self._readers: tuple[TopicReader, ...] = ()
        self._parts: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        # per witness partition: (offsets below this are covered, by these entity end offsets)
        self._covering: dict[tuple[str, int], tuple[int, Mapping[TopicPartition, int]]] = {}
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    # -- life cycle ----------------------------------------------------------------------
    async def start(self, timeout_s: float = 60.0) -> None:
        """Assign every partition, read from the beginning, return once caught up."""
        reader = await open_reader(self.settings, [self.name], self._schemas, assign=False)
        consumer = reader.consumer
        offsets: TopicReader | None = None
        try:
            # End offsets come from a second, never-fetching client: the broker answers the
            # requests of one connection in order, so on the tailing consumer's connection a
            # ListOffsets would queue behind the long-poll fetch (up to fetch_max_wait_ms).
            # For the same reason the first offsets are looked up before the assignment.
            offsets = await open_reader(self.settings, [self.name], self._schemas, assign=False)
            parts = await all_partitions(consumer, reader.names)
            if not parts:
                raise ConfigError(f"topic {self._topic} does not exist; run ensure_topics first")
            starts = await consumer.beginning_offsets(parts)
            consumer.assign(parts)
            reader.parts = parts
            for tp in parts:
                consumer.seek(tp, starts[tp])
                self._positions[tp] = starts[tp]
        except BaseException:
            if offsets is not None:
                await offsets.close()
            await reader.close()
            raise
        self._consumer, self._offsets, self._parts = consumer, offsets.consumer, parts
        self._readers = (offsets, reader)
        self._task = asyncio.create_task(self._run(consumer), name="entity-store")
        await self.sync(timeout_s=timeout_s)
        self._ready.set()
        self._heal_tainted()

    async def ready(self) -> None:
        """Wait until :meth:`start` has caught up with the topic (for callers started early)."""
        await self._ready.wait()

    async def stop(self) -> None:
        for healing in list(self._healing.values()):
            healing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await healing
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for reader in self._readers:
            await reader.close()
        self._readers = ()
        self._consumer = self._offsets = None

    @property
    def topic(self) -> str:
        return self._topic

    def encode(self, event: EntityEvent) -> bytes:
        return self._codec.encode(event.to_avro())

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [self._codec.header]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- the barrier ---------------------------------------------------------------------
    async def sync(self, witness: Witness | None = None, *, timeout_s: float | None = None) -> None:
        """Return once every record acknowledged before this call has been applied.

        With a ``witness`` (a lane's record, :class:`Witness`) the promise is the one the lane
        needs, every record acknowledged before *that record's request* was submitted, and an
        offsets request answered since that record was appended serves: a burst's records
        share one instead of asking the broker once each (issue 9: lane D spent ~8 ms of
        every request's 9 on it).
        """
        if self._offsets is None or self._task is None:
            raise EntitiesUnavailableError("the entity store is not started")
        ends = await self._ends_for(witness)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.sync_timeout_s if timeout_s is None else timeout_s)
        while True:
            progress = self._progress
            if all(self._positions.get(tp, 0) >= end for tp, end in ends.items()):
                return
            if self._task.done():
                raise EntitiesUnavailableError("the entity store stopped tailing")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EntitiesUnavailableError("the entity store could not catch up in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)

    async def _ends_for(self, witness: Witness | None) -> Mapping[TopicPartition, int]:
        """End offsets that cover ``witness``'s request: cached ones when an earlier request
        was sent after the record was appended, else fresh ones, cached for the records
        appended before this one was read.

        ``seen`` is taken *before* the offsets request is sent: every record below it on the
        witness's partition was appended earlier (the record in hand, or what the last fetch
        response reported as the partition's end), so its request was submitted earlier, and
        an entity record acknowledged before that is below the ends the broker answers.
        """
        if witness is not None:
            cached = self._covering.get(witness.key)
            if cached is not None and witness.offset < cached[0]:
                return cached[1]
            seen = max(witness.offset + 1, witness.highwater or 0)
        ends: dict[TopicPartition, int] = await self._offsets.end_offsets(self._parts)
        if witness is not None:
            self._covering[witness.key] = (seen, ends)
        return ends

    # -- tailing -------------------------------------------------------------------------
    async def _run(self, consumer: Any) -> None:
        while True:
            try:
                polled = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                for messages in polled.values():
                    for msg in messages:
                        self.apply_message(msg.key, msg.value, msg.headers)
                for tp in self._parts:  # past gaps too (compacted offsets), not just last + 1
                    self._positions[tp] = await consumer.position(tp)
                if self._ready.is_set():
                    self._heal_tainted()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("entity store poll failed")
                await asyncio.sleep(1)
                continue
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    def apply_message(
        self, key: bytes | None, value: bytes | None, headers: Any
    ) -> Outcome | None:
        """Decode, verify and fold one Kafka record; bad records are logged and skipped."""
        text_key = key.decode("utf-8", "replace") if key is not None else None
        if value is None:  # a real Kafka tombstone: Nova never writes one, none is signed
            log.warning("entity tombstone %s ignored: it carries no signature", text_key)
            self._taint(text_key)
            return "untrusted"
        try:
            event = EntityEvent.from_avro(self._codec.decode(value, headers))
        except (SchemaError, ValueError) as exc:
            log.warning("entity record %s skipped: %s", text_key, exc)
            self._taint(text_key)
            return "rejected"
        if text_key is not None and text_key != entity_key(event.entity_type, event.entity_id):
            log.warning("entity record %s skipped: key and body disagree", text_key)
            self._taint(text_key)
            return "rejected"
        try:
            self.verifier.verify_entity(event)
        except SignatureError as exc:
            log.warning("entity record %s ignored: %s", text_key, exc)
            self._taint(text_key)
            full = entity_key(event.entity_type, event.entity_id)
            if event.signature is None and self.last_state(full) is None:
                self._unadopted[full] = event
            return "untrusted"
        outcome = self.apply(event)
        if text_key is not None:
            if outcome == "applied":
                self._tainted.discard(text_key)
                self._unadopted.pop(text_key, None)
            elif outcome in ("stale", "rejected"):  # an older signed state replayed, a move
                self._taint(text_key)
        return outcome

    @property
    def unadopted(self) -> dict[str, EntityEvent]:
        """Keys whose records are all unsigned: written before signing existed (or forged).

        The view ignores them. The worker refuses to start while there are any (a rule written
        before the upgrade, ignored, would be a deny rule no longer enforced); ``nova entities
        adopt`` re-signs (or rejects) them after an operator reviewed them.
        """
        return dict(self._unadopted)

    # -- healing -------------------------------------------------------------------------
    def _taint(self, key: str | None) -> None:
        if key is not None:
            self._tainted.add(key)

    @property
    def tainted(self) -> frozenset[str]:
        """Keys whose newest record is not their trusted state (see the module docstring)."""
        return frozenset(self._tainted)

    def _heal_tainted(self) -> None:
        """Schedule the healer for every tainted key that has a trusted state to restore.

        It runs ``heal_delay_s`` later, and only if no trusted record of the key arrived
        meanwhile: an older signed version is also what the log shows while this process's own
        newer write is still in flight, and that one clears the taint on arrival.
        """
        if self.healer is None:
            return
        for key in sorted(self._tainted - self._healing.keys()):
            if self.last_state(key) is None:
                self._tainted.discard(key)  # never trusted: nothing to restore or to evict
                continue
            task = asyncio.create_task(self._heal_later(key, self.healer), name=f"heal-{key}")
            self._healing[key] = task

    async def _heal_later(self, key: str, healer: Callable[[str], Awaitable[None]]) -> None:
        try:
            await asyncio.sleep(self.heal_delay_s)
            if key in self._tainted:
                self._tainted.discard(key)
                await healer(key)
        finally:
            self._healing.pop(key, None)


async def start_or_refuse(store: EntityStore, component: str, needs: str) -> EntityStore:
    """Start ``store``, or refuse ``component``'s start-up naming what ``needs`` the entities.

    The guards built on the store (owner checks, identity rules, budgets) cannot work from a
    view that never loaded, so a store that cannot catch up stops the process at start-up
    with one line instead of failing (or, worse, answering "unknown") request after request.
    """
    try:
        await store.start()
    except (NovaError, KafkaError, OSError, TimeoutError) as exc:
        await store.stop()
        raise StartupError(
            component,
            f"{needs} cannot be built: the entity store could not load topic {store.topic}",
            f"check that Kafka answers at {store.settings.bootstrap_servers} (`nova kafka "
            "status`) and that the topics exist (`nova kafka start` creates them)",
            exc,
        ) from exc
    return store


class EntityWriter:
    """Produces entity records and applies them locally, so the writer reads its own write.

    Writes to one key are serialized within the process (the version is read, incremented and
    applied under a per-key lock). Updates first ``sync()`` so the next version follows every
    write already acknowledged by another process; two processes updating the same key at the
    same instant can still both claim a version, and then the log order decides.
    """

    def __init__(self, producer: RecordSender, store: EntityStore, signer: Signer) -> None:
        self.producer = producer
        self.store = store
        self.signer = signer
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def put(self, entity: AnyEntity, *, create: bool = False) -> Stored:
        """Write the entity's new state; with ``create``, refuse an id already used."""
        return await self._write(entity, deleted=False, create=create)

    async def update(self, entity: AnyEntity) -> Stored:
        """Write a new state of an entity that must still be live: one deleted meanwhile (by
        this process or another) is a :class:`~nova.errors.NotFoundError`, never revived."""
        return await self._write(entity, deleted=False, create=False, live=True)

    async def delete(self, entity: AnyEntity, *, live: bool = False) -> None:
        """Mark the entity deleted (its last state stays as body, for audit and owner pins);
        with ``live``, one already deleted meanwhile is a :class:`~nova.errors.NotFoundError`."""
        await self._write(entity, deleted=True, create=False, live=live)

    async def _write(
        self, entity: AnyEntity, *, deleted: bool, create: bool, live: bool = False
    ) -> Stored:
        etype, eid = entity.ENTITY_TYPE, entity.entity_id
        key = entity_key(etype, eid)
        async with self._lock(key):
            if create or self.store.version(etype, eid) > 0:
                # Catch up with writes other processes already made to this key (an update,
                # or an operator-chosen id that may be taken); fresh server ids skip this.
                await self.store.sync()
            version = self.store.version(etype, eid)
            if create and version > 0:
                raise ConflictError(f"{etype} {eid} already exists")
            if live and self.store.stored(etype, eid) is None:
                raise NotFoundError(f"no {etype} {eid}: it was deleted")
            pinned = self.store.pinned_owner(etype, eid)
            if pinned is not None and pinned != entity.owner_identity:
                raise ConflictError(f"{etype} {eid} cannot change owner")
            event = self.signer.sign_entity(
                to_event(entity, version=version + 1, ts=now_ms(), deleted=deleted)
            )
            await self.producer.send(self.store.name, key, event)
            outcome = self.store.apply(event)
            if outcome != "applied":
                log.error("own entity write %s was not applied locally: %s", key, outcome)
            return Stored(entity, event.version, event.ts)

    async def adopt(self, event: EntityEvent, *, reject: bool = False) -> EntityEvent:
        """Sign an unsigned record's state as the key's next version (``reject``: as deleted,
        so the key has a signed state, its owner pinned, and nothing live)."""
        entity = from_event(event)
        if entity is None:
            raise SchemaError(f"{event.entity_type} is not an entity type this build knows")
        key = entity_key(event.entity_type, event.entity_id)
        async with self._lock(key):
            version = max(event.version, self.store.version(event.entity_type, event.entity_id))
            signed = self.signer.sign_entity(
                to_event(entity, version=version + 1, ts=now_ms(), deleted=reject or event.deleted)
            )
            await self.producer.send(self.store.name, key, signed)
            self.store.apply_message(key.encode(), self.store.encode(signed), self.store.headers)
            return signed

    async def heal(self, key: str) -> None:
        """Re-sign a tainted key's last trusted state at the next version (never raises).

        No ``sync`` first: the store's tailing task runs the healer, and the state it holds is
        exactly the trusted one the forged record must not evict.
        """
        try:
            async with self._lock(key):
                last = self.store.last_state(key)
                if last is None:
                    return
                stored, deleted = last
                version = self.store.version(stored.entity.ENTITY_TYPE, stored.entity.entity_id)
                event = self.signer.sign_entity(
                    to_event(stored.entity, version=version + 1, ts=now_ms(), deleted=deleted)
                )
                await self.producer.send(self.store.name, key, event)
                self.store.apply(event)
                log.warning("entity %s re-signed at version %s after an untrusted record",
                            key, event.version)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not re-sign entity %s", key)
