"""Nova's LLM router: pure routing, limits, budgets and retry policy, plus SDK clients.

The pure modules (``registry``, ``cost``, ``routing``, ``health``, ``limits``, ``budgets``,
``retry``) do no I/O, so they are unit-tested without a network. ``clients`` and ``executor``
talk to providers only through the official SDKs, whose base URLs tests point at
``fake_server``.
"""
