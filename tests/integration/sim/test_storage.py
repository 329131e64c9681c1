"""The simulated provisioner binds each claim once: one volume, one event, one log line."""

from __future__ import annotations

import re

from tests.harness import DevCluster

from .helpers import apply, busybox_pod, get_json


def claim(name: str, storage_class: str) -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  storageClassName: {storage_class}
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"""


def bound_lines(cluster: DevCluster, name: str) -> list[str]:
    return [line for line in cluster.log().splitlines()
            if "Claim bound" in line and re.search(rf"default/{name}\b", line)]


def test_each_claim_is_bound_and_logged_once(datacenter: DevCluster) -> None:
    apply(datacenter, claim("immediate", "shared"))
    apply(datacenter, claim("first-consumer", "standard"))
    apply(datacenter, busybox_pod("consumer", spec_extra="""
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: first-consumer
"""))
    datacenter.kubectl("wait", "pvc/immediate", "pvc/first-consumer",
                       "--for=jsonpath={.status.phase}=Bound", "--timeout=30s")
    datacenter.kubectl("wait", "pod/consumer", "--for=condition=Ready", "--timeout=30s")

    for name in ("immediate", "first-consumer"):
        pvc = get_json(datacenter, "pvc", name)
        assert pvc["spec"]["volumeName"] == f"pvc-{pvc['metadata']['uid']}"
        events = get_json(datacenter, "events", "--field-selector",
                          f"involvedObject.name={name},reason=ProvisioningSucceeded")["items"]
        assert [e.get("count", 1) for e in events] == [1]
        assert len(bound_lines(datacenter, name)) == 1, bound_lines(datacenter, name)
