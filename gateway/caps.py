"""The size caps of what an identity's threads and meetings hold, shared by their routes and
by the applier of agents' writes (``gateway.agent_writes``), so a write is held to the same
caps whichever way it comes. Every child is held in memory by each gateway and worker and may
be sent to a provider, hence the caps."""

from __future__ import annotations

from typing import Final

MAX_MESSAGES_PER_THREAD: Final = 2000
MAX_MESSAGE_TEXT: Final = 32_000
MAX_ENTRIES_PER_MEETING: Final = 1000
MAX_ENTRY_TEXT: Final = 16_000
