"""Issue 13: `manage.py import_runbook --dry-run` and the real import agree on every
file of the corpus (tests/runbooks/corpus/), and on its source folders imported as
directories: both refuse with the same `PATH:LINE: message`, or both accept and the
rows the import wrote (playbooks, steps, commands with kind and executor) are what
the dry run's JSON said. Real PostgreSQL (tests/stack.py)."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Command, Playbook, Runbook, Step
from tests.runbooks.test_corpus import CORPUS, NOT_A_RUNBOOK, corpus_files, no_steps

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    """("ok", stdout) or ("refused", the error as the command prints it)."""
    out = StringIO()
    try:
        call_command("import_runbook", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return "refused", str(exc)
    return "ok", out.getvalue()


def command_row(command: Command) -> dict:
    return {
        "language": command.language,
        "text": command.text,
        "kind": command.kind,
        "executor": command.executor or None,
        "parameters": command.parameters,
    }


def stored(runbook: Runbook) -> dict:
    """The imported rows in the shape of the dry run's JSON (`to_contract`)."""
    playbooks = []
    for playbook in Playbook.objects.filter(runbook=runbook).order_by("number"):
        commands = Command.objects.filter(playbook=playbook).order_by("position")
        steps = []
        for step in Step.objects.filter(playbook=playbook).order_by("number"):
            steps.append(
                {
                    "number": step.number,
                    "title": step.title,
                    "links": step.links,
                    "commands": [
                        command_row(c) for c in commands if c.step_id == step.pk
                    ],
                }
            )
        playbooks.append(
            {
                "number": playbook.number,
                "slug": playbook.slug,
                "title": playbook.title,
                "alerts": playbook.alerts,
                "severity": playbook.severity,
                "severity_text": playbook.severity_text,
                "path": playbook.path,
                "escalation": playbook.escalation,
                "diagnosis": [command_row(c) for c in commands if c.step_id is None],
                "steps": steps,
            }
        )
    doc = {
        "title": runbook.title,
        "version": runbook.version,
        "sha256": runbook.sha256,
        "playbooks": playbooks,
        "not_understood": runbook.not_understood,
    }
    if runbook.files:
        doc["files"] = runbook.files
    return doc


SUMMARY_DRY = re.compile(
    r"^Dry run: '(?P<title>.*)' (?P<summary>.*)\. Nothing imported\.$"
)
SUMMARY_REAL = re.compile(
    r"^Imported '(?P<title>.*)' as revision 1: (?P<summary>.*)\.$"
)


def summary(out: str, pattern: re.Pattern[str]) -> tuple[str, str, list[str]]:
    """(title, counts, the not-understood lines) of the command's report."""
    first, *rest = out.strip().split("\n")
    m = pattern.match(first)
    assert m, first
    return m["title"], m["summary"], rest


def assert_agree(path: str, *options: str) -> tuple[str, str]:
    """Dry run (as JSON and as a summary) and the real import of `path` agree;
    returns the real import's outcome."""
    dry_json = run(path, "--dry-run", "--json", *options)
    dry = run(path, "--dry-run", *options)
    assert Runbook.objects.count() == 0
    real = run(path, *options)
    assert dry_json[0] == dry[0] == real[0], (dry_json, real)
    if real[0] == "refused":
        assert dry_json[1] == dry[1] == real[1]
        assert real[1].startswith(f"{path}")
        assert Runbook.objects.count() == 0 and Playbook.objects.count() == 0
        return real
    contract = json.loads(dry_json[1])
    runbook = Runbook.objects.get(is_current=True)
    assert stored(runbook) == {k: v for k, v in contract.items() if k != "shape"}
    assert summary(dry[1], SUMMARY_DRY) == summary(real[1], SUMMARY_REAL)
    return real


CORPUS_FILES = corpus_files()


@pytest.mark.parametrize("options", [(), ("--allow-partial",)], ids=["", "partial"])
@pytest.mark.parametrize("rel", CORPUS_FILES)
def test_dry_run_and_import_agree_on_every_corpus_file(rel, options):
    assert_agree(str(CORPUS / rel), *options)


def test_the_corpus_has_refusals_and_imports_to_compare():
    """The agreement above is tested on both outcomes, with and without
    --allow-partial (otherwise it could pass on refusals alone)."""
    outcomes = {}
    for rel in CORPUS_FILES:
        for options in ((), ("--allow-partial",)):
            kind, _ = run(str(CORPUS / rel), "--dry-run", "--json", *options)
            outcomes[rel, options] = kind
    plain = [outcomes[r, ()] for r in CORPUS_FILES]
    partial = [outcomes[r, ("--allow-partial",)] for r in CORPUS_FILES]
    assert plain.count("ok") >= 20 and plain.count("refused") >= 3
    assert partial.count("ok") > plain.count("ok")


# --- directories ------------------------------------------------------------------------


def folder(name: str) -> str:
    return str(CORPUS / name)


def playbook_paths() -> list[str]:
    return list(
        Playbook.objects.filter(runbook__is_current=True)
        .order_by("number")
        .values_list("path", flat=True)
    )


PO_FILES = [
    "content/runbooks/alertmanager/AlertmanagerFailedReload.md",
    "content/runbooks/etcd/etcdNoLeader.md",
    "content/runbooks/general/Watchdog.md",
    "content/runbooks/kubernetes/KubeNodeNotReady.md",
    "content/runbooks/kubernetes/KubePodCrashLooping.md",
    "content/runbooks/node/NodeFilesystemSpaceFillingUp.md",
    "content/runbooks/prometheus-operator/PrometheusOperatorSyncFailed.md",
]


def test_prometheus_operator_folder_is_refused_for_its_empty_mitigation():
    path = folder("prometheus-operator-runbooks")
    kind, message = assert_agree(path)
    assert kind == "refused"
    assert message == (
        f"{path}/content/runbooks/prometheus-operator/PrometheusOperatorSyncFailed.md:6: "
        + no_steps(1, 1, "Prometheus Operator Sync Failed")
    )


def test_prometheus_operator_folder_with_allow_partial():
    path = folder("prometheus-operator-runbooks")
    kind, out = assert_agree(path, "--allow-partial")
    assert kind == "ok"
    title, counts, listed = summary(out, SUMMARY_REAL)
    assert title == "prometheus-operator-runbooks"
    # _index.md is skipped; the file without .md is not read at all.
    assert counts.startswith("7 files (1 skipped: not runbooks), 7 playbooks, ")
    assert playbook_paths() == PO_FILES
    assert listed[0].startswith("Not understood (")
    assert (
        f"  {path}/content/runbooks/kubernetes/_index.md:1: skipped, {NOT_A_RUNBOOK}"
        in listed
    )
    assert (
        f"  {path}/content/runbooks/prometheus-operator/PrometheusOperatorSyncFailed: "
        "not read: only .md and .markdown files are runbooks"
    ) in listed
    assert (
        f"  {path}/content/runbooks/prometheus-operator/PrometheusOperatorSyncFailed.md:6: "
        "playbook 'Prometheus Operator Sync Failed' has no steps (no Steps, Mitigation, "
        "Resolution, Remediation or Procedure section)"
    ) in listed
    runbook = Runbook.objects.get(is_current=True)
    skipped = [f["path"] for f in runbook.files if f.get("skipped")]
    assert skipped == ["content/runbooks/kubernetes/_index.md"]


def test_a_folder_of_one_kind_imports_with_each_playbooks_file():
    path = folder("prometheus-operator-runbooks/content/runbooks/kubernetes")
    kind, out = assert_agree(path)
    assert kind == "ok"
    _, counts, listed = summary(out, SUMMARY_REAL)
    assert counts.startswith(
        "2 files (1 skipped: not runbooks), 2 playbooks, 4 steps, "
    )
    assert playbook_paths() == ["KubeNodeNotReady.md", "KubePodCrashLooping.md"]
    assert f"  {path}/_index.md:1: skipped, {NOT_A_RUNBOOK}" in listed


def test_gitlab_folder_skips_the_service_readme():
    path = folder("gitlab-com-runbooks")
    kind, out = assert_agree(path)
    assert kind == "ok"
    _, counts, listed = summary(out, SUMMARY_REAL)
    assert counts.startswith(
        "8 files (1 skipped: not runbooks), 8 playbooks, 30 steps, "
    )
    assert playbook_paths() == [
        "docs/ci-runners/ci_pending_builds.md",
        "docs/frontend/gitlab-com-is-down.md",
        "docs/frontend/ssh-maxstartups-breach.md",
        "docs/gitaly/gitaly-down.md",
        "docs/monitoring/prometheus-is-down.md",
        "docs/patroni/scale-down-patroni.md",
        "docs/praefect/praefect-error-rate.md",
        "docs/redis-cache/remove-cache-entries.md",
    ]
    assert f"  {path}/docs/gitaly/README.md:7: skipped, {NOT_A_RUNBOOK}" in listed
    # Each file's own hints keep naming the file, under the folder as typed.
    assert (
        f"  {path}/docs/ci-runners/ci_pending_builds.md:38: step numbers jump from 3 to "
        "5: read as step 4 (is a step missing?)"
    ) in listed


def test_openshift_folder():
    path = folder("openshift-runbooks")
    kind, out = assert_agree(path)
    assert kind == "ok"
    _, counts, listed = summary(out, SUMMARY_REAL)
    assert counts.startswith("5 files, 5 playbooks, 18 steps, 45 commands ")
    assert playbook_paths() == [
        "alerts/advanced-cluster-management-operator/ACMRemoteWriteError.md",
        "alerts/cluster-etcd-operator/etcdMembersDown.md",
        "alerts/cluster-version-operator/ClusterVersionOperatorDown.md",
        "alerts/openshift-container-storage-operator/CephXattrSetLatency.md",
        "alerts/openshift-container-storage-operator/ODFOperatorNotUpgradeable.md",
    ]
    assert (
        f"  {path}/alerts/openshift-container-storage-operator/ODFOperatorNotUpgradeable.md:62: "
        "'Mitigation' offers 2 options: each is a step, but they are alternatives, not a "
        "sequence"
    ) in listed


def test_kubevirt_folder_and_a_second_import_is_unchanged():
    path = folder("kubevirt-monitoring")
    kind, out = assert_agree(path)
    assert kind == "ok"
    assert playbook_paths() == [
        "docs/deprecated_runbooks/KubeMacPoolDown.md",
        "docs/runbooks/CDINotReady.md",
        "docs/runbooks/VirtHandlerDaemonSetRolloutFailing.md",
    ]
    kind, again = run(path)
    assert (kind, again.split(":")[0]) == ("ok", "Unchanged")
    assert Runbook.objects.count() == 1


def test_a_folder_with_no_runbook_is_refused_naming_the_folder():
    path = folder("run-book-template")
    kind, message = assert_agree(path)
    assert kind == "refused"
    assert (
        message
        == f"{path}:1: no runbook found: 1 Markdown file, none of them a runbook"
    )


def test_a_catalogue_folder_needs_allow_partial():
    path = folder("kubernetes-mixin")
    kind, message = assert_agree(path)
    assert (kind, message) == (
        "refused",
        f"{path}/runbook.md:30: " + no_steps(61, 61, "KubeAPIDown"),
    )
    kind, out = assert_agree(path, "--allow-partial")
    assert kind == "ok"
    _, counts, _ = summary(out, SUMMARY_REAL)
    assert counts.startswith("1 files, 61 playbooks, 0 steps, 0 commands ")
    assert set(playbook_paths()) == {"runbook.md"}


def test_a_file_path_and_its_folder_read_the_same_playbook():
    """One file imported alone, or as part of its folder: the same reading (only the
    path differs: a file alone has its name, in a folder its relative path)."""
    rel = "openshift-runbooks/alerts/cluster-etcd-operator/etcdMembersDown.md"
    _, alone = run(str(CORPUS / rel), "--dry-run", "--json")
    _, tree = run(folder("openshift-runbooks"), "--dry-run", "--json")
    (single,) = json.loads(alone)["playbooks"]
    (in_tree,) = [
        p for p in json.loads(tree)["playbooks"] if p["slug"] == "etcdmembersdown"
    ]
    assert single["path"] == "etcdMembersDown.md"
    assert in_tree["path"] == "alerts/cluster-etcd-operator/etcdMembersDown.md"
    for playbook in (single, in_tree):
        playbook.pop("path"), playbook.pop("number")
    assert single == in_tree


def test_the_whole_corpus_as_one_folder_agrees():
    """Every source folder at once (the corpus README and LICENSES included: a README
    with tables is skipped as not a runbook, .txt files are not read)."""
    path = str(CORPUS)
    kind, out = assert_agree(path, "--allow-partial")
    assert kind == "ok"
    _, _, listed = summary(out, SUMMARY_REAL)
    assert (
        f"  {path}/LICENSES/cortex-jsonnet.LICENSE.txt: not read: only .md and "
        ".markdown files are runbooks"
    ) in listed


def test_govuk_folder_needs_allow_partial_for_its_alert_catalogue():
    path = folder("govuk-developer-docs")
    alerts = f"{path}/source/manual/alerts"
    kind, message = assert_agree(path)
    assert (kind, message) == (
        "refused",
        f"{alerts}/chat-ai-alerts.html.md:36: " + no_steps(6, 6, "High5xxRate"),
    )
    kind, out = assert_agree(path, "--allow-partial")
    assert kind == "ok"
    _, counts, _ = summary(out, SUMMARY_REAL)
    assert counts.startswith("4 files, 9 playbooks, ")
    paths = playbook_paths()
    assert paths == [
        "source/manual/alerts/RouterErrorRatioTooHigh.html.md",
        *["source/manual/alerts/chat-ai-alerts.html.md"] * 6,
        "source/manual/alerts/email-alert-api-unprocessed-work.html.md",
        "source/manual/alerts/signon-api-user-token-expires-soon.html.md",
    ]
