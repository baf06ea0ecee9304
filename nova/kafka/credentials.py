"""The SCRAM credentials of the broker Nova runs: one principal per kind of process.

The launcher generates them once, before it formats the broker's storage (they go into the
metadata log with ``kafka-storage format --add-scram``), and keeps each password in its own
file under ``<data_dir>/kafka/credentials/`` (directory 0700, files 0600): ``nova-admin`` (the
launcher itself, the only super user), ``nova-gateway``, ``nova-worker`` and ``nova-tools``.
A process finds its password there by the principal it runs as (``Settings.kafka_client``).

On one machine every process of the user can read every file; what the principals separate is
what each *network client* may do (see :mod:`nova.kafka.acls`), so that reaching the port is no
longer enough to approve a payment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import get_args

from nova.errors import ConfigError
from nova.settings import KafkaClient

ROLES: tuple[KafkaClient, ...] = get_args(KafkaClient)


def username(role: KafkaClient) -> str:
    """The SCRAM user (and ACL principal ``User:<name>``) of ``role`` on Nova's broker."""
    return f"nova-{role}"


def password_file(directory: Path, role: KafkaClient) -> Path:
    return directory / username(role)


def generate(directory: Path) -> dict[KafkaClient, str]:
    """Create a random password for every role that has none yet; return them all.

    Files are created with mode 0600 in a 0700 directory and never rewritten, so a second call
    (or a crash halfway) keeps the passwords already in the broker's metadata.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for role in ROLES:
        path = password_file(directory, role)
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return {role: read_password(directory, role) for role in ROLES}


def exists(directory: Path) -> bool:
    return all(password_file(directory, role).exists() for role in ROLES)


def read_password(directory: Path, role: KafkaClient) -> str:
    path = password_file(directory, role)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no Kafka password for {username(role)} in {directory}: start Nova's broker once "
            "(`nova kafka start` or `nova up`) to generate its credentials, or set "
            "NOVA_KAFKA_CREDENTIALS_DIR to the directory of the broker you use"
        ) from None
    except PermissionError:
        raise ConfigError(f"{path} is not readable by this user") from None
    if not value:
        raise ConfigError(f"{path} is empty: delete it and the broker's storage to start over")
    return value
