"""Benchmarks: load generators for a running Orion (`orion up`); loopback only, bounded."""
