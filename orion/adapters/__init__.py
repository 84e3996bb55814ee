"""Adapters: the only modules that import each infrastructure library (one module per library)."""
