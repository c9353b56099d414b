"""The shared kernel (issue #17): the topology catalogue, the endpoints contract, and what is
generated from the catalogue (Prometheus relabelling, the Grafana home dashboard's columns)."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from lab_kernel import endpoints as contract
from lab_kernel import topologies
from lab_kernel.settings import LOCALSTACK_BY_TOPOLOGY, REPO_ROOT

RAW = tomllib.loads(topologies.CATALOGUE_FILE.read_text())


def test_the_catalogue_names_the_pair_and_its_wirings() -> None:
    cat = topologies.catalogue()
    assert len(cat.names) >= 2 and cat.storm in cat.names and cat.remedy in cat.names
    assert cat.select("both") == cat.pair
    assert cat.select(cat.remedy) == (cat.remedy,)
    assert {t.wiring for t in cat.topologies} <= {topologies.ASYNC_INVOKE, topologies.SQS_ESM, topologies.API_DESTINATION}
    assert cat.get(cat.storm).wiring == topologies.ASYNC_INVOKE and cat.get(cat.remedy).queued
    assert LOCALSTACK_BY_TOPOLOGY == {t.name: (t.instance, t.port_setting) for t in cat.topologies}
    with pytest.raises(topologies.CatalogueError, match="unknown topology 'all': choose one of"):
        cat.select("all")


def test_an_experiment_runs_the_chosen_topologies_with_the_pair_in_the_catalogues_order() -> None:
    cat = topologies.catalogue()
    others = [n for n in cat.names if n not in cat.pair]
    assert cat.with_pair(()) == cat.pair
    assert cat.with_pair((cat.remedy,)) == cat.pair
    if others:  # the lab's catalogue has more than the pair: one of them brings the pair along
        widened = cat.with_pair((others[-1],))
        assert set(widened) == {*cat.pair, others[-1]}
        assert list(widened) == [n for n in cat.names if n in widened]
    assert cat.with_pair(cat.names) == cat.names


def _with(change) -> dict:
    data = json.loads(json.dumps(RAW))
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["topology"][0].update(wiring="carrier-pigeon"), "topology/0/wiring"),
    (lambda d: d["topology"][0].update(name="both"), "topology/0/name"),
    (lambda d: d["topology"][1].update(account=d["topology"][0]["account"]), "have the same account"),
    (lambda d: d["comparison"].update(storm="nowhere"), "comparison.storm 'nowhere' is not a topology"),
    (lambda d: d["topology"][0]["delivery"].pop("breaker"), "topology/0/delivery"),
])
def test_an_off_schema_catalogue_is_refused_in_one_line(change, message) -> None:
    with pytest.raises(topologies.CatalogueError, match=message) as error:
        topologies.parse(_with(change))
    assert "\n" not in str(error.value)


def test_a_third_topology_is_one_entry(tmp_path: Path) -> None:
    def add(d: dict) -> None:
        d["topology"].append({**d["topology"][1], "name": "flow-control-2", "short": "fc2",
                              "account": "333333333333", "instance": "localstack-3"})
    cat = topologies.parse(_with(add))
    assert cat.names[-1] == "flow-control-2" and cat.pair == topologies.catalogue().pair


def _endpoint_entry(name: str, account: str) -> dict:
    api = "http://127.0.0.1:4566/_aws/execute-api/{}/Prod/{}"
    return {
        "account": account, "region": "us-east-1", "localstack_url": "http://127.0.0.1:4566",
        "notify_url": api.format("n1", "notify"), "courier_url": api.format("c1", "slow"),
        "api_key_secret": "/k", "endpoint_parameter": "/p",
        "queues": {"delivery": None, "dlq": None, "on_failure": None},
        "functions": {"notification": "N", "delivery": "D", "courier": "C"},
        "log_groups": {"notification": "/aws/lambda/N", "delivery": "/aws/lambda/D", "courier": "/aws/lambda/C"},
        "deliveries_table": None,
    }


def test_endpoints_written_checked_and_read_back(tmp_path: Path, monkeypatch) -> None:
    cat = topologies.catalogue()
    data = {"localstack_url": "http://127.0.0.1:4566", "prometheus_url": "http://127.0.0.1:9090",
            "grafana_url": "http://127.0.0.1:3000",
            "topologies": {t.name: _endpoint_entry(t.name, t.account) for t in cat.topologies}}
    path = contract.write(data, tmp_path / "lab" / "endpoints.json")
    monkeypatch.setenv("LAB_ENDPOINTS_FILE", str(path))
    e = contract.load()  # LAB_ENDPOINTS_FILE, read when asked
    assert e.path == path and set(e.topologies) == set(cat.names)
    t = e.topology(cat.storm)
    assert isinstance(t, contract.TopologyEndpoints) and t.courier_api_id == "c1" and t.deliveries_table is None
    incomplete = json.loads(json.dumps(data))
    del incomplete["topologies"][cat.storm]["notify_url"]
    with pytest.raises(contract.OffSchema, match=f"topologies/{cat.storm}"):
        contract.write(incomplete, tmp_path / "other.json")


def test_an_off_schema_endpoints_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"localstack_url": "http://x", "topologies": {"flow-control": {"account": 12}}}))
    with pytest.raises(contract.OffSchema) as error:
        contract.load(path)
    assert "topologies/flow-control/account" in str(error.value) and "\n" not in str(error.value)
    path.write_text(json.dumps({"localstack_url": "http://x", "topologies": {"both": {}}}))
    with pytest.raises(contract.OffSchema, match="topologies"):
        contract.load(path)


def test_prometheus_relabelling_is_the_catalogues() -> None:
    from labctl.prometheus_host import relabel_rules, render_config

    committed = yaml.safe_load((REPO_ROOT / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in committed["scrape_configs"] if j["job_name"] == "localstack")
    assert job["metric_relabel_configs"] == relabel_rules(), "prometheus/prometheus.yml is stale"
    rendered = yaml.safe_load(render_config({"localstack": ["127.0.0.1:1"]}))
    job = next(j for j in rendered["scrape_configs"] if j["job_name"] == "localstack")
    assert {r["replacement"]: r["regex"] for r in job["metric_relabel_configs"]} == {
        t.name: t.account for t in topologies.catalogue().topologies}


def test_the_home_dashboard_has_a_column_per_topology() -> None:
    from grafana.build import HOME_FILE, generate

    home = generate()[HOME_FILE]
    titles = {p["title"].rsplit(" - ", 1)[-1] for p in home["panels"] if " - " in p["title"]}
    assert titles == set(topologies.names())
    width = 24 // len(topologies.names())
    assert {p["gridPos"]["w"] for p in home["panels"]} == {width}


def test_a_topology_name_is_a_literal_in_at_most_3_source_files() -> None:
    """Issue #17: the catalogue names them; the rest of the code asks it (tests and data aside)."""
    files = subprocess.run(["git", "ls-files", "*.py", "*.yml", "*.yaml", "*.sh", "Makefile"],
                           cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    sources = [f for f in files if not f.startswith(("tests/", "docs/"))]
    for name in topologies.names():
        holding = [f for f in sources if f'{name}' in (REPO_ROOT / f).read_text()
                   and any(_is_literal(line, name) for line in (REPO_ROOT / f).read_text().splitlines())]
        assert len(holding) <= 3, f"{name} is a literal in {holding}"


def _is_literal(line: str, name: str) -> bool:
    """`name` as a whole word (not the tail of a longer name)."""
    start = 0
    while (i := line.find(name, start)) >= 0:
        before = line[i - 1] if i else " "
        after = line[i + len(name)] if i + len(name) < len(line) else " "
        if not (before.isalnum() or before in "-_") and not (after.isalnum() or after in "_"):
            return True
        start = i + 1
    return False
