"""Benchmarks: the real server and engine driven like an editor, and micro-benchmarks of one part."""
