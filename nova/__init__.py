"""Nova: a governance-first LLM request pipeline on Kafka.

Shared core used by every component: settings, the exception tree, message records,
the Kafka launcher and the pure domain logic (intent, governance, routing, costs).
"""

__version__ = "0.1.0"
