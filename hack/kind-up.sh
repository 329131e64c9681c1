#!/usr/bin/env bash
# A kind cluster with real KubeVirt (software emulation), CDI, Multus and nmstate, the vdcos
# operator image loaded into it, and the VDC CRDs and operator manifests applied.
#
#   hack/kind-up.sh              # cluster "vdcos"; KUBECONFIG is written to .vdcos/kind.kubeconfig
#   CLUSTER=dev hack/kind-up.sh
#
# Needs docker, kind, kubectl and curl. Versions are pinned in hack/versions.env, the one
# place that also names what the embedded datacenter emulates (environment variables of
# the same names override them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINNED="$(env | grep -E '^(KUBEVIRT|CDI|MULTUS|NMSTATE|KIND)_[A-Z_]+=' || true)"
# shellcheck source=versions.env
. "$ROOT/hack/versions.env"
# A variable set by the caller wins over the pinned value.
while IFS= read -r assignment; do
  if [ -n "$assignment" ]; then export "${assignment?}"; fi
done <<< "$PINNED"

CLUSTER="${CLUSTER:-vdcos}"
IMAGE="${IMAGE:-vdcos-operator:dev}"
export KUBECONFIG="${KUBECONFIG_OUT:-$ROOT/.vdcos/kind.kubeconfig}"
mkdir -p "$(dirname "$KUBECONFIG")"

log() { printf '\n==> %s\n' "$*"; }

if ! kind version | grep -q "kind $KIND_VERSION "; then
  printf 'warning: %s; vdcos is tested with kind %s\n' "$(kind version)" "$KIND_VERSION" >&2
fi

if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "Creating kind cluster $CLUSTER (1 control plane, 2 workers, $KIND_NODE_IMAGE)"
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --kubeconfig "$KUBECONFIG" \
    --wait 120s --config - <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
KIND
else
  kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
fi

log "Installing Multus $MULTUS_VERSION"
# The release's manifest names the moving `snapshot-thick` image: pin the release's own.
curl -fsSL "https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/${MULTUS_VERSION}/deployments/multus-daemonset-thick.yml" \
  | sed "s|multus-cni:snapshot-thick|multus-cni:${MULTUS_VERSION}-thick|" \
  | kubectl apply -f -

log "Installing kubernetes-nmstate $NMSTATE_VERSION"
NMSTATE_URL="https://github.com/nmstate/kubernetes-nmstate/releases/download/${NMSTATE_VERSION}"
for manifest in nmstate.io_nmstates.yaml namespace.yaml service_account.yaml role.yaml \
    role_binding.yaml operator.yaml; do
  kubectl apply -f "$NMSTATE_URL/$manifest"
done
kubectl wait --for=condition=Available deployment/nmstate-operator -n nmstate --timeout=300s
kubectl apply -f - <<NMSTATE
apiVersion: nmstate.io/v1
kind: NMState
metadata:
  name: nmstate
NMSTATE

log "Installing KubeVirt $KUBEVIRT_VERSION"
KUBEVIRT_URL="https://github.com/kubevirt/kubevirt/releases/download/${KUBEVIRT_VERSION}"
kubectl apply -f "$KUBEVIRT_URL/kubevirt-operator.yaml"
# The one place where vdcos's KubeVirt configuration is stated (the simulated KubeVirt of
# devcluster behaves the same way):
# - useEmulation: kind nodes have no /dev/kvm; guests run in software emulation (slow, fine
#   for tests).
# - vmRolloutStrategy LiveUpdate: changes to a running VM's template (CPU sockets, memory,
#   placement) are applied live instead of waiting for a restart; the rest sets
#   RestartRequired.
# - workloadUpdateMethods [LiveMigrate]: CPU and memory hot-plug complete through a live
#   migration, which KubeVirt only starts when LiveMigrate is listed here.
kubectl apply -f - <<KUBEVIRT
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata:
  name: kubevirt
  namespace: kubevirt
spec:
  configuration:
    developerConfiguration:
      useEmulation: true
    vmRolloutStrategy: LiveUpdate
  workloadUpdateStrategy:
    workloadUpdateMethods:
      - LiveMigrate
KUBEVIRT
kubectl wait --for=condition=Available kubevirt/kubevirt -n kubevirt --timeout=600s

log "Installing CDI $CDI_VERSION"
CDI_URL="https://github.com/kubevirt/containerized-data-importer/releases/download/${CDI_VERSION}"
kubectl apply -f "$CDI_URL/cdi-operator.yaml"
kubectl apply -f "$CDI_URL/cdi-cr.yaml"
kubectl wait --for=condition=Available cdi/cdi --timeout=600s

log "Building and loading the operator image $IMAGE"
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "Applying the VDC CRDs and the operator"
kubectl apply -f "$ROOT/crds/"
kubectl wait --for=condition=Established crd --all --timeout=60s
kubectl apply -k "$ROOT/manifests/"
kubectl rollout status deployment/vdcos-operator -n vdcos-system --timeout=300s

cat <<DONE

kind cluster "$CLUSTER" is ready with KubeVirt $KUBEVIRT_VERSION and the vdcos operator.
  export KUBECONFIG=$KUBECONFIG
  kubectl apply -f examples/ && kubectl get vdc
  VDCOS_E2E_KUBECONFIG=$KUBECONFIG pytest tests/e2e
DONE
