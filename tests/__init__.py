"""Nova's tests, a package so each module has one name (``tests.integration.conftest``)
for pytest, for the modules that import its helpers, and for mypy."""
