"""Tamper evidence for the audit trail: a per-partition hash chain, pure and replayable."""
