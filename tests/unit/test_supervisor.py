"""``nova up``'s supervision: a dead child, or a gateway whose server ended, is restarted with
backoff and one line; one that keeps dying stops the stack with one line; a stop request ends
supervision at once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest

from nova.cli.stack import worker_children
from nova.llm.fake_server import FakeServerThread
from nova.settings import load_settings
from nova.supervisor import (
    FakeProvidersChild,
    RestartBudget,
    RestartPolicy,
    describe_exit,
    supervise,
)

QUICK = RestartPolicy(first_backoff_s=0.01, max_backoff_s=0.04, max_restarts=3, window_s=60)


class Dies:
    """A child that ends with ``code`` each time it has run for one poll."""

    name = "worker"

    def __init__(self, code: int, deaths: int) -> None:
        self.code, self.deaths_left = code, deaths
        self.starts = 0
        self.running = True

    @property
    def pid(self) -> int:
        return 1000 + self.starts

    def exited(self) -> int | None:
        if self.running and self.deaths_left > 0:
            self.deaths_left -= 1
            self.running = False
        return None if self.running else self.code

    def start(self) -> None:
        self.starts += 1
        self.running = True

    def stop(self, timeout_s: float = 8.0) -> None:
        self.running = False


class Serves:
    """A gateway served by a task here whose server ends (with ``error``, or returning) the
    first ``ends`` times it serves."""

    name = "gateway"

    def __init__(self, ends: int = 0, error: Exception | None = None) -> None:
        self.ends_left, self.error = ends, error
        self.starts = 0
        self._task = asyncio.create_task(self._serve())

    @property
    def task(self) -> asyncio.Task[None]:
        return self._task

    async def _serve(self) -> None:
        if self.ends_left > 0:
            self.ends_left -= 1
            if self.error is not None:
                raise self.error
            return
        await asyncio.Event().wait()

    async def start(self) -> None:
        self.starts += 1
        self._task = asyncio.create_task(self._serve())

    def stop(self) -> None:
        self._task.cancel()


def test_backoff_doubles_up_to_its_cap_and_gives_up_beyond_the_restarts_allowed() -> None:
    budget = RestartBudget(RestartPolicy(first_backoff_s=1, max_backoff_s=4, max_restarts=4,
                                         window_s=100))
    assert [budget.record_death(t) for t in (0, 1, 2, 3)] == [1, 2, 4, 4]
    assert budget.record_death(4) is None


def test_deaths_older_than_the_window_are_forgiven() -> None:
    budget = RestartBudget(RestartPolicy(first_backoff_s=1, max_restarts=1, window_s=10))
    assert budget.record_death(0) == 1
    assert budget.record_death(20) == 1  # the first death is out of the window


def test_an_exit_reads_as_a_status_or_a_signal() -> None:
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"


async def test_a_killed_child_is_restarted_with_a_line_naming_it_and_how_it_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child, stop = Dies(-signal.SIGKILL, deaths=1), asyncio.Event()
    gateway = Serves()
    supervising = asyncio.create_task(supervise([child], stop, gateway, QUICK, poll_s=0.01))
    while child.starts == 0:
        await asyncio.sleep(0.01)
    stop.set()
    assert await supervising == 0
    gateway.stop()
    err = capsys.readouterr().err
    assert "nova: the worker (pid 1000) exited with signal SIGKILL; restarting it in" in err
    assert "nova: the worker is back (pid 1001)" in err


async def test_a_child_that_keeps_dying_stops_the_stack_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = Dies(3, deaths=100)
    gateway = Serves()
    assert await supervise([child], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    gateway.stop()
    assert child.starts == QUICK.max_restarts
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("nova: the worker keeps dying (4 exits within 60 s, the last with exit "
                    "status 3); stopping")


async def test_a_gateway_whose_server_ends_is_restarted_in_process_with_a_line_saying_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway, stop = Serves(ends=1, error=OSError("address already in use")), asyncio.Event()
    supervising = asyncio.create_task(supervise([], stop, gateway, QUICK, poll_s=0.01))
    while gateway.starts == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # serving again: nothing more to restart
    stop.set()
    assert await supervising == 0
    assert gateway.starts == 1
    assert not gateway.task.done()
    gateway.stop()
    err = capsys.readouterr().err
    assert ("nova: the gateway stopped (OSError: address already in use); restarting it in 0 s"
            in err)
    assert "nova: the gateway is back" in err


async def test_a_gateway_that_keeps_ending_stops_the_stack_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = Serves(ends=100)
    assert await supervise([], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    assert gateway.starts == QUICK.max_restarts
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("nova: the gateway keeps stopping (4 times within 60 s, the last: its "
                    "server exited); stopping")


def test_fake_providers_that_stopped_come_back_on_the_same_port() -> None:
    """The worker was told the fake providers' URL, so a restart must keep it."""
    child = FakeProvidersChild(FakeServerThread().start())
    url = child.server.url
    try:
        assert child.exited() is None
        child.server.stop()  # as if its thread had crashed
        assert child.exited() == 1
        child.start()
        assert child.exited() is None
        assert child.server.url == url
        assert httpx.get(f"{url}/_calls", timeout=10).status_code == 200
    finally:
        child.stop()


class CannotStart(Dies):
    def start(self) -> None:
        self.starts += 1
        raise RuntimeError("the fake LLM server did not start")


async def test_a_child_that_cannot_be_restarted_counts_as_dying_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = CannotStart(1, deaths=1)
    gateway = Serves()
    assert await supervise([child], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    gateway.stop()
    err = capsys.readouterr().err
    assert "could not be restarted: RuntimeError: the fake LLM server did not start" in err
    assert err.strip().splitlines()[-1].startswith("nova: the worker keeps dying")


class FakeProcess:
    """A worker process as ``WorkerChild`` sees it: a pid, and a return code once ended."""

    pids = iter(range(2000, 3000))

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.pid = env, next(self.pids)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def test_nova_workers_makes_that_many_workers_each_its_own_static_member() -> None:
    settings = load_settings(workers=3, topic_partitions=4, worker_instance="7")
    started: list[FakeProcess] = []

    def spawn(env: dict[str, str]) -> Any:
        started.append(FakeProcess(env))
        return started[-1]

    workers = worker_children(settings, spawn)
    for worker in workers:
        worker.start()
    assert [w.name for w in workers] == ["worker 1", "worker 2", "worker 3"]
    assert [p.env["NOVA_WORKER_INSTANCE"] for p in started] == ["7", "7.1", "7.2"]
    assert [w.name for w in worker_children(load_settings(), spawn)] == ["worker"]


def test_more_workers_than_partitions_is_refused_naming_both_settings() -> None:
    with pytest.raises(ValueError, match="NOVA_WORKERS=5 is more than NOVA_TOPIC_PARTITIONS=4"):
        load_settings(workers=5, topic_partitions=4)


async def test_each_of_several_workers_is_supervised_and_only_the_dead_one_restarted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started: list[FakeProcess] = []

    def spawn(env: dict[str, str]) -> Any:
        started.append(FakeProcess(env))
        return started[-1]

    workers = worker_children(load_settings(workers=2), spawn)
    for worker in workers:
        worker.start()
    first, second = started
    second.returncode = -signal.SIGKILL
    stop, gateway = asyncio.Event(), Serves()
    supervising = asyncio.create_task(supervise(workers, stop, gateway, QUICK, poll_s=0.01))
    while len(started) < 3:
        await asyncio.sleep(0.01)
    stop.set()
    assert await supervising == 0
    gateway.stop()
    assert started[2].env["NOVA_WORKER_INSTANCE"] == second.env["NOVA_WORKER_INSTANCE"]
    assert workers[0].pid == first.pid  # the live one left alone
    assert workers[1].pid == started[2].pid
    err = capsys.readouterr().err
    assert f"nova: the worker 2 (pid {second.pid}) exited with signal SIGKILL; restarting" in err
    assert f"nova: the worker 2 is back (pid {started[2].pid})" in err
    assert "worker 1" not in err
