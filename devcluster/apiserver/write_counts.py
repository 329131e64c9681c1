"""Write requests counted by client and resource, for benchmarks (not a Kubernetes API).

The client is the User-Agent's product token ("vdcos-operator", "kopf", "devcluster-sim"),
so that the operator's and the simulation's writes can be told apart when they run in
other processes. Served as JSON at WRITE_COUNTS_PATH to an admin.
"""

from __future__ import annotations

import collections

WRITE_COUNTS_PATH = "/debug/devcluster/writes"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def written_resource(parts: list[str]) -> str:
    """`group/plural[/subresource]` of a resource path split at '/'."""
    if parts[:1] == ["api"]:
        rest, group = parts[2:], ""
    elif parts[:1] == ["apis"]:
        rest, group = parts[3:], parts[1] if len(parts) > 1 else ""
    else:
        return "/".join(parts)
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    plural = rest[0] if rest else ""
    subresource = "/".join(rest[2:])
    name = f"{group}/{plural}" if group else plural
    return f"{name}/{subresource}" if subresource else name


class WriteCounts:
    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def record(self, agent: str, method: str, parts: list[str]) -> None:
        if method not in READ_METHODS:
            self._counts[(agent, written_resource(parts))] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{agent: {resource: writes, ..., "total": writes}}"""
        found: dict[str, dict[str, int]] = {}
        for (agent, resource), count in sorted(self._counts.items()):
            of_agent = found.setdefault(agent, {"total": 0})
            of_agent[resource] = count
            of_agent["total"] += count
        return found
