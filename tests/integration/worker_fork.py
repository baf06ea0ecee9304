"""Lane workers for the integration tests, forked from a process that has imported them once.

A worker started as ``python -m nova worker`` spends seconds of CPU before it reads a record:
importing Faust and both providers' SDKs, and compiling lane A's lexicons. The suite starts
about a hundred workers on two cores, so that was minutes of the run, and the CPU it took made
every other test's deadlines tighter. Here a forkserver (``multiprocessing``) imports
``nova worker``'s code and warms the lexicons once; each test's worker is a fork of it that
runs the same command, ``nova worker``, with the test's environment and its own log file.

What the tests rely on is kept: a worker is a real process of its own, with its own pid, that
tests may SIGKILL or SIGSTOP and restart, and that dies with the test session. What is not
exercised here (the interpreter starting, the command's imports) is exercised by every test
that runs ``nova up`` or another ``nova`` command as a subprocess.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from multiprocessing.context import ForkServerContext
from pathlib import Path

_context: ForkServerContext | None = None


def _context_once() -> ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["tests.integration.worker_preload"])
    return _context


def start_forkserver() -> None:
    """Start the forkserver now (it preloads while the caller does something else)."""
    from multiprocessing import forkserver

    _context_once()
    forkserver.ensure_running()


def _run(env: dict[str, str], cwd: str, log_path: str) -> None:
    """The child: become ``nova worker`` with the test's environment, writing to its log."""
    from nova.kafka.launcher import _die_with_parent

    _die_with_parent()  # the forkserver ends with the session; its workers with it
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = ["nova", "worker"]
    from nova.cli import main

    main()


class ForkedWorker:
    """A forked worker behind the part of :class:`subprocess.Popen` the tests use."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(["nova", "worker"], timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def fork_worker(env: dict[str, str], cwd: Path, log_path: Path) -> ForkedWorker:
    """Start ``nova worker`` as a fork of the preloaded server."""
    process = _context_once().Process(target=_run, args=(env, str(cwd), str(log_path)),
                                      name="nova-worker")
    process.start()
    return ForkedWorker(process)
