"""The pure part of the emulated Fence Agents Remediation controller: which agent and
parameters it can run against a simulated host's BMC, and the status conditions it writes.

Words and names are medik8s/fence-agents-remediation's (`api/v1alpha1/*_params.go`,
`pkg/utils/conditions.go`, `pkg/utils/events.go`, `pkg/utils/taints.go`) and, for a
failing agent, ClusterLabs fence-agents' (`lib/fencing.py`). A simulated host has one BMC
that speaks IPMI and Redfish, so the IPMI family and fence_redfish are the agents that
reach it; any other agent name is refused, as upstream's validator refuses an agent its
image does not ship.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devcluster.sim.vmi_status import rfc3339

Obj = Mapping[str, Any]

FAR_FINALIZER = "fence-agents-remediation.medik8s.io/far-finalizer"
NODE_NAME_ANNOTATION = "remediation.medik8s.io/node-name"
NHC_TIMED_OUT_ANNOTATION = "remediation.medik8s.io/nhc-timed-out"
REMEDIATION_TAINT_KEY = "remediation.medik8s.io/fence-agents-remediation"
OUT_OF_SERVICE_TAINT_KEY = "node.kubernetes.io/out-of-service"
OUT_OF_SERVICE_TAINT_VALUE = "nodeshutdown"
CONTROLLER_NAME = "FenceAgentsRemediation"  # the event recorder's name (main.go)
EXECUTER_NAME = "FenceAgentsRemediation-executer"

STRATEGY_RESOURCE_DELETION = "ResourceDeletion"
STRATEGY_OUT_OF_SERVICE_TAINT = "OutOfServiceTaint"

PROCESSING = "Processing"
FENCE_AGENT_ACTION_SUCCEEDED = "FenceAgentActionSucceeded"
SUCCEEDED = "Succeeded"

# Reasons (utils.ConditionsChangeReason) and the message each writes.
REMEDIATION_FINISHED_NODE_NOT_FOUND = "RemediationFinishedNodeNotFound"
REMEDIATION_INTERRUPTED_BY_NHC = "RemediationInterruptedByNHC"
REMEDIATION_STARTED = "RemediationStarted"
FENCE_AGENT_SUCCEEDED = "FenceAgentSucceeded"
FENCE_AGENT_FAILED = "FenceAgentFailed"
FENCE_AGENT_TIMED_OUT = "FenceAgentTimedOut"
REMEDIATION_FINISHED_SUCCESSFULLY = "RemediationFinishedSuccessfully"
CONDITION_MESSAGES = {
    REMEDIATION_FINISHED_NODE_NOT_FOUND: "FAR CR name doesn't match a node name",
    REMEDIATION_INTERRUPTED_BY_NHC:
        "Node Healthcheck timeout annotation has been set. Remediation has stopped",
    REMEDIATION_STARTED: "FAR CR was found, its name matches one of the cluster nodes, "
                         "and a finalizer was set to the CR",
    FENCE_AGENT_SUCCEEDED: "FAR taint was added and the fence agent command has been created "
                           "and executed successfully",
    FENCE_AGENT_FAILED: "Fence agent command has failed",
    FENCE_AGENT_TIMED_OUT: "Time out occurred while executing the Fence agent command",
    REMEDIATION_FINISHED_SUCCESSFULLY:
        "The unhealthy node was fully remediated (it was tainted, fenced using the fence "
        "agent and all the node resources have been deleted)",
}

# Validation errors, in the webhook's and BuildFenceAgentParams' words.
ERROR_UNSUPPORTED_ACTION = "FAR doesn't support any other action than `reboot` or `off`"
ERROR_MISSING_PARAMS = "invalid spec: mandatory parameters are missing"
ERROR_DEFINED_TWICE = "invalid multiple definition of FAR parameter, parameter name: {}"

# Agents that reach the simulated BMC (IPMI over LAN, or Redfish).
IPMI_AGENTS = frozenset({"fence_ipmilan", "fence_ipmilanplus", "fence_idrac", "fence_ilo3",
                         "fence_ilo4", "fence_ilo5", "fence_imm"})
REDFISH_AGENTS = frozenset({"fence_redfish"})
SUPPORTED_AGENTS = IPMI_AGENTS | REDFISH_AGENTS
# fence-agents' option aliases (lib/fencing.py all_opt getopt/longopt).
ADDRESS_OPTIONS = ("--ip", "--ipaddr", "-a")
LOGIN_OPTIONS = ("--username", "--login", "-l")
PASSWORD_OPTIONS = ("--password", "-p", "--password-script", "-S")
ACTION_OPTIONS = ("--action", "action", "-o")
ACTION_REBOOT, ACTION_OFF = "reboot", "off"


class FenceSpecError(ValueError):
    """The remediation cannot be run as specified (no retry helps)."""


@dataclass(frozen=True)
class FenceCommand:
    """What the controller would execute: the agent, its action and its parameters."""

    agent: str
    action: str
    parameters: dict[str, str]

    def option(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            if name in self.parameters:
                return self.parameters[name]
        return None


def target_node_name(far: Obj) -> str:
    """`GetNodeName`: the node-name annotation, else the remediation's own name."""
    meta = far.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return str(annotations.get(NODE_NAME_ANNOTATION) or meta.get("name", ""))


def unsupported_agent_message(agent: str) -> str | None:
    return None if agent in SUPPORTED_AGENTS else f"unsupported fence agent: {agent}"


def _check_action(name: str, value: str) -> None:
    if name in ("action", "--action") and value not in ("", ACTION_REBOOT, ACTION_OFF):
        raise FenceSpecError(ERROR_UNSUPPORTED_ACTION)


def _render(value: str, node: str) -> str:
    """The only template upstream renders in shared parameters: {{.NodeName}}."""
    return value.replace("{{.NodeName}}", node).replace("{{ .NodeName }}", node)


def build_fence_command(far: Obj, secret_parameters: Mapping[str, str]) -> FenceCommand:
    """`BuildFenceAgentParams`: shared, then node, then secret parameters; --action
    defaults to reboot. Raises FenceSpecError with upstream's message."""
    spec = far.get("spec") or {}
    node = target_node_name(far)
    parameters: dict[str, str] = {}
    templated = False
    for name, value in (spec.get("sharedparameters") or {}).items():
        _check_action(str(name), str(value))
        rendered = _render(str(value), node)
        templated = templated or rendered != value
        parameters[str(name)] = rendered
    node_parameters = spec.get("nodeparameters") or {}
    for name, per_node in node_parameters.items():
        if node in (per_node or {}):
            _check_action(str(name), str(per_node[node]))
            parameters[str(name)] = str(per_node[node])
    for name, value in secret_parameters.items():
        _check_action(name, value)
        if name in parameters:
            raise FenceSpecError(ERROR_DEFINED_TWICE.format(name))
        parameters[name] = value
    only_shared = not node_parameters and not templated and not secret_parameters
    if not parameters or only_shared:
        raise FenceSpecError(ERROR_MISSING_PARAMS)
    action = next((parameters[a] for a in ACTION_OPTIONS if a in parameters), "") or \
        ACTION_REBOOT
    parameters.setdefault("--action", action)
    return FenceCommand(str(spec.get("agent", "")), action, parameters)


def agent_failure(command: FenceCommand, bmc_addresses: set[str] | None) -> str | None:
    """Why the agent exits non-zero against this host's BMC (fence-agents' words), or
    None when it powers the host off."""
    if command.option(ADDRESS_OPTIONS) is None:
        return "Failed: You have to enter fence address"
    if command.option(LOGIN_OPTIONS) is None:
        return "Failed: You have to set login name"
    if command.option(PASSWORD_OPTIONS) is None:
        return "Failed: You have to enter password or password script"
    address = str(command.option(ADDRESS_OPTIONS))
    if bmc_addresses is not None and address.split(":")[0] not in bmc_addresses:
        return "Failed: Unable to connect/login to fencing device"
    return None


def parse_duration(text: str, default: float) -> float:
    """A Go duration ("5s", "1m30s", "500ms") in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, number, index = 0.0, "", 0
    if not text:
        return default
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h")
                     if text.startswith(u, index)), None)
        if unit is None or not number:
            return default
        total += float(number) * units[unit]
        number, index = "", index + len(unit)
    return total if not number else default


def _find(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def conditions_after(reason: str, conditions: Sequence[Obj], now: datetime,
                     generation: int | None = None) -> tuple[list[dict[str, Any]], bool]:
    """`UpdateConditions`: the three conditions after `reason`; and whether any changed
    (then lastUpdateTime is stamped)."""
    false_all = {PROCESSING: "False", FENCE_AGENT_ACTION_SUCCEEDED: "False", SUCCEEDED: "False"}
    wanted: dict[str, str] = {
        REMEDIATION_FINISHED_NODE_NOT_FOUND: false_all,
        REMEDIATION_INTERRUPTED_BY_NHC: false_all,
        FENCE_AGENT_FAILED: false_all,
        FENCE_AGENT_TIMED_OUT: false_all,
        REMEDIATION_STARTED: {PROCESSING: "True", FENCE_AGENT_ACTION_SUCCEEDED: "Unknown",
                              SUCCEEDED: "Unknown"},
        FENCE_AGENT_SUCCEEDED: {FENCE_AGENT_ACTION_SUCCEEDED: "True"},
        REMEDIATION_FINISHED_SUCCESSFULLY: {PROCESSING: "False", SUCCEEDED: "True"},
    }[reason]
    result = [dict(c) for c in conditions]
    changed = False
    for type_ in (PROCESSING, FENCE_AGENT_ACTION_SUCCEEDED, SUCCEEDED):
        status = wanted.get(type_)
        if status is None:
            continue
        existing = _find(result, type_)
        if existing is not None and existing.get("status") == status:
            continue
        condition: dict[str, Any] = {"type": type_, "status": status, "reason": reason,
                                     "message": CONDITION_MESSAGES[reason],
                                     "lastTransitionTime": rfc3339(now)}
        if generation is not None:
            condition["observedGeneration"] = generation
        if existing is None:
            result.append(condition)
        else:
            result[result.index(existing)] = condition
        changed = True
    return result, changed


def is_condition_true(far: Obj, type_: str) -> bool:
    conditions = (far.get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def remediation_taint() -> dict[str, Any]:
    return {"key": REMEDIATION_TAINT_KEY, "effect": "NoSchedule"}


def out_of_service_taint(now: datetime) -> dict[str, Any]:
    return {"key": OUT_OF_SERVICE_TAINT_KEY, "value": OUT_OF_SERVICE_TAINT_VALUE,
            "effect": "NoExecute", "timeAdded": rfc3339(now)}


def taints_with(node: Obj, taint: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The node's taints plus `taint` (unique by key and effect), or None if present."""
    taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    if any(t.get("key") == taint["key"] and t.get("effect") == taint["effect"] for t in taints):
        return None
    return [*taints, dict(taint)]


def taints_without(node: Obj, key: str, effect: str) -> list[dict[str, Any]] | None:
    """The node's taints without key:effect, or None if it has none such."""
    taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    kept = [t for t in taints if not (t.get("key") == key and t.get("effect") == effect)]
    return kept if len(kept) != len(taints) else None


def event_message(text: str) -> str:
    """medik8s/common's events: "[remediation] <message>"."""
    return f"[remediation] {text}"
