"""Shared test configuration: nothing here starts a service (see integration/conftest.py)."""
