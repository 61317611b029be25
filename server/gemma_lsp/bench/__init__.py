"""Benchmarks that drive the real server and engine."""
