"""Reproducible throughput and memory measurements; each prints a ratio to a baseline."""
