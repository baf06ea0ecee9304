"""Shared test configuration: nothing here starts a service (see integration/conftest.py).

Hypothesis runs without its per-example deadline: a deadline is a timing assertion, and on a
shared, loaded machine it fails tests whose behaviour is right. Speed is measured in bench/.
"""

from hypothesis import settings

settings.register_profile("nova", deadline=None)
settings.load_profile("nova")
