"""Alerts that reach people: the gateway delivers them to webhook destinations.

- :mod:`gateway.alerts.log`: the delivery log, the ``deliveries`` topic read back at start-up:
  what was delivered (or dead-lettered) is never delivered again;
- :mod:`gateway.alerts.delivery`: one delivery, with retries and backoff, signed, checked
  against SSRF, dead-lettered after the last attempt;
- :mod:`gateway.alerts.dispatcher`: reads the ``events`` topic in the ``<prefix>-alerts``
  consumer group (with several gateways each reads its share and no alert is sent twice),
  sweeps the checkpoint book for checkpoints waiting too long, asks :mod:`nova.alerts.detect`
  what to tell and hands each notice to the destinations that want it;
- :mod:`gateway.alerts.reports`: the scheduled cost and latency report.

Destinations are ``webhook`` entities, created over ``/api/v2/alerts/webhooks``
(``gateway.routes.alerts``).
"""
