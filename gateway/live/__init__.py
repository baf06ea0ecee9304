"""Live events over a WebSocket (``/api/v2/ws``), fed from the Kafka topics.

Four small parts, one job each:

- :mod:`gateway.live.messages`: the documented wire schema (what a client sends and receives,
  the close codes), pure;
- :mod:`gateway.live.adapter`: turns Kafka records into those messages, in order per request;
  the only module that knows the record layout of the topics it reads;
- :mod:`gateway.live.hub`: who is subscribed to what, the bounded replay buffer and each
  subscriber's bounded queue; never waits for a client;
- :mod:`gateway.live.feed`: tails the topics (every partition, so any gateway serves every
  identity) and hands records to the adapter, then the hub.

The route itself is ``gateway.routes.live``; the protocol is described in ``docs/live.md``.
"""
