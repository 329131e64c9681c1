"""Kubernetes value types shared by the operator (`controllers`) and the embedded datacenter
(`devcluster`), which must not import each other."""
