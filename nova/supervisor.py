"""``nova up`` keeps its children alive: a child that dies is reaped and restarted with backoff.

The children are the broker (unless Kafka is external), the lane worker and, without provider
keys, the fake providers (a server thread), and the gateway, which runs in ``nova up``'s own
process (it owns the embedded ClickHouse) as a task: one whose server ends on its own is
restarted there, its services rebuilt, under the same policy as the processes. Each child
process runs in a session of its own, so a terminal's Ctrl-C reaches ``nova up`` alone, which
then stops gateway and worker, then the broker (every client leaves before the broker goes),
and each child is asked by the kernel to stop if ``nova up`` dies (``PR_SET_PDEATHSIG``).

The supervisor polls every child (``Popen.poll`` reaps it, so no zombie is left) and restarts a
dead one after a backoff that doubles from :attr:`RestartPolicy.first_backoff_s`, with one log
line naming the child, its pid and how it ended. A child that dies more than
:attr:`RestartPolicy.max_restarts` times within :attr:`RestartPolicy.window_s` is not a hiccup
but a fault a restart will not fix: the stack stops with one line saying so, and ``nova up``
exits 1. The policy is pure (the clock is passed in), so it is unit-tested without processes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nova.errors import one_line
from nova.kafka.launcher import Broker
from nova.llm.fake_server import FakeServerThread

log = logging.getLogger(__name__)


# How long a child may take to stop cleanly before it is killed, unless its stop is given less
# (``nova up`` shares one budget out, nova.cli.stack.STOP_S): a clean stop takes a second or
# two; a worker killed loses nothing (its uncommitted records are read again), and a broker
# killed recovers its log at the next start.
STOP_BUDGET_S = 8.0


@dataclass(frozen=True)
class RestartPolicy:
    """How often a child may die before the stack gives up on it."""

    first_backoff_s: float = 1.0
    max_backoff_s: float = 15.0
    max_restarts: int = 5
    window_s: float = 120.0


@dataclass
class RestartBudget:
    """The deaths of one child within the policy's window."""

    policy: RestartPolicy
    deaths: list[float] = field(default_factory=list)

    def record_death(self, now: float) -> float | None:
        """The backoff before restarting, or None when the child keeps dying (give up)."""
        self.deaths = [t for t in self.deaths if now - t < self.policy.window_s] + [now]
        if len(self.deaths) > self.policy.max_restarts:
            return None
        backoff: float = self.policy.first_backoff_s * 2.0 ** (len(self.deaths) - 1)
        return min(self.policy.max_backoff_s, backoff)


def describe_exit(returncode: int) -> str:
    """``exit status 1`` or ``signal SIGKILL``, as an operator reads it."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class Child(Protocol):
    """One process ``nova up`` runs and restarts."""

    name: str

    @property
    def pid(self) -> int | None: ...

    def exited(self) -> int | None:
        """Its return code once it has ended (and is reaped), else None."""

    def start(self) -> None:
        """Start it (again); blocks until it is usable."""

    def stop(self, timeout_s: float = STOP_BUDGET_S) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout_s``); blocks until it is gone."""


class WorkerChild:
    """A lane worker: ``python -m nova worker``, started by ``spawn``; ``name`` tells it apart
    from the others when ``nova up`` runs several (``NOVA_WORKERS``)."""

    def __init__(self, spawn: Callable[[], subprocess.Popen[bytes]], name: str = "worker") -> None:
        self.name = name
        self._spawn = spawn
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def start(self) -> None:
        self.process = self._spawn()

    def stop(self, timeout_s: float = STOP_BUDGET_S) -> None:
        if self.process is not None:
            terminate(self.process, timeout_s)


class BrokerChild:
    """The local Kafka broker (:class:`~nova.kafka.launcher.Broker`), attached to us."""

    name = "broker"

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    @property
    def pid(self) -> int | None:
        process = self.broker.process
        return process.pid if process is not None else None

    def exited(self) -> int | None:
        process = self.broker.process
        return process.poll() if process is not None else None

    def start(self) -> None:
        self.broker.start(attached=True)

    def stop(self, timeout_s: float = STOP_BUDGET_S) -> None:
        self.broker.abort_start()
        self.broker.stop(timeout_s)


class FakeProvidersChild:
    """The fake LLM providers: a server thread in this process, restarted on the same port
    (the worker was told its URL)."""

    name = "fake providers"
    pid = None  # a thread of nova up itself

    def __init__(self, server: FakeServerThread) -> None:
        self.server = server

    def exited(self) -> int | None:
        return None if self.server.alive else 1

    def start(self) -> None:
        self.server.stop()  # releases the port
        self.server = FakeServerThread(self.server.host, self.server.port).start()

    def stop(self, timeout_s: float = STOP_BUDGET_S) -> None:
        self.server.stop()


class ServedHere(Protocol):
    """A part of the stack served by a task of ``nova up``'s own process (the gateway)."""

    name: str

    @property
    def task(self) -> asyncio.Task[None]:
        """The task serving it; done once it has ended, on its own or not."""

    async def start(self) -> None:
        """Start it again, releasing what the ended one held first; returns once it serves."""


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; the process is reaped either way."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def say(message: str) -> None:
    """One line on stderr, where ``nova up``'s operator looks."""
    print(f"nova: {message}", file=sys.stderr, flush=True)


async def supervise(
    children: Sequence[Child],
    stop: asyncio.Event,
    gateway: ServedHere,
    policy: RestartPolicy | None = None,
    poll_s: float = 0.5,
) -> int:
    """Watch ``children`` and ``gateway`` until ``stop`` is set (0) or one cannot be kept alive
    (1)."""
    policy = policy or RestartPolicy()
    budgets = {child.name: RestartBudget(policy) for child in children}
    gateway_budget = RestartBudget(policy)
    waiter = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            await asyncio.wait({waiter, gateway.task}, timeout=poll_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                return 0
            if gateway.task.done() and not await _keep_serving(gateway, gateway_budget, stop,
                                                               waiter):
                return 1
            for child in children:
                if not await _keep_alive(child, budgets[child.name], stop, waiter):
                    return 1
        return 0
    finally:
        waiter.cancel()


async def _keep_serving(
    part: ServedHere, budget: RestartBudget, stop: asyncio.Event, waiter: asyncio.Task[bool]
) -> bool:
    """Start ``part`` again after its task ended; False when it keeps ending."""
    task = part.task
    error = None if task.cancelled() else task.exception()
    why = one_line(error) if error is not None else "its server exited"
    backoff = budget.record_death(time.monotonic())
    if backoff is None:
        say(f"the {part.name} keeps stopping ({len(budget.deaths)} times within "
            f"{budget.policy.window_s:.0f} s, the last: {why}); stopping")
        return False
    say(f"the {part.name} stopped ({why}); restarting it in {backoff:.0f} s")
    await asyncio.wait({waiter}, timeout=backoff)
    if stop.is_set():
        return True
    try:
        await part.start()
    except Exception as exc:  # noqa: BLE001 - a failed start is one more death, not a crash
        say(f"the {part.name} could not be restarted: {one_line(exc)}")
        return True  # its task is still done: the next poll counts another death
    say(f"the {part.name} is back")
    return True


async def _keep_alive(
    child: Child, budget: RestartBudget, stop: asyncio.Event, waiter: asyncio.Task[bool]
) -> bool:
    """Restart ``child`` if it has died; False when it keeps dying."""
    code = child.exited()
    if code is None:
        return True
    pid = child.pid
    backoff = budget.record_death(time.monotonic())
    if backoff is None:
        policy = budget.policy
        say(f"the {child.name} keeps dying ({len(budget.deaths)} exits within "
            f"{policy.window_s:.0f} s, the last with {describe_exit(code)}); stopping")
        return False
    which = f"the {child.name}" + (f" (pid {pid})" if pid is not None else "")
    say(f"{which} exited with {describe_exit(code)}; restarting it in {backoff:.0f} s")
    await asyncio.wait({waiter}, timeout=backoff)
    if stop.is_set():
        return True
    starting = asyncio.create_task(asyncio.to_thread(child.start))
    starting.add_done_callback(_retrieve)  # a start aborted by a stop ends quietly
    await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        return True  # stopping: the caller stops the child, which aborts its start
    try:
        starting.result()
    except Exception as exc:  # noqa: BLE001 - any failed start is one more death, not a crash
        say(f"the {child.name} could not be restarted: {one_line(exc)}")
        return True  # still dead: the next poll counts another death
    say(f"the {child.name} is back" + (f" (pid {child.pid})" if child.pid is not None else ""))
    return True


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
