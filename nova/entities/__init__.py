"""Event-sourced entities: identities, spheres, API keys, threads, dataspaces, rules."""
