"""The chaos run of ``make chaos`` in its short form: ``nova up`` loses nothing, doubles nothing
and forks no chain while its worker is SIGKILLed three times and its broker once.

``bench/chaos.py`` says how it is modelled on Kafka's transactions system test and what each
count means. ``make chaos`` seeds 10,000 requests and kills the worker three times and the
broker once; here, to keep ``make test`` within its time on a two-core machine, a few hundred
requests (``NOVA_CHAOS_REQUESTS``) go through one fault of each kind (``SHORT_FAULTS``): each
recovery costs some 20 s there whatever the load. The counts print with ``-s`` and in the
failure message.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.chaos import SHORT_FAULTS, run_chaos

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("NOVA_CHAOS_REQUESTS", "200"))


@pytest.mark.timeout(3600)
async def test_nothing_is_lost_doubled_or_forked_when_worker_and_broker_are_killed(
    tmp_path: Path,
) -> None:
    report = await run_chaos(REQUESTS, tmp_path, faults=SHORT_FAULTS)
    counts = "\n".join(report.lines())
    print(counts)
    assert report.accepted == report.requests, counts
    assert report.input == report.output == report.accepted, counts
    assert (report.lost, report.unexpected, report.duplicated) == (0, 0, 0), counts
    # every request was called once, counted by the fake provider as the calls arrive; one cut
    # off by a SIGKILL is answered interrupted, never called twice (NOVA_LLM_AFTER_CRASH=fail)
    assert report.provider_calls == report.output, counts
    assert report.max_calls_per_request == 1, counts
    assert report.requests_called_twice == 0, counts
    assert report.audit_intact, counts
    assert report.replay_differences == [], counts
    assert [f.what for f in report.faults] == ["worker", "broker"], counts
    assert all(f.recovery_s is not None for f in report.faults), counts
