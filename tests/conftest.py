"""Shared fixtures. Fakes live in tests/fakes/; each test module may add its own fixtures."""
