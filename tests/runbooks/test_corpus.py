"""Issue 13: the importer reads real public runbooks (tests/runbooks/corpus/, sources
and licences in its README.md), one table entry per file.

Each entry is what `parse_runbook(bytes, path=<file name>)` must make of the file: how
it was read (shape), its playbooks (titles, alerts, severities), their steps (count and
titles), spot-checked commands (language, text, kind, executor) and the not-understood
entries that must be listed; or, for a file that is refused, the exact error (class,
line, message), and what `allow_partial=True` makes of it when that is allowed.

No Django, no database: the command and the database are in tests/test_dry_run_agrees.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from incidents.runbook import NotARunbook, RunbookError, parse_runbook
from incidents.runbook.types import Playbook, Runbook

CORPUS = Path(__file__).parent / "corpus"
# Not corpus entries: the corpus's own README and the licence texts.
NOT_ENTRIES = {"README.md"}

ONE_FILE = "one playbook per file"
CHAPTERS = "one playbook per file, numbered chapters as steps"
ALERT_HEADINGS = "alert headings as playbooks"

NOT_A_RUNBOOK = (
    "not a runbook: no numbered playbooks ('## 1. Title'), no alert name, no Meaning, "
    "Impact, Symptoms, Diagnosis, Mitigation or Steps section and no commands (an "
    "index page, a README or a template?)"
)


def no_steps(empty: int, total: int, first: str) -> str:
    """The refusal of a file whose playbooks mostly have no steps."""
    return (
        f"{empty} of {total} playbooks have no steps (the first: '{first}'): no "
        "numbered Steps list, and no Mitigation, Resolution, Remediation or Procedure "
        "section with anything in it. Import with --allow-partial to accept playbooks "
        "without steps"
    )


def unknown_section(name: str, line: int, section: str, title: str) -> str:
    return (
        f"{name}:{line}: section '{section}' of '{title}' is not one the console knows "
        "(Meaning, Impact, Symptoms, Diagnosis, Mitigation, Steps...): shown as context"
    )


def blocks_as_steps(name: str, line: int, section: str, title: str, n: int) -> str:
    return (
        f"{name}:{line}: '{section}' of '{title}' has no numbered list: each of its "
        f"{n} blocks read as a step"
    )


@dataclass(frozen=True)
class Cmd:
    """Command `index` of step `step` (0: the Diagnosis) of playbook `playbook`."""

    playbook: int
    step: int
    index: int
    language: str
    text: str
    kind: str = "manual"
    executor: str | None = None


@dataclass(frozen=True)
class Reading:
    shape: str
    title: str
    playbooks: int
    titles: tuple[str, ...]  # the first playbooks' titles, in order
    alerts: tuple[tuple[str, ...], ...]  # the same playbooks' alerts
    severities: tuple[tuple[str, str], ...] = ()  # (level, as written), if asserted
    steps: tuple[int, ...] = ()  # the same playbooks' step counts
    # The first playbook's first step titles (None: asserted elsewhere).
    step_titles: tuple[str | None, ...] = ()
    context: tuple[str, ...] | None = None  # the first playbook's context sections
    diagnosis_commands: int | None = None  # the first playbook's
    commands: tuple[Cmd, ...] = ()
    # (playbook, step, text): the step's title or body has the text (nothing dropped).
    bodies: tuple[tuple[int, int, str], ...] = ()
    not_understood: tuple[str, ...] = ()  # each is in one entry
    not_understood_count: int | None = None
    sections: tuple[str, ...] = ()  # runbook sections that must be there


@dataclass(frozen=True)
class Refusal:
    error: type[RunbookError]
    line: int
    message: str
    # What allow_partial=True makes of it (None: refused with it too).
    partial: Reading | None = None


@dataclass(frozen=True)
class Entry:
    shapes: str  # the corpus README's shape letters
    reading: Reading | None = None
    refusal: Refusal | None = None
    absent: tuple[str, ...] = field(default=())  # text that must not be shown


PO = "prometheus-operator-runbooks/content/runbooks/"
OS = "openshift-runbooks/alerts/"
KV = "kubevirt-monitoring/docs/"
GL = "gitlab-com-runbooks/docs/"
GV = "govuk-developer-docs/source/manual/alerts/"

CORTEX_PARTIAL = Reading(
    shape=ALERT_HEADINGS,
    title="Playbooks",
    playbooks=57,
    titles=("CortexIngesterRestarts", "CortexIngesterReachingSeriesLimit"),
    alerts=(("CortexIngesterRestarts",), ("CortexIngesterReachingSeriesLimit",)),
    severities=(("", ""), ("", "")),
    steps=(0, 0),
    not_understood=(
        "playbooks.md:10: playbook 'CortexIngesterRestarts' has no steps (no Steps, "
        "Mitigation, Resolution, Remediation or Procedure section)",
        unknown_section("playbooks.md", 141, "Write Latency", "CortexRequestLatency"),
        "playbooks.md:808: 'Halt the compactor' is not an alert name: kept as a "
        "section of the runbook, not a playbook",
        "playbooks.md:974: 'Log line containing 'sample with repeated timestamp but "
        "different value'' is not an alert name",
    ),
    # 57 playbooks without steps, 4 unknown sub-sections, 9 non-alert headings.
    not_understood_count=70,
    sections=("Cortex routes by path", "Halt the compactor"),
)

MIXIN_PARTIAL = Reading(
    shape=ALERT_HEADINGS,
    title="Kubernetes Alert Runbooks",
    playbooks=61,
    titles=(
        "KubeAPIDown",
        "KubeAPIInstanceUnreachable",
        "KubeControllerManagerDown",
        "KubeControllerManagerInstanceUnreachable",
        "KubeSchedulerDown",  # `##### Alert Name: KubeSchedulerDown`, no quotes
    ),
    alerts=(
        ("KubeAPIDown",),
        ("KubeAPIInstanceUnreachable",),
        ("KubeControllerManagerDown",),
        ("KubeControllerManagerInstanceUnreachable",),
        ("KubeSchedulerDown",),
    ),
    severities=(
        ("critical", "critical"),
        ("warning", "warning"),
        ("critical", "critical"),
        ("warning", "warning"),
        ("critical", "critical"),
    ),
    steps=(0, 0, 0, 0, 0),
    not_understood=(
        "runbook.md:210: the alert 'KubePersistentVolumeFillingUp' has another entry "
        "above: read as a playbook of its own (slug 'kubepersistentvolumefillingup-2')",
        "runbook.md:30: playbook 'KubeAPIDown' has no steps",
    ),
    # 61 playbooks without steps, 4 alerts listed twice (once per severity).
    not_understood_count=65,
    sections=("Other Kubernetes Runbooks and troubleshooting",),
)

CORPUS_TABLE: dict[str, Entry] = {
    # --- shape a (+f): one alert per file, prometheus-operator/runbooks ----------------
    PO + "kubernetes/KubePodCrashLooping.md": Entry(
        "a, f",
        Reading(
            shape=ONE_FILE,
            title="Kube Pod Crash Looping",  # the front matter's title
            playbooks=1,
            titles=("Kube Pod Crash Looping",),
            alerts=(("KubePodCrashLooping",),),  # the H1, which is the file name
            severities=(("", ""),),
            steps=(2,),
            context=("Meaning", "Impact"),
            diagnosis_commands=3,
            commands=(
                Cmd(
                    0,
                    0,
                    0,
                    "bash",
                    # `$NAME` is the author's shell variable: a person runs it.
                    "kubectl -n $NAMESPACE get pod $POD",
                ),
                Cmd(
                    0,
                    0,
                    2,
                    "bash",
                    "kubectl -n $NAMESPACE logs $POD -c $CONTAINER",
                ),
            ),
            bodies=((0, 2, "[Debugging Pods](https://kubernetes.io/docs/tasks/"),),
            not_understood=(
                blocks_as_steps(
                    "KubePodCrashLooping.md",
                    44,
                    "Mitigation",
                    "Kube Pod Crash Looping",
                    2,
                ),
            ),
            not_understood_count=1,
        ),
        absent=("weight: 20",),
    ),
    PO + "kubernetes/KubeNodeNotReady.md": Entry(
        "a, f",
        Reading(
            shape=ONE_FILE,
            title="Kube Node Not Ready",
            playbooks=1,
            titles=("Kube Node Not Ready",),
            alerts=(("KubeNodeNotReady",),),
            severities=(("", ""),),
            steps=(2,),
            context=("Meaning", "Impact"),
            diagnosis_commands=2,
            commands=(
                # ```txt: alert output, kept to copy, never run
                Cmd(
                    0,
                    0,
                    0,
                    "txt",
                    " - alertname = KubeNodeNotReady\n...\n - node = node1.example.com\n...",
                ),
                # ```shell with a `$ ` prompt: the prompt is not part of the command
                Cmd(
                    0,
                    0,
                    1,
                    "bash",
                    # `$NAME` is the author's shell variable: a person runs it.
                    "kubectl get node $NODE -o yaml",
                ),
            ),
            bodies=((0, 2, "See [node problem detector]"),),
            not_understood=(
                blocks_as_steps(
                    "KubeNodeNotReady.md", 39, "Mitigation", "Kube Node Not Ready", 2
                ),
            ),
            not_understood_count=1,
        ),
        absent=("weight: 20",),
    ),
    PO + "general/Watchdog.md": Entry(
        "a, f",
        Reading(
            shape=ONE_FILE,
            title="Watchdog",
            playbooks=1,
            titles=("Watchdog",),
            alerts=(
                ("Watchdog",),
            ),  # a plain word: an alert because it is the file name
            severities=(("", ""),),
            steps=(1,),
            context=("Meaning", "Impact"),
            diagnosis_commands=0,
            bodies=((0, 1, "`DeadMansSnitch` integration in PagerDuty"),),
            not_understood=(
                blocks_as_steps("Watchdog.md", 24, "Mitigation", "Watchdog", 1),
            ),
            not_understood_count=1,
        ),
        absent=("weight: 20",),
    ),
    PO + "node/NodeFilesystemSpaceFillingUp.md": Entry(
        "a, f",
        Reading(
            shape=ONE_FILE,  # `# TODO` lines inside code blocks are not headings
            title="Node Filesystem Space Filling Up",
            playbooks=1,
            titles=("Node Filesystem Space Filling Up",),
            alerts=(("NodeFilesystemSpaceFillingUp",),),
            severities=(("", ""),),  # two severities, in prose only
            steps=(5,),
            step_titles=(
                None,  # see test_prose_steps_are_titled_by_their_first_sentence
                "Debug the node by accessing the node filesystem",
                "Remove dangling images",
                "Remove unused images",
                "Exit debug",
            ),
            context=("Meaning", "Impact"),
            diagnosis_commands=1,
            commands=(
                Cmd(0, 0, 0, "promql", "node_filesystem_free_bytes"),
                Cmd(0, 2, 0, "bash", "NODE_NAME=<instance label from alert>"),
                Cmd(0, 2, 1, "bash", "kubectl -n default debug node/$NODE_NAME"),
                Cmd(0, 5, 1, "bash", "exit"),
            ),
            bodies=(
                (0, 3, "# TODO: Command needed"),
                (0, 5, "[3](https://kubernetes.io/"),
            ),
            not_understood=(
                blocks_as_steps(
                    "NodeFilesystemSpaceFillingUp.md",
                    49,
                    "Mitigation",
                    "Node Filesystem Space Filling Up",
                    5,
                ),
            ),
            not_understood_count=1,
        ),
        absent=("weight: 20",),
    ),
    PO + "etcd/etcdNoLeader.md": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="etcdNoLeader",
            playbooks=1,
            titles=("etcdNoLeader",),
            alerts=(("etcdNoLeader",),),
            severities=(("", ""),),
            steps=(1,),
            # `### Disaster and recovery` is the only thing under Mitigation: the
            # step's title, not dropped.
            step_titles=("Disaster and recovery",),
            context=("Meaning", "Impact"),
            diagnosis_commands=0,
            bodies=((0, 1, "Follow the steps described in the [disaster-recovery]"),),
            not_understood=("etcdNoLeader.md:41: ",),
            not_understood_count=1,
        ),
    ),
    PO + "alertmanager/AlertmanagerFailedReload.md": Entry(
        "a, f",
        Reading(
            shape=ONE_FILE,
            title="Alertmanager Failed Reload",
            playbooks=1,
            titles=("Alertmanager Failed Reload",),
            alerts=(("AlertmanagerFailedReload",),),
            severities=(("", ""),),
            steps=(1,),
            context=("Meaning", "Impact"),
            diagnosis_commands=1,
            commands=(
                # The log line after the command is its sample output.
                Cmd(
                    0,
                    0,
                    0,
                    "bash",
                    "kubectl logs sts/alertmanager-main -c config-reloader",
                    "probe",
                    "kubectl",
                ),
            ),
            bodies=((0, 1, "rollback `alertmanager.yaml` to the previous version"),),
            not_understood=(
                blocks_as_steps(
                    "AlertmanagerFailedReload.md",
                    33,
                    "Mitigation",
                    "Alertmanager Failed Reload",
                    1,
                ),
            ),
            not_understood_count=1,
        ),
        absent=("weight: 20",),
    ),
    PO + "prometheus-operator/PrometheusOperatorSyncFailed.md": Entry(
        "a, f",
        refusal=Refusal(
            RunbookError,
            6,
            no_steps(
                1, 1, "Prometheus Operator Sync Failed"
            ),  # `## Mitigation` is empty
            partial=Reading(
                shape=ONE_FILE,
                title="Prometheus Operator Sync Failed",
                playbooks=1,
                titles=("Prometheus Operator Sync Failed",),
                alerts=(("PrometheusOperatorSyncFailed",),),
                severities=(("", ""),),
                steps=(0,),
                context=("Meaning", "Impact"),
                diagnosis_commands=0,
                not_understood=(
                    "PrometheusOperatorSyncFailed.md:6: playbook 'Prometheus Operator "
                    "Sync Failed' has no steps",
                ),
                not_understood_count=1,
            ),
        ),
        absent=("weight: 20",),
    ),
    # No extension (as in its repository): read on its own; a directory skips it.
    PO + "prometheus-operator/PrometheusOperatorSyncFailed": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="PrometheusOperatorSyncFailed",
            playbooks=1,
            titles=("PrometheusOperatorSyncFailed",),
            alerts=(("PrometheusOperatorSyncFailed",),),
            severities=(("", ""),),
            steps=(1,),
            step_titles=(
                "Any fixes in configuration diagnosed by reviewing prometheus-operator logs.",
            ),
            context=("Meaning", "Impact"),
            # `kubect logs` (sic) is not a command the console knows
            diagnosis_commands=0,
            not_understood=(
                blocks_as_steps(
                    "PrometheusOperatorSyncFailed",
                    15,
                    "Mitigation",
                    "PrometheusOperatorSyncFailed",
                    1,
                ),
            ),
            not_understood_count=1,
        ),
    ),
    PO + "kubernetes/_index.md": Entry(
        "f", refusal=Refusal(NotARunbook, 1, NOT_A_RUNBOOK)
    ),
    # --- shape a/e: OpenShift ---------------------------------------------------------
    OS + "cluster-etcd-operator/etcdMembersDown.md": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="etcdMembersDown",
            playbooks=1,
            titles=("etcdMembersDown",),
            alerts=(("etcdMembersDown",),),
            severities=(("", ""),),
            steps=(2,),
            context=("Meaning", "Impact"),
            diagnosis_commands=6,  # `$ oc ...` / `$ etcdctl ...` console lines
            commands=(
                Cmd(
                    0,
                    0,
                    0,
                    "bash",
                    "oc get nodes -l node-role.kubernetes.io/master=",
                    "probe",
                    "kubectl",
                ),
                Cmd(0, 0, 1, "bash", "oc adm upgrade"),
                Cmd(
                    0,
                    0,
                    2,
                    "bash",
                    "oc get nodes -l node-role.kubernetes.io/master= -o template "
                    '--template=\'{{range .items}}{{"===> node:> "}}{{.metadata.name}}'
                    '{{"\\n"}}{{range $k, $v := .metadata.annotations}}{{println $k ":" $v}}'
                    '{{end}}{{"\\n"}}{{end}}\'',
                ),
                Cmd(0, 0, 5, "bash", "etcdctl endpoint health -w table"),
            ),
            not_understood=(
                blocks_as_steps(
                    "etcdMembersDown.md", 66, "Mitigation", "etcdMembersDown", 2
                ),
            ),
            not_understood_count=1,
        ),
    ),
    OS + "advanced-cluster-management-operator/ACMRemoteWriteError.md": Entry(
        "a, e",
        Reading(
            shape=ONE_FILE,  # one playbook, not 8: `### 1.` restarts per section
            title="ACMRemoteWriteError",
            playbooks=1,
            titles=("ACMRemoteWriteError",),
            alerts=(("ACMRemoteWriteError",),),
            severities=(("", ""),),
            steps=(4,),
            step_titles=(
                "If the url: in the secret is incorrect",
                "If the endpoint is returning 401/403 (Authentication Errors)",
                "If the endpoint is returning 5xx errors",
                "If the configuration is no longer needed",
            ),
            # The sentence before `### 1.` under Mitigation stays as context.
            context=("Meaning", "Impact", "Mitigation"),
            diagnosis_commands=4,
            commands=(
                Cmd(
                    0,
                    0,
                    2,
                    "bash",
                    "oc get secret <YOUR_SECRET_NAME> -n open-cluster-management-observability "
                    "-o jsonpath='{.data.ep\\.yaml}' | base64 --decode",
                ),
                Cmd(
                    0,
                    0,
                    3,
                    "yaml",
                    "url: http://httpbin.org/status/503\nhttp_client_config:\n  basic_auth:\n"
                    "    username: user\n    password: wrong-password",
                ),
                Cmd(
                    0,
                    1,
                    0,
                    "bash",
                    "oc edit secret <YOUR_SECRET_NAME> -n open-cluster-management-observability",
                ),
                Cmd(
                    0,
                    4,
                    0,
                    "bash",
                    "oc get mco observability -n open-cluster-management-observability -o yaml "
                    "> mco-backup.yaml",
                ),
            ),
            bodies=((0, 4, "Remove the entire `writeStorage:` block"),),
            not_understood_count=0,
        ),
    ),
    OS + "cluster-version-operator/ClusterVersionOperatorDown.md": Entry(
        "a, e",
        Reading(
            shape=ONE_FILE,
            title="ClusterVersionOperatorDown",
            playbooks=1,
            titles=("ClusterVersionOperatorDown",),
            alerts=(("ClusterVersionOperatorDown",),),
            severities=(("", ""),),
            steps=(3,),
            step_titles=(
                "Cluster-version-operator pod is not running",
                "Node failures",
                "Prometheus",
            ),
            context=("Meaning", "Impact"),
            diagnosis_commands=12,
            commands=(
                Cmd(0, 0, 5, "bash", "oc get node $NODE_NAME"),
                Cmd(0, 0, 6, "bash", "oc describe node $NODE_NAME"),
                Cmd(0, 0, 11, "bash", "oc adm top nodes"),
            ),
            bodies=(
                (
                    0,
                    3,
                    "[knowledge base article](https://access.redhat.com/solutions/5977411)",
                ),
            ),
            not_understood_count=0,
        ),
    ),
    OS + "openshift-container-storage-operator/CephXattrSetLatency.md": Entry(
        "a, e",
        Reading(
            shape=ONE_FILE,
            title="CephXattrSetLatency",
            playbooks=1,
            titles=("CephXattrSetLatency",),
            alerts=(("CephXattrSetLatency",),),
            severities=(
                ("warning", "Warning"),
            ),  # `**Severity:** Warning` under Impact
            steps=(7,),
            step_titles=(
                "Increase MDS CPU Resources",
                "Increase MDS Cache Memory",
                "Scale Out with Multiple Active MDS",
                "Use Faster Metadata Storage",
                "Address Network Issues",
                "Address Underlying OSD Issues",
                "Restart MDS (if stuck operations detected)",
            ),
            context=("Meaning", "Impact", "Mitigation", "Additional Resources"),
            diagnosis_commands=10,  # `### Step N:` under Diagnosis: diagnosis, not steps
            commands=(
                Cmd(0, 0, 1, "bash", "ceph status"),
                Cmd(
                    0,
                    1,
                    0,
                    "bash",
                    "oc patch -n openshift-storage storagecluster ocs-storagecluster \\\n"
                    "    --type merge \\\n"
                    '    --patch \'{"spec": {"resources": {"mds": {"limits": {"cpu": '
                    '"8"}, "requests": {"cpu": "8"}}}}}\'',
                ),
                Cmd(
                    0,
                    7,
                    0,
                    "bash",
                    "oc delete pod -n openshift-storage -l app=rook-ceph-mds",
                ),
            ),
            bodies=(
                (0, 1, "request the next higher power of two (16 CPUs)"),
                # The sentence after the list belongs to the last step.
                (0, 7, "please contact Red Hat\nSupport for further assistance."),
            ),
            not_understood_count=0,
        ),
    ),
    OS + "openshift-container-storage-operator/ODFOperatorNotUpgradeable.md": Entry(
        "a, e",
        Reading(
            shape=ONE_FILE,
            title="ODFOperatorNotUpgradeable",
            playbooks=1,
            titles=("ODFOperatorNotUpgradeable",),
            alerts=(("ODFOperatorNotUpgradeable",),),
            severities=(("", ""),),
            steps=(2,),
            step_titles=(
                "Option 1: Resolve the underlying issue (Recommended)",
                "Option 2: Override the condition (Use with caution)",
            ),
            context=("Meaning", "Impact", "Additional Resources"),
            diagnosis_commands=3,
            commands=(
                Cmd(
                    0,
                    0,
                    0,
                    "bash",
                    "oc get operatorconditions -n openshift-storage",
                    "probe",
                    "kubectl",
                ),
                Cmd(
                    0,
                    2,
                    0,
                    "bash",
                    "oc patch operatorconditions -n openshift-storage <operator-condition-name> "
                    "--type=merge -p '\nspec:\n  overrides:\n  - type: Upgradeable\n"
                    '    status: "True"\n    reason: ManualOverride\n'
                    '    message: "Manually overriding upgradeable condition"\n\'',
                ),
            ),
            not_understood=(
                "ODFOperatorNotUpgradeable.md:62: 'Mitigation' offers 2 options: each is a "
                "step, but they are alternatives, not a sequence",
            ),
            not_understood_count=1,
        ),
    ),
    # --- shape a: KubeVirt ----------------------------------------------------------------
    KV + "runbooks/CDINotReady.md": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="CDINotReady",
            playbooks=1,
            titles=("CDINotReady",),
            alerts=(("CDINotReady",),),
            severities=(("", ""),),
            steps=(2,),
            step_titles=(
                "Try to identify the root cause and resolve the issue.",
                "If you cannot resolve the issue, see the following resources",
            ),
            context=("Meaning", "Impact"),
            diagnosis_commands=4,
            commands=(
                Cmd(
                    0,
                    0,
                    0,
                    "bash",
                    'export CDI_NAMESPACE="$(kubectl get deployment -A | grep cdi-operator '
                    "| awk '{print $1}')\"",
                ),
                Cmd(
                    0,
                    0,
                    1,
                    "bash",
                    "kubectl -n $CDI_NAMESPACE get deploy -l cdi.kubevirt.io",
                ),
                Cmd(
                    0,
                    0,
                    3,
                    "bash",
                    # `$NAME` is the author's shell variable: a person runs it.
                    "kubectl -n $CDI_NAMESPACE logs <pod>",
                ),
            ),
            bodies=((0, 2, "- [OKD Help](https://okd.io/docs/community/help/)"),),
            not_understood=(
                blocks_as_steps("CDINotReady.md", 43, "Mitigation", "CDINotReady", 2),
            ),
            not_understood_count=1,
        ),
        # `<!--DS: ...-->` / `<!--USstart-->` markers are notes to the writers.
        absent=("<!--", "Customer Portal", "USstart"),
    ),
    KV + "runbooks/VirtHandlerDaemonSetRolloutFailing.md": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="VirtHandlerDaemonSetRolloutFailing",
            playbooks=1,
            titles=("VirtHandlerDaemonSetRolloutFailing",),
            alerts=(("VirtHandlerDaemonSetRolloutFailing",),),
            severities=(("", ""),),  # "This alert is a warning": prose, not a field
            steps=(1,),
            context=("Meaning", "Impact"),
            diagnosis_commands=3,
            commands=(
                Cmd(
                    0,
                    0,
                    1,
                    "bash",
                    "kubectl get pods -n $NAMESPACE -l=kubevirt.io=virt-handler",
                ),
            ),
            bodies=((0, 1, "you can delete other pods on the affected worker node."),),
            not_understood=(
                blocks_as_steps(
                    "VirtHandlerDaemonSetRolloutFailing.md",
                    37,
                    "Mitigation",
                    "VirtHandlerDaemonSetRolloutFailing",
                    1,
                ),
            ),
            not_understood_count=1,
        ),
    ),
    KV + "deprecated_runbooks/KubeMacPoolDown.md": Entry(
        "a",
        Reading(
            shape=ONE_FILE,
            title="KubeMacPoolDown [Deprecated]",
            playbooks=1,
            titles=("KubeMacPoolDown [Deprecated]",),
            alerts=(("KubeMacPoolDown",),),  # not the tag, not `KubemacpoolDown`
            severities=(("", ""),),
            steps=(1,),
            step_titles=(
                "If you cannot resolve the issue, see the following resources",
            ),
            context=("Overview", "Meaning", "Impact"),
            diagnosis_commands=4,
            commands=(
                Cmd(
                    0,
                    0,
                    2,
                    "bash",
                    # `$NAME` is the author's shell variable: a person runs it.
                    "kubectl describe pod -n $KMP_NAMESPACE $KMP_NAME",
                ),
                Cmd(
                    0,
                    0,
                    3,
                    "bash",
                    "kubectl logs -n $KMP_NAMESPACE $KMP_NAME",
                ),
            ),
            not_understood=(
                blocks_as_steps(
                    "KubeMacPoolDown.md",
                    42,
                    "Mitigation",
                    "KubeMacPoolDown [Deprecated]",
                    1,
                ),
            ),
            not_understood_count=1,
        ),
        absent=("<!--", "Customer Portal"),
    ),
    # --- shape b: kubernetes-mixin, a catalogue of alerts without steps -----------------
    "kubernetes-mixin/runbook.md": Entry(
        "b",
        refusal=Refusal(
            RunbookError, 30, no_steps(61, 61, "KubeAPIDown"), partial=MIXIN_PARTIAL
        ),
        absent=("SPDX-License-Identifier",),
    ),
    # --- shape g: cortex-mixin, `### AlertName` playbooks -------------------------------
    "cortex-jsonnet/cortex-mixin/docs/playbooks.md": Entry(
        "g",
        refusal=Refusal(
            RunbookError,
            10,
            no_steps(57, 57, "CortexIngesterRestarts"),
            partial=CORTEX_PARTIAL,
        ),
    ),
    "run-book-template/run-book-template.md": Entry(
        "g", refusal=Refusal(NotARunbook, 1, NOT_A_RUNBOOK)
    ),
    # --- shapes c, d, e: gitlab-com/runbooks -----------------------------------------------
    GL + "frontend/gitlab-com-is-down.md": Entry(
        "c",
        Reading(
            shape=ONE_FILE,
            title="Gitlab com is down",  # no heading: from the file name
            playbooks=1,
            titles=("Gitlab com is down",),
            alerts=((),),
            severities=(("", ""),),
            steps=(5,),  # `1.` five times (lazy numbering)
            step_titles=(
                "Check network, try to open [GitLab.com](https://gitlab.com). If it is ok "
                "from your side, then it can be only network failure.",
                "Check the [triage dashboard](https://dashboards.gitlab.net/d/RZmbBr7mk/"
                "gitlab-triage?orgId=1).",
                "Check the [fleet overview](https://dashboards.gitlab.net/dashboard/db/"
                "fleet-overview).",
            ),
            context=("Things to Look for",),
            not_understood_count=0,
        ),
    ),
    GL + "monitoring/prometheus-is-down.md": Entry(
        "c",
        Reading(
            shape=ONE_FILE,
            title="Prometheus is down",
            playbooks=1,
            titles=("Prometheus is down",),
            alerts=((),),
            steps=(2,),  # not the `1.` list under "How to work with Prometheus"
            context=("How to work with Prometheus", "Many Restarts"),
            bodies=((0, 2, "Usually it is configuration error or IO/space problems."),),
            not_understood=(
                unknown_section(
                    "prometheus-is-down.md",
                    6,
                    "How to work with Prometheus",
                    "Prometheus is down",
                ),
                unknown_section(
                    "prometheus-is-down.md", 13, "Many Restarts", "Prometheus is down"
                ),
            ),
            not_understood_count=2,
        ),
    ),
    GL + "frontend/ssh-maxstartups-breach.md": Entry(
        "c",
        Reading(
            shape=ONE_FILE,
            title="Possible breach of SSH MaxStartups",
            playbooks=1,
            titles=("Possible breach of SSH MaxStartups",),
            alerts=((),),
            steps=(6,),  # the paragraphs of `## What to do`, in order
            step_titles=("Verify that nothing *else* is exploding.",),
            context=("Overview", "Additional context"),
            # The bullets after "...need to increase:" belong to that paragraph.
            bodies=((0, 3, "* The middle number is what random percentage"),),
            not_understood=(
                blocks_as_steps(
                    "ssh-maxstartups-breach.md",
                    5,
                    "What to do",
                    "Possible breach of SSH MaxStartups",
                    6,
                ),
            ),
            not_understood_count=1,
        ),
    ),
    GL + "gitaly/gitaly-down.md": Entry(
        "c, d",
        Reading(
            shape=CHAPTERS,  # `## 1.` ... `## 3.`: steps of one playbook
            title="Gitaly is down",
            playbooks=1,
            titles=("Gitaly is down",),
            alerts=((),),
            steps=(3,),
            step_titles=(
                "Ensure that the file server is running",
                "Check the Gitaly Logs",
                "Ensure that the Gitaly server process is running",
            ),
            context=("Symptoms",),
            commands=(
                # The untagged block of `# ...` comments and `cd`, `find`, `git`
                # lines is a shell session: one copy command per line.
                Cmd(
                    0, 1, 0, "bash", "cd /var/opt/gitlab/git-data/repositories/@hashed"
                ),
                Cmd(0, 1, 4, "bash", "git fsck"),
                Cmd(0, 3, 0, "bash", "ps aux | grep gitaly"),
                Cmd(
                    0,
                    3,
                    1,
                    "bash",
                    "curl https://localhost:9236/metrics",
                    "probe",
                    "http",
                ),
                Cmd(0, 3, 2, "bash", "sudo gitlab-ctl restart gitaly"),
            ),
            bodies=(
                (0, 1, "### If the server rebooted"),
                (0, 1, "git update-ref -d <invalid_ref_found_by_git_fsck>"),
                (0, 2, "grep for `SIGSEGV` or `SIGILL`"),
            ),
            not_understood_count=0,
        ),
    ),
    GL + "praefect/praefect-error-rate.md": Entry(
        "c, d",
        Reading(
            shape=CHAPTERS,
            title="Praefect error rate is too high",
            playbooks=1,
            titles=("Praefect error rate is too high",),
            alerts=((),),
            steps=(3,),
            step_titles=(
                "Check the prometheus dashboard",
                "Check for suspicious errors in Kibana",
                "Identify the problematic instance",
            ),
            context=("Symptoms",),
            commands=(
                Cmd(0, 3, 0, "bash", "sudo less /var/log/gitlab/praefect/current"),
            ),
            not_understood_count=0,
        ),
    ),
    GL + "ci-runners/ci_pending_builds.md": Entry(
        "c, d",
        Reading(
            shape=CHAPTERS,
            title="Large CI pending builds",  # `##`, no H1
            playbooks=1,
            titles=("Large CI pending builds",),
            # `Alert Name: A or B`, no bold, no backticks: both alerts.
            alerts=(
                (
                    "CICDTooManyPendingJobsPerNamespace",
                    "CICDTooManyRunningJobsPerNamespaceOnSharedRunnersGitLabOrg",
                ),
            ),
            severities=(("", ""),),
            steps=(5,),  # chapters 1, 2, 3, 5, 6
            step_titles=(
                "Check `CI dashboard` and verify that we have a large number of CI builds",
                "Verify graphs and potential outcomes out of the graphs as described in "
                "(CI graphs)[ci_graphs.md],",
                "Verify the number of errors [the high number of errors]"
                "(ci_runner_manager_errors.md)",
                "Verify that machines are created on `shared-runners-manager-X.gitlab.com`",
                "Verify that docker machine valid operation",
            ),
            context=("Overview",),
            commands=(
                Cmd(0, 4, 0, "bash", 'journalctl -xef | grep "Machine created"'),
                Cmd(0, 4, 2, "bash", "journalctl -xef | grep operation=create"),
                Cmd(0, 5, 1, "bash", "docker-machine ssh test-machine"),
                Cmd(0, 5, 3, "bash", "docker-machine rm test-machine"),
            ),
            not_understood=(
                "ci_pending_builds.md:38: step numbers jump from 3 to 5: read as step 4 "
                "(is a step missing?)",
            ),
            not_understood_count=1,
        ),
    ),
    GL + "patroni/scale-down-patroni.md": Entry(
        "c, e",
        Reading(
            shape=ONE_FILE,
            title="Patroni",  # `# Patroni ` (trailing space)
            playbooks=1,
            titles=("Patroni",),
            alerts=((),),
            steps=(4,),  # `### Step N - ...` under `## Execution`
            step_titles=(
                "Stop chef-client",
                "Take the replicate node out of load balancing",
                "Stop patroni service on the node",
                "Terraform change to decrease the count",
            ),
            context=("Scale Down", "Preparation", "Automation Thoughts", "Reference"),
            commands=(
                Cmd(
                    0,
                    1,
                    0,
                    "bash",
                    'sudo chef-client-disable "Removing patroni node: Ref issue prod#xyz"',
                ),
                Cmd(
                    0, 2, 0, "text", "tags:\n  nofailover: true\n  noloadbalance: true"
                ),
                Cmd(
                    0,
                    2,
                    1,
                    "bash",
                    "dig @127.0.0.1 -p 8600 db-replica.service.consul. SRV",
                ),
            ),
            bodies=((0, 2, "sudo systemctl reload patroni"),),
            not_understood=(
                unknown_section("scale-down-patroni.md", 3, "Scale Down", "Patroni"),
                "scale-down-patroni.md:44: 'Preparation' between numbered steps is not a "
                "step: shown as context",
                unknown_section(
                    "scale-down-patroni.md", 107, "Automation Thoughts", "Patroni"
                ),
            ),
            not_understood_count=3,
        ),
    ),
    GL + "redis-cache/remove-cache-entries.md": Entry(
        "c, e",
        Reading(
            shape=ONE_FILE,
            title="Removing cache entries from Redis",
            playbooks=1,
            titles=("Removing cache entries from Redis",),
            alerts=((),),
            steps=(2,),  # `## Step 1:` at H2, not the summary list above them
            step_titles=("obtain the keys to be deleted", "delete the keys"),
            context=("Overview",),
            commands=(
                Cmd(0, 1, 0, "ruby", ""),  # text checked by prefix below
                Cmd(0, 2, 0, "ruby", ""),
            ),
            not_understood_count=0,
        ),
    ),
    GL + "gitaly/README.md": Entry(
        # A generated service index (a link list under "Troubleshooting Pointers"):
        # not a runbook, whatever its headings are called.
        "c",
        refusal=Refusal(NotARunbook, 7, NOT_A_RUNBOOK),
    ),
    # --- shape h: GOV.UK's Middleman pages (`.html.md`, front matter, no H1) -----------
    GV + "RouterErrorRatioTooHigh.html.md": Entry(
        "f, h",
        Reading(
            shape=ONE_FILE,
            title="Router error ratio too high",  # the front matter's title
            playbooks=1,
            titles=("Router error ratio too high",),
            # The file is named after the alert: `.html.md` is one extension.
            alerts=(("RouterErrorRatioTooHigh",),),
            severities=(("", ""),),
            # `## Potential resolution steps`: steps under a longer name, one per
            # bullet (titled without the bullet's `- `).
            steps=(2,),
            step_titles=(
                "If an application has been recently updated and is returning errors it "
                "may require a rollback using the app's deploy github action "
                "`https://github.com/alphagov/<appname>/actions/workflows/deploy.yml`",
                "If your application is currently dealing with a sudden increase in load "
                "it could be that you need to scale your application. You can check the "
                "following [documentation][scale-app] in order to do this.",
            ),
            context=("Overview", "Description", "Impact"),
            bodies=(
                (
                    0,
                    1,
                    "it may require a rollback using the app's deploy github action",
                ),
                (0, 2, "you need to scale your application"),
            ),
            not_understood=(
                "RouterErrorRatioTooHigh.html.md:27: 'Potential resolution steps'",
            ),
            not_understood_count=1,
        ),
        absent=("owner_slack", "manual_layout"),
    ),
    GV + "email-alert-api-unprocessed-work.html.md": Entry(
        "f, h",
        Reading(
            shape=ONE_FILE,
            title="Email Alert API: Unprocessed work",
            playbooks=1,
            titles=("Email Alert API: Unprocessed work",),
            alerts=((),),  # the bold `unprocessed messages` are not alert names
            severities=(("", ""),),
            # `## Manual steps to fix`: the checks (with the list they introduce),
            # the console fallback, and the quoted digest-run case.
            steps=(3,),
            bodies=(
                (0, 1, "* Check [Sentry] for errors."),
                (0, 2, "you will need to use `new.perform` instead of `perform_async`"),
                (0, 3, "DigestRunCompletionMarkerJob.new.perform"),
            ),
            commands=(Cmd(0, 3, 0, "ruby", ""),),
            # (Where `## Automatic recovery` ends up is not asserted: see the report.)
            not_understood=(
                "email-alert-api-unprocessed-work.html.md:34: 'Manual steps to fix'",
            ),
        ),
        absent=("owner_slack",),
    ),
    GV + "signon-api-user-token-expires-soon.html.md": Entry(
        "e, f, h",
        Reading(
            shape=ONE_FILE,
            title="Signon API user token expires soon",
            playbooks=1,
            titles=("Signon API user token expires soon",),
            alerts=((),),
            severities=(("", ""),),
            steps=(2,),  # `### 1.` / `### 2.`, each holding a lazy `1.` list
            step_titles=(
                "Issue a new token",
                "Update the token in the secrets used by the consuming application",
            ),
            # The front matter names the playbook, so `## Rotate a Signon API
            # token` is a section: its introduction is context, its `### 1.`
            # headings the steps.
            context=("Overview", "Rotate a Signon API token", "Special cases"),
            commands=(
                Cmd(0, 2, 0, "bash", "k exec -it deploy/short-url-manager -- rails c"),
                Cmd(0, 2, 1, "ruby", 'ENV["PUBLISHING_API_BEARER_TOKEN"]'),
            ),
            bodies=(
                (0, 1, "1. Choose **Create access token**."),
                (0, 2, "go back to Signon and revoke the old token"),
            ),
            not_understood=(
                "signon-api-user-token-expires-soon.html.md:12: section 'Rotate a "
                "Signon API token' of 'Signon API user token expires soon' has "
                "numbered step headings: read as steps",
                "signon-api-user-token-expires-soon.html.md:20: 'Special cases' "
                "between numbered steps is not a step: shown as context",
            ),
            not_understood_count=2,
        ),
        absent=("owner_slack",),
    ),
    GV + "chat-ai-alerts.html.md": Entry(
        # An alert catalogue grouped by how it pages (`### Pagerduty Alerts`,
        # `### Slack Alerts`), `#### AlertName` each, no steps.
        "f, g, h",
        refusal=Refusal(
            RunbookError,
            36,
            no_steps(6, 6, "High5xxRate"),
            partial=Reading(
                shape=ALERT_HEADINGS,
                title="GOV.UK Chat Alerts",
                playbooks=6,
                titles=(
                    "High5xxRate",
                    "LongRequestDuration",
                    "SidekiqAnswerQueueLength",
                    "SidekiqAnswerJobAge",
                    "SidekiqDefaultJobAge",
                    "ElevatedAnswerErrorStatuses",
                ),
                alerts=(("High5xxRate",), ("LongRequestDuration",)),
                steps=(0, 0, 0, 0, 0, 0),
                not_understood=(
                    "chat-ai-alerts.html.md:46: 'HighPod* alerts' is not an alert name: "
                    "kept as a section of the runbook, not a playbook",
                    "chat-ai-alerts.html.md:69: 'Bedrock token threshold alerts' is not "
                    "an alert name",
                    "chat-ai-alerts.html.md:36: playbook 'High5xxRate' has no steps",
                ),
                not_understood_count=8,
                sections=("HighPod* alerts", "Bedrock token threshold alerts"),
            ),
        ),
        absent=("owner_slack",),
    ),
}


def corpus_files() -> list[str]:
    return sorted(
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file()
        and p.relative_to(CORPUS).parts[0] != "LICENSES"
        and p.relative_to(CORPUS).as_posix() not in NOT_ENTRIES
    )


def parse(rel: str, *, allow_partial: bool = False) -> Runbook:
    path = CORPUS / rel
    return parse_runbook(path.read_bytes(), path=path.name, allow_partial=allow_partial)


def step_of(playbook: Playbook, number: int):  # noqa: ANN201
    (step,) = [s for s in playbook.steps if s.number == number]
    return step


def check(rel: str, runbook: Runbook, want: Reading) -> None:
    assert (runbook.shape, runbook.title) == (want.shape, want.title)
    assert len(runbook.playbooks) == want.playbooks
    n = len(want.titles)
    assert [p.title for p in runbook.playbooks[:n]] == list(want.titles)
    assert [p.number for p in runbook.playbooks] == list(range(1, want.playbooks + 1))
    assert [tuple(p.alerts) for p in runbook.playbooks[: len(want.alerts)]] == list(
        want.alerts
    )
    assert [
        (p.severity, p.severity_text) for p in runbook.playbooks[: len(want.severities)]
    ] == list(want.severities)
    assert [len(p.steps) for p in runbook.playbooks[: len(want.steps)]] == list(
        want.steps
    )
    first = runbook.playbooks[0]
    assert [s.number for s in first.steps] == list(range(1, len(first.steps) + 1))
    if want.step_titles:
        got = [
            s.title if w is not None else None
            for s, w in zip(first.steps, want.step_titles, strict=False)
        ]
        assert got == list(want.step_titles)
    if want.context is not None:
        assert [s.title for s in first.context] == list(want.context)
    if want.diagnosis_commands is not None:
        assert len(first.diagnosis_commands) == want.diagnosis_commands
    for cmd in want.commands:
        playbook = runbook.playbooks[cmd.playbook]
        owned = (
            playbook.diagnosis_commands
            if cmd.step == 0
            else step_of(playbook, cmd.step).commands
        )
        got = owned[cmd.index]
        assert (got.language, got.kind, got.executor) == (
            cmd.language,
            cmd.kind,
            cmd.executor,
        ), got
        if cmd.text:
            assert got.text == cmd.text
    for index, number, text in want.bodies:
        step = step_of(runbook.playbooks[index], number)
        assert text in f"{step.title}\n{step.body}"
    for text in want.not_understood:
        assert any(text in entry for entry in runbook.not_understood), (
            text,
            runbook.not_understood,
        )
    if want.not_understood_count is not None:
        assert len(runbook.not_understood) == want.not_understood_count, (
            runbook.not_understood
        )
    section_titles = [s.title for s in runbook.sections]
    for title in want.sections:
        assert title in section_titles


def test_the_table_has_one_entry_per_corpus_file():
    files = corpus_files()
    assert sorted(CORPUS_TABLE) == files
    assert len(files) >= 29
    # At least 20 real runbooks (not refused as "not a runbook"), of 7 shapes.
    runbooks = [
        f
        for f, e in CORPUS_TABLE.items()
        if not (e.refusal and e.refusal.error is NotARunbook)
    ]
    assert len(runbooks) >= 20
    shapes = {s.strip() for e in CORPUS_TABLE.values() for s in e.shapes.split(",")}
    assert shapes == set("abcdefgh")


@pytest.mark.parametrize("rel", sorted(CORPUS_TABLE))
def test_corpus_file(rel):
    entry = CORPUS_TABLE[rel]
    if entry.reading is not None:
        runbook = parse(rel)
        check(rel, runbook, entry.reading)
        # allow_partial changes nothing for a file that has its steps.
        again = parse(rel, allow_partial=True)
        assert again.to_contract() == runbook.to_contract()
        return
    refusal = entry.refusal
    assert refusal is not None
    with pytest.raises(RunbookError) as info:
        parse(rel)
    assert type(info.value) is refusal.error
    assert (info.value.message, info.value.line) == (refusal.message, refusal.line)
    assert info.value.path == Path(rel).name
    if refusal.partial is None:
        with pytest.raises(refusal.error) as again:
            parse(rel, allow_partial=True)
        assert (again.value.message, again.value.line) == (
            refusal.message,
            refusal.line,
        )
    else:
        check(rel, parse(rel, allow_partial=True), refusal.partial)


def shown_text(runbook: Runbook) -> list[str]:
    """Everything the console shows as text (commands are shown from code blocks)."""
    out = [runbook.preamble, *(s.markdown for s in runbook.sections)]
    for playbook in runbook.playbooks:
        out += [playbook.title, playbook.diagnosis]
        out += [s.markdown for s in playbook.context]
        out += [s.title + "\n" + s.body for s in playbook.steps]
    return out


def readable(rel: str) -> Runbook | None:
    entry = CORPUS_TABLE[rel]
    if entry.reading is not None:
        return parse(rel)
    if entry.refusal and entry.refusal.partial is not None:
        return parse(rel, allow_partial=True)
    return None


@pytest.mark.parametrize(
    "rel",
    sorted(r for r, e in CORPUS_TABLE.items() if e.absent),
)
def test_front_matter_and_html_comments_are_not_shown(rel):
    runbook = readable(rel)
    assert runbook is not None
    text = "\n".join(shown_text(runbook))
    for absent in CORPUS_TABLE[rel].absent:
        assert absent not in text


@pytest.mark.parametrize(
    "rel",
    sorted(
        r
        for r, e in CORPUS_TABLE.items()
        if e.reading is not None or (e.refusal and e.refusal.partial is not None)
    ),
)
def test_every_not_understood_entry_names_the_file_and_line(rel):
    runbook = readable(rel)
    name = Path(rel).name
    for entry in runbook.not_understood:
        where, _, what = entry.partition(": ")
        file, _, line = where.rpartition(":")
        assert file == name and line.isdigit() and what, entry
        assert 1 <= int(line) <= (CORPUS / rel).read_bytes().count(b"\n") + 1


def test_kubernetes_mixin_keeps_every_alerts_severity():
    runbook = parse("kubernetes-mixin/runbook.md", allow_partial=True)
    levels = [p.severity for p in runbook.playbooks]
    assert (
        levels.count("critical"),
        levels.count("warning"),
        levels.count("info"),
    ) == (
        9,
        45,
        6,
    )
    # The one alert with no `+ *Severity*:` line has none, and is not listed for it.
    (inodes,) = [
        p for p in runbook.playbooks if p.title == "KubePersistentVolumeInodesFillingUp"
    ]
    assert (inodes.severity, inodes.severity_text) == ("", "")
    # Each playbook keeps its message and runbook link as context.
    assert "*Runbook*: [Link](https://runbooks.prometheus-operator.dev/runbooks/" in (
        runbook.playbooks[0].context[0].markdown
    )
    assert [
        p.slug for p in runbook.playbooks if p.title == "KubePersistentVolumeFillingUp"
    ] == [
        "kubepersistentvolumefillingup",
        "kubepersistentvolumefillingup-2",
    ]


def test_cortex_mixin_reads_every_alert_heading_and_keeps_the_procedures():
    runbook = parse("cortex-jsonnet/cortex-mixin/docs/playbooks.md", allow_partial=True)
    assert runbook.playbooks[-1].title == "CortexKVStoreFailure"
    assert "EtcdAllocatingTooMuchMemory" in [p.title for p in runbook.playbooks]
    assert all(p.alerts == [p.title] for p in runbook.playbooks)
    # Sections after the alerts are the runbook's, not playbooks.
    (halt,) = [s for s in runbook.sections if s.title == "Halt the compactor"]
    assert halt.line == 808


def test_redis_ruby_blocks_are_kept_whole():
    runbook = parse(GL + "redis-cache/remove-cache-entries.md")
    first, second = (s.commands for s in runbook.playbooks[0].steps)
    assert [c.language for c in first + second] == ["ruby", "ruby"]
    assert first[0].text.startswith("require 'redis'\n\npattern = \"cache:gitlab:")
    assert second[0].text.startswith(
        "lines = File.readlines('/tmp/keys-to-delete.txt')"
    )


# A prose step (a paragraph under Mitigation) is titled by its first sentence
# (parse.PROSE_TITLE_MAX: "A prose step's title: its first sentence, at most this
# long"), across the paragraph's line breaks: not by its first source line, which
# stops mid-sentence where the writer wrapped the text.
PROSE_TITLES = {
    OS + "cluster-etcd-operator/etcdMembersDown.md": (
        "If an upgrade is in progress, the alert may automatically resolve in some "
        "time when the master node comes up again.",
        "In the case when you are running on AWS, the AWS instance retirement might "
        "need a manual reboot of the master node.",
    ),
    PO + "general/Watchdog.md": (
        "There are integrations with various notification mechanisms that send a "
        "notification when this alert is not firing.",
    ),
    PO + "kubernetes/KubePodCrashLooping.md": (
        "Talk with developers or read documentation about the app, ensure to define "
        "sane default values to start the app.",
    ),
    PO + "node/NodeFilesystemSpaceFillingUp.md": (
        "For the case that the `mountpoint` label is `/`, `/sysroot` or `/var`; then "
        "removing unused images solves that issue",
    ),
    PO + "kubernetes/KubeNodeNotReady.md": (
        "Once, the problem was resolved that prevented node from being replaced, the "
        "instance should be terminated.",
    ),
}


@pytest.mark.parametrize("rel", sorted(PROSE_TITLES))
def test_prose_steps_are_titled_by_their_first_sentence(rel):
    steps = parse(rel).playbooks[0].steps
    want = PROSE_TITLES[rel]
    assert [s.title for s in steps[: len(want)]] == list(want)
