"""Asynchronous invocations (InvocationType=Event, EventBridge targets) scaled as on AWS."""
