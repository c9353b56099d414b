"""EventBridge API destinations as AWS runs them: rate limit, retries, dead-letter queue."""
