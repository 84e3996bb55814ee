"""The orchestrator's state machine and the ports it drives (no Ray, Kafka or Redis here)."""
