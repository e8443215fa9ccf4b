"""Benchmark scripts (not tests): they print figures and save them under benchmarks/results/."""
