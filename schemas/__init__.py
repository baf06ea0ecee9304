"""Nova's contracts: topic declarations and Avro schemas.

Every producer and consumer takes topic names, keys, retention and value schemas from here,
never from its own constants, so the contract lives in one place.
"""

from schemas.codec import SCHEMA_HEADER, AvroCodec, SchemaSet, load_schema_set
from schemas.topics import TOPICS, TopicSpec, topic_spec

__all__ = [
    "SCHEMA_HEADER",
    "TOPICS",
    "AvroCodec",
    "SchemaSet",
    "TopicSpec",
    "load_schema_set",
    "topic_spec",
]
