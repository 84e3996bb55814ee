"""Ray actors: thin shells that build adapters and call the core (shards, orchestrator)."""
