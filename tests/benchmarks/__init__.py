"""Benchmarks of the reference against torch and JAX, and of the suite's own speed (README, "Benchmarks")."""
