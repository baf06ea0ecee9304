"""Start-up refuses without a guard: the identity boundary guard (gateway), the entity view
(worker), and the ``nova`` processes exiting 2 with one line and no traceback.

The rate limiter, rules and budgets are covered in ``tests/unit/test_guards_fail_closed.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from gateway.services import start_services
from nova.entities.store import EntityStore
from nova.errors import StartupError
from nova.kafka.launcher import free_port
from nova.settings import Settings
from nova.signing import load_signer
from streams.services import start_worker_services
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def unreachable(settings: Settings) -> Settings:
    """The same settings with Kafka on a port nothing listens on."""
    return settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})


def nova(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nova", *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, **settings.to_env(), **env}, timeout=120, check=False,
    )


def assert_one_line_refusal(proc: subprocess.CompletedProcess[str], component: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"nova: {component} refuses to start: "), lines[0]
    return lines[0]


async def test_gateway_refuses_to_start_without_its_boundary_guard(settings: Settings) -> None:
    """Kafka answers, but the entity store the guard reads cannot load: no gateway."""
    store = EntityStore(unreachable(settings), verifier=load_signer(settings).verifier)
    with pytest.raises(StartupError) as refused:
        await start_services(settings, entities=store)
    message = str(refused.value)
    assert message.startswith("the gateway refuses to start: the identity boundary guard")
    assert "\n" not in message
    assert not store.running


async def test_worker_refuses_to_start_without_its_entity_view(settings: Settings) -> None:
    """Owners, identity rules and budgets all come from the entity view: no view, no worker."""
    load_signer(settings)  # the gateway's key pair exists: the entity view is what is missing
    with pytest.raises(StartupError) as refused:
        await start_worker_services(unreachable(settings))
    message = str(refused.value)
    assert message.startswith("the worker refuses to start: the entity view (owners, identity "
                              "rules and budgets) cannot be built")
    assert "\n" not in message


def test_nova_worker_without_the_gateways_public_key_exits_2(settings: Settings) -> None:
    """A worker that cannot tell the gateway's decisions from forged ones reads none of them:
    it refuses before it connects to anything."""
    proc = nova(settings, "worker")  # a data dir where no gateway ever ran
    line = assert_one_line_refusal(proc, "the worker")
    assert "the gateway's public signing key" in line
    assert "NOVA_SIGNING_PUBLIC_KEY" in line


def test_nova_gateway_with_a_rate_limit_that_cannot_limit_exits_2(settings: Settings) -> None:
    proc = nova(settings, "gateway", NOVA_GATEWAY_RPM_PER_IDENTITY="0")
    line = assert_one_line_refusal(proc, "the gateway")
    assert "no identity rate limiter" in line
    assert "NOVA_GATEWAY_RPM_PER_IDENTITY=0" in line


def test_nova_worker_without_kafka_for_its_entity_view_exits_2(settings: Settings) -> None:
    load_signer(settings)
    dead: Any = unreachable(settings)
    proc = nova(dead, "worker")
    line = assert_one_line_refusal(proc, "the worker")
    assert dead.bootstrap_servers in line
    assert "nova kafka start" in line


def test_nova_gateway_with_a_clickhouse_server_that_does_not_answer_exits_2(
    settings: Settings,
) -> None:
    """Kafka answers; the analytics store does not: one line naming the setting, no traceback
    (the CLI table test in ``tests/unit/test_cli_errors.py`` covers the commands without a
    broker)."""
    load_signer(settings)  # no "created the signing key" line: the refusal is all there is
    proc = nova(settings, "gateway", NOVA_CLICKHOUSE_DSN=f"http://127.0.0.1:{free_port()}",
                NOVA_GATEWAY_PORT=str(free_port()))
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("nova: ClickHouse at http://127.0.0.1:"), lines[0]
    assert "NOVA_CLICKHOUSE_DSN" in lines[0]
