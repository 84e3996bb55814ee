"""Orion: a durable money-transfer processor."""
