"""Credentials: HS256 JWTs pinned on the server and salted-hash API keys, no storage or HTTP."""
