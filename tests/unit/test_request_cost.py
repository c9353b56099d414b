"""The cached moto method list equals moto's own answer (lab_platform/request_cost.py)."""

from __future__ import annotations

from moto.core import responses, utils

from lab_platform import request_cost


def test_cached_method_names_match_moto_and_are_computed_once():
    from moto.ssm.responses import SimpleSystemManagerResponse

    patch = request_cost.patches()
    expected = utils.method_names_from_class(SimpleSystemManagerResponse)
    with patch:
        first = responses.method_names_from_class(SimpleSystemManagerResponse)
        second = responses.method_names_from_class(SimpleSystemManagerResponse)
    assert first == expected
    assert first is second  # one list per class, not recomputed per request
    assert responses.method_names_from_class is utils.method_names_from_class  # undone


def test_twisted_requests_skip_form_parsing():
    from types import SimpleNamespace

    from twisted.web import server

    channel = SimpleNamespace(site=SimpleNamespace(_parsePOSTFormSubmission=True), transport=None,
                              getPeer=lambda: None, getHost=lambda: None)
    with request_cost.patches():
        assert server.Request(channel)._parsePOSTFormSubmission is False
    assert server.Request(channel)._parsePOSTFormSubmission is True  # undone
