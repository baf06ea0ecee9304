"""Alerts that reach people: what is worth telling (pure), and how it is worded and signed.

The gateway's dispatcher (``gateway.alerts``) reads the events topic and the checkpoint book,
asks :mod:`nova.alerts.detect` what to tell, and delivers each :class:`~nova.alerts.notices.
Notice` to the webhook destinations that want it (:mod:`nova.alerts.payloads` writes the body,
:mod:`nova.alerts.urls` says which URLs a destination may have). Everything here is free of
I/O and unit-tested.
"""
