"""Benchmarks behind `dreamloom bench ...`; their numbers go to BENCHMARKS.md."""
