"""Platform metrics in Prometheus exposition, named as in docs/METRICS.md."""
