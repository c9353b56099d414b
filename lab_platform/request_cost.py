"""Per-request work LocalStack 4.14 does that the lab never uses, taken out of the hot path.

Under a load run LocalStack is one GIL-bound process serving every request of both topologies,
so CPU per request decides whether the emulator or the courier's usage plan is the bottleneck
(the article needs the latter). Profiled with py-spy during a smoke run:

- Twisted parses the Content-Type of every POST with `email.message.EmailMessage`, to fill
  `request.args` for HTML forms (about 7 % of LocalStack's CPU at the smoke peak). LocalStack
  reads bodies through WSGI, never `request.args`.
  Here: Twisted's form parsing is off (`parsePOSTFormSubmission=False`).
- moto lists a response class's methods with `inspect.getmembers` on every dispatched request
  (about 4 %; SSM GetParameter, Logs, DynamoDB). Classes do not change at run time.
  Here: the list is cached per class.
"""

from __future__ import annotations

import functools

from localstack.utils.patch import Patch, Patches


def _twisted_form_parsing_off() -> Patch:
    from twisted.web import server

    original = server.Request.__init__

    @functools.wraps(original)
    def init(self, channel, *args, parsePOSTFormSubmission=None, **kwargs):  # noqa: N803 - Twisted's name
        original(self, channel, *args, parsePOSTFormSubmission=False, **kwargs)

    return Patch(server.Request, "__init__", init)


def _moto_method_names_cached() -> Patch:
    from moto.core import responses, utils

    # callers only iterate or test membership, so one shared list per class is safe
    cached = functools.lru_cache(maxsize=None)(utils.method_names_from_class)
    return Patch(responses, "method_names_from_class", cached)


def patches() -> Patches:
    return Patches([_twisted_form_parsing_off(), _moto_method_names_cached()])
