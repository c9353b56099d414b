"""Which topologies `make experiment` runs: the chosen ones and the comparison pair they are judged
against (report.__main__ widens `$TOPOLOGIES`; report.experiment refuses a lab that lacks one)."""

from __future__ import annotations

import os

import pytest

from lab_kernel import endpoints as ep
from lab_kernel import topologies
from report import __main__ as cli
from report.experiment import experiment


def _lab(names: tuple[str, ...]) -> ep.Endpoints:
    """An endpoints record of a lab running `names` (nothing answers at these addresses)."""
    cat = topologies.catalogue()
    return ep.parse({
        "localstack_url": "http://127.0.0.1:9/", "prometheus_url": None,
        "topologies": {n: {"account": cat.get(n).account, "region": "us-east-1"} for n in names},
    })


def test_the_choice_is_widened_to_the_pair_and_said(monkeypatch, capsys):
    cat = topologies.catalogue()
    monkeypatch.setenv(topologies.SELECTION_VARIABLE, cat.remedy)
    cli._judge_against_the_pair()
    assert os.environ[topologies.SELECTION_VARIABLE] == ",".join(cat.pair)
    assert f"adding {cat.storm}" in capsys.readouterr().out


def test_a_choice_that_has_the_pair_is_left_alone(monkeypatch, capsys):
    monkeypatch.setenv(topologies.SELECTION_VARIABLE, "both")
    cli._judge_against_the_pair()
    assert os.environ[topologies.SELECTION_VARIABLE] == "both"
    assert capsys.readouterr().out == ""


def test_a_lab_without_a_chosen_topology_is_refused_in_one_line(monkeypatch):
    cat = topologies.catalogue()
    monkeypatch.setenv(topologies.SELECTION_VARIABLE, "both")
    with pytest.raises(ep.LabNotUp) as error:
        experiment(_lab((cat.remedy,)), check_only=True)
    message = str(error.value)
    assert "\n" not in message and cat.storm in message.split(" not up")[0]
    assert f"{topologies.SELECTION_VARIABLE}={','.join(cat.pair)} make up" in message


class _Sampler:
    """What the drain reads of the platform sampler: its last scrape."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, float]] = {"orders_accepted_total": {}}


def test_the_drain_waits_for_what_an_api_destination_holds_and_no_longer():
    from report.experiment import Drainer

    wired = [t.name for t in topologies.catalogue().topologies if t.wiring == topologies.API_DESTINATION]
    if not wired:
        pytest.skip("the catalogue has no API destination topology")
    name = wired[0]
    sampler = _Sampler()
    drainer = Drainer(_lab((name,)), sampler, quiet=5)
    sampler.latest = {"orders_accepted_total": {name: 40.0}, "api_destination_backlog": {name: 12.0}}
    state = drainer.state()
    assert state.queued[name] == 12 and not state.idle() and not state.accounted()
    sampler.latest = {"orders_accepted_total": {name: 40.0}, "api_destination_backlog": {name: 0.0}}
    state = drainer.state()
    # nothing held: every accepted order delivered or dead-lettered, so the short quiet suffices
    assert state.idle() and state.accounted()
    # without the gauge (a platform that does not publish it) the drain cannot tell
    sampler.latest = {"orders_accepted_total": {name: 40.0}}
    assert not drainer.state().accounted()
