"""The HTTP edge: auth, identity boundary, request submission, checkpoints, monitoring."""
