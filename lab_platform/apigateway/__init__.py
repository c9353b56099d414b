"""API Gateway REST (v1) throttling and quotas as AWS enforces them."""
