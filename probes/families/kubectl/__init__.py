"""`kubectl` commands, run against the Kubernetes API with httpx: `get`,
`describe`, `logs` and `top` are probes; every other subcommand (`scale`,
`rollout restart`, `delete`, `apply`, `exec`...) and the reading ones that never end
(`logs -f`, `get -w`) are manual. The family has no actions.

Target: `TARGET_KUBECONFIG`, a kubeconfig file on the worker (a command's
`--kubeconfig ${NAME}` names another target). See kubeconfig.py for what it may hold."""

from __future__ import annotations

from ...binding import Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, ParameterError, Result
from . import runner
from .recognise import DEFAULT_TARGET, recognise_kubectl

WHAT = {
    "get": "list",
    "describe": "describe",
    "logs": "read the logs of",
    "top": "read CPU and memory use of",
}


class KubectlFamily(BaseFamily):
    name = "kubectl"
    label = "Kubernetes (kubectl and oc, read-only)"
    programs = frozenset({"kubectl", "oc"})
    examples = (
        ("bash", "kubectl get pods -n yomira -l app=api -o wide"),
        ("bash", "kubectl describe deploy/api -n yomira"),
        ("bash", "kubectl logs deploy/api -n yomira --tail=200 --since=15m"),
        ("bash", "kubectl logs {pod} -n yomira -c api --previous"),
        ("bash", "kubectl top pods -n yomira --sort-by=cpu"),
        ("bash", "kubectl --context prod get nodes"),
        ("bash", "oc get clusterversion -o yaml"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_kubectl(call.tokens, call.text)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        """A probe changes nothing: say what it will read, and where."""
        if not command.spec:
            return Preview(False, "A manual command: the console does not run it.")
        spec = runner.fill(command.spec, params, expand=False)
        verb = spec.get("verb", "get")
        if verb in {"get", "describe"}:
            things = ", ".join(
                f"{o['type']}/{o['name']}" if o.get("name") else o["type"]
                for o in spec.get("objects") or []
            )
        elif verb == "logs":
            obj = spec.get("object")
            things = (
                f"{obj['type']}/{obj['name']}" if obj else f"pods {spec['selector']}"
            )
        else:
            things = spec.get("what", "pods") + (
                f"/{spec['name']}" if spec.get("name") else ""
            )
        if spec.get("all_namespaces"):
            where = " in all namespaces"
        elif spec.get("namespace"):
            where = f" in namespace {spec['namespace']}"
        else:
            where = " in the context's namespace"
        facts = [f"target: TARGET_{self.targets(command)[0]}"]
        facts.append(
            f"context: {spec.get('context') or 'the kubeconfig current-context'}"
        )
        if spec.get("selector") and verb != "logs":
            facts.append(f"selector: {spec['selector']}")
        return Preview(
            False,
            f"A probe: it will {WHAT.get(verb, verb)} {things}{where} through the "
            "Kubernetes API (GET requests only) and change nothing.",
            facts=facts,
        )

    def confirm_word(self, command: CommandLike) -> str:
        return str(command.spec.get("verb") or "kubectl")  # probes only: never asked

    def targets(self, command: CommandLike) -> list[str]:
        return [(command.spec or {}).get("target") or DEFAULT_TARGET]

    def needs_approval(self, command: CommandLike) -> bool:
        return False  # no actions: everything that changes the cluster is manual

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        if not command.spec:
            return None
        try:
            runner.fill(command.spec, params, expand=False)
        except ParameterError as exc:
            return str(exc)
        return None


FAMILY = KubectlFamily()
