"""Pure domain logic (intent, context, encoding, governance, checkpoints): no I/O, unit-tested."""
