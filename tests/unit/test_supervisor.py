"""``nova up``'s supervision: a dead child is restarted with backoff and one line; one that keeps
dying stops the stack with one line; a stop request ends supervision at once."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from nova.llm.fake_server import FakeServerThread
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

    def stop(self) -> None:
        self.running = False


async def forever() -> None:
    await asyncio.Event().wait()


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
    gateway = asyncio.create_task(forever())
    supervising = asyncio.create_task(supervise([child], stop, gateway, QUICK, poll_s=0.01))
    while child.starts == 0:
        await asyncio.sleep(0.01)
    stop.set()
    assert await supervising == 0
    gateway.cancel()
    err = capsys.readouterr().err
    assert "nova: the worker (pid 1000) exited with signal SIGKILL; restarting it in" in err
    assert "nova: the worker is back (pid 1001)" in err


async def test_a_child_that_keeps_dying_stops_the_stack_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = Dies(3, deaths=100)
    gateway = asyncio.create_task(forever())
    assert await supervise([child], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    gateway.cancel()
    assert child.starts == QUICK.max_restarts
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("nova: the worker keeps dying (4 exits within 60 s, the last with exit "
                    "status 3); stopping")


async def test_a_gateway_that_ends_on_its_own_stops_the_stack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def crashes() -> None:
        raise OSError("address already in use")

    gateway = asyncio.create_task(crashes())
    assert await supervise([], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    assert "nova: the gateway stopped (address already in use); stopping" in capsys.readouterr().err


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
    gateway = asyncio.create_task(forever())
    assert await supervise([child], asyncio.Event(), gateway, QUICK, poll_s=0.01) == 1
    gateway.cancel()
    err = capsys.readouterr().err
    assert "could not be restarted: RuntimeError: the fake LLM server did not start" in err
    assert err.strip().splitlines()[-1].startswith("nova: the worker keeps dying")
