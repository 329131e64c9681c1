"""What the operator and the embedded datacenter share: Kubernetes quantities, resource
paths, a coalescing work queue, an informer and a thin REST client."""
