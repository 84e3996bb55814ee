"""Adapters: the only modules that import the infrastructure libraries.

Grouped by who uses them, so each stays small, rather than one module per library:
- kafka-python: kafka (admin, RecordProducer), kafka_source (the orchestrator's consumer),
  kafka_progress (settlement progress), api_kafka and api_progress (the API), ledger_audit;
- psycopg: postgres (admin, migrations), ledger (the shards), ledger_seed, ledger_audit,
  api_postgres (the API);
- redis-py: redis (admin), locks (the orchestrator), api_redis (the API);
- Ray's metrics: metrics. (Ray's core API is in orion/actors/runtime.py and the Serve
  deployment, which host the code rather than adapt a service.)
"""
