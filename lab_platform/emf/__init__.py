"""Embedded Metric Format: metrics printed in logs become CloudWatch and Prometheus metrics."""
