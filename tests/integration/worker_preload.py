"""Imported once by the test suite's worker forkserver (``worker_fork``), never by a test.

Importing it does what every ``nova worker`` would otherwise do itself before reading a
record: import the command with Faust, the lanes and both providers' SDKs, and compile lane A's
lexicons. The forked workers inherit all of it.
"""

from __future__ import annotations

import nova.cli  # noqa: F401  (the command, its groups and their settings)
import streams.worker  # noqa: F401  (Faust, the lanes, both providers' SDKs)
from nova.domain.intent.classifier import warm_up

warm_up()
