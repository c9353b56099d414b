"""Resilience toolkit CLIs: chaos (failure injection), breaker, kill switch, continuous verification.

The libraries that run inside functions live in `lambdas/common/` (packaged into every zip and
installed into the lab's environment, see pyproject.toml); the CLIs import the very same code (e.g.
the fault validator) so what they accept the functions run.
"""
