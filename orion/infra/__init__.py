"""Native infrastructure: Kafka (KRaft), PostgreSQL, Redis and Prometheus without Docker."""
