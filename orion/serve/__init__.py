"""Orion's HTTP API: a FastAPI app (`orion.serve.app.create_app`) that Ray Serve hosts.

- app:          create_app(deps, open_deps) and the lifespan that opens / closes deps
                (orion.bootstrap wires the real ones; this package imports no adapter).
- ports:        Protocols of what the API needs (producer, idempotency store, ledger) and
                the ApiDeps bundle; real ones in orion/adapters/api_*.py, fakes in tests.
- acceptance:   claim an id, produce, answer: exactly-once acceptance under concurrency.
- idempotency:  canonical bodies and the values kept under `orion:idem:{id}`.
- outcomes:     waiters for final outcomes, fed by the results-topic thread.
- schemas, fields, jsonbody, convert, errors: bodies, exact parsing, conversions, 4xx.
- routes/:      thin handlers, one module per resource.
"""
