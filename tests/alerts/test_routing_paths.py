"""Routing rule 4 for a directory of runbooks (issue 13): an alert's runbook_url
names the playbook's file (`.../runbooks/kubernetes/kubepodcrashlooping` ->
`content/runbooks/kubernetes/KubePodCrashLooping.md`), below RUNBOOK_URL_BASE when
it is set. The alert names used here are not listed by any playbook, so rule 3
(the alert name) cannot be what routed them."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import routing
from incidents.actors import Actor
from incidents.runbook import read_directory
from incidents.services import RunbookSource, import_runbook
from tests.alerts.test_routing import am_alert, routed_to

CORPUS = Path(__file__).resolve().parent.parent / "runbooks" / "corpus"
PROMETHEUS_OPERATOR = CORPUS / "prometheus-operator-runbooks"
PUBLISHED = "https://runbooks.prometheus-operator.dev/runbooks/"


@pytest.fixture
def tree(yomira) -> None:
    """The prometheus-operator folder imported as one revision, next to Yomira's."""
    files, ignored = read_directory(PROMETHEUS_OPERATOR)
    import_runbook(
        tree=RunbookSource(
            name="prometheus-operator",
            files=files,
            ignored=ignored,
            title="prometheus-operator",
            allow_partial=True,
        ),
        actor=Actor.system("manage.py"),
    )


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (
            PUBLISHED + "kubernetes/kubepodcrashlooping",
            "content/runbooks/kubernetes/KubePodCrashLooping.md",
        ),
        (
            "https://github.com/prometheus-operator/runbooks/blob/main/content/"
            "runbooks/node/NodeFilesystemSpaceFillingUp.md",
            "content/runbooks/node/NodeFilesystemSpaceFillingUp.md",
        ),
        (
            PUBLISHED + "etcd/etcdnoleader/",
            "content/runbooks/etcd/etcdNoLeader.md",
        ),
    ],
)
def test_a_runbook_url_routes_to_the_playbook_of_that_file(
    tree, alertmanager, url, path
):
    incident, group = routed_to(
        alertmanager, am_alert("SomethingElseFiring", annotations={"runbook_url": url})
    )
    assert incident.playbook.path == path
    assert group.rule == "runbook_url"
    assert group.reason == (
        f"its runbook_url points at {path} (§{incident.playbook.number})"
    )


def test_below_the_base_url_only_the_exact_path_counts(tree, settings):
    from incidents.models import Playbook

    playbooks = list(Playbook.objects.current())
    settings.RUNBOOK_URL_BASE = PUBLISHED
    # Under the base, the rest must be the file's whole path: `kubernetes/x` is
    # not `content/runbooks/kubernetes/x`, though its last parts match.
    assert (
        routing._by_path(PUBLISHED + "kubernetes/kubenodenotready", playbooks) is None
    )
    found = routing._by_path(
        PUBLISHED + "content/runbooks/kubernetes/KubeNodeNotReady", playbooks
    )
    assert found.path == "content/runbooks/kubernetes/KubeNodeNotReady.md"
    # Outside the base, the trailing parts decide.
    settings.RUNBOOK_URL_BASE = "https://elsewhere.example/"
    found = routing._by_path(PUBLISHED + "kubernetes/kubenodenotready", playbooks)
    assert found.path == "content/runbooks/kubernetes/KubeNodeNotReady.md"


def test_a_file_holding_several_playbooks_is_not_routed_by_its_path(yomira):
    # Every Yomira playbook comes from yomira.md: the file names none of them.
    playbooks = list(yomira.playbooks.all())
    assert {p.path for p in playbooks} == {"yomira.md"}
    assert routing._by_path("https://wiki.example/yomira.md", playbooks) is None


def test_two_files_matching_equally_well_route_nothing(tree):
    from incidents.models import Playbook

    playbooks = list(Playbook.objects.current())
    # `kubernetes/` is shared by two files: a URL ending in the folder alone is
    # ambiguous, and the last part names no file.
    assert routing._by_path("https://x.example/kubernetes/", playbooks) is None
    found = routing._by_path("https://x.example/kubepodcrashlooping.html", playbooks)
    assert found is not None and found.path.endswith("KubePodCrashLooping.md")


def test_path_keys_are_how_sites_serve_pages():
    assert routing.path_key("kubernetes/KubePodCrashLooping.md") == (
        "kubernetes/kubepodcrashlooping"
    )
    assert routing.path_key("/runbooks/Kubernetes/_index.md") == "runbooks/kubernetes"
    assert routing.path_key("/a/b%20c.html/") == "a/b c"
