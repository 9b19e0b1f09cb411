"""The ops kit in deploy/: every metric its alert rules and dashboard use is one /metrics serves, and the rules work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import link, report
from tests.processes import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "consortium-node.json"
OPERATIONS = REPO / "docs" / "operations.md"

# PromQL's own words; anything else outside label matchers, strings and `by (…)` is a metric name.
PROMQL = {
    "rate", "increase", "deriv", "histogram_quantile", "sum", "by", "and", "or", "unless", "offset", "on",
    "ignoring", "without", "max", "min", "avg", "count", "label_values", "humanizeDuration",
}  # fmt: skip
# Prometheus adds `up` to every target itself; /metrics cannot serve it.
SYNTHETIC = {"up"}
PROCESS_AND_GC = {
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
    "python_gc_collections_total", "python_gc_objects_collected_total", "python_info",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # strings
    expr = re.sub(r"label_values\((.*),\s*\w+\)", r"\1", expr)  # Grafana's label_values(series, label)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"(?<![A-Za-z0-9_:])\d+(\.\d+)?[smhdwy]?\b", " ", expr)  # numbers and durations (offset 10m)
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - PROMQL


def rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if v.get("definition")]
    return exprs


@pytest.fixture
def served(client, kit, orgs) -> set[str]:
    """Every sample name /metrics serves for a node whose engine reports, with its peer links."""
    report(kit, orgs, links=[link(orgs[1].node), link(orgs[2].node)])
    response = client.get("/metrics")
    assert response.status_code == 200
    return {s.name for f in text_string_to_metric_families(response.content.decode()) for s in f.samples}


def test_metrics_include_the_process_and_garbage_collector_collectors(served):
    assert served >= PROCESS_AND_GC, PROCESS_AND_GC - served


def test_every_metric_an_alert_rule_uses_is_served(served):
    used = set()
    for rule in rules():
        used |= metric_names(rule["expr"])
    assert {"consortium_height", "consortium_engine_report_age_seconds", "consortium_block_rounds_bucket"} <= used
    assert used - SYNTHETIC <= served, f"not served by /metrics: {sorted(used - SYNTHETIC - served)}"


def test_every_metric_the_dashboard_uses_is_served(served):
    used = set()
    for expr in dashboard_exprs():
        used |= metric_names(expr)
    for needed in [
        "consortium_height",  # height
        "consortium_transactions_committed_total",  # tx/s
        "consortium_commit_latency_seconds_bucket",  # commit latency
        "consortium_block_rounds_bucket",  # rounds per height
        "consortium_peers_connected",
        "consortium_pool_transactions",
        "consortium_sync_remaining_blocks",  # catch-up
    ]:
        assert needed in used, needed
    assert used <= served, f"not served by /metrics: {sorted(used - served)}"


def test_the_alert_table_of_the_operations_guide_and_the_rules_match():
    section = OPERATIONS.read_text().split("### Alerts worth setting", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `(Consortium[A-Za-z]+)` \|", section, re.M))
    assert documented == {rule["alert"] for rule in rules()}
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "critical", "warning"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]])
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(command):
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is installed by .ci/services"
    result = subprocess.run([promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
