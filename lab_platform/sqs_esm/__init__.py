"""SQS event source mappings that run batches concurrently, as AWS does."""
