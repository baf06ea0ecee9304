"""Route modules, one per API domain."""
