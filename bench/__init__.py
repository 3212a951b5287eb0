"""Benchmarks: each module measures a project path against its baseline in the same run."""
