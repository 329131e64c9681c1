#!/usr/bin/env bash
# Downloads the upstream oracles the tests read (see tests/upstream.py): the published
# schemas of KubeVirt, CDI, Multus, nmstate, medik8s and external-snapshotter, and KubeVirt's
# example manifests, at the commits pinned in hack/versions.env. For a clone without
# ../shared beside it.
#
#   hack/fetch-upstream.sh          # into .vdcos/upstream (where the tests look by default)
#   hack/fetch-upstream.sh DIR      # into DIR; then run the tests with VDCOS_UPSTREAM=DIR
#
# Needs git (2.35 or later) and access to github.com (UPSTREAM_GIT_BASE names a mirror
# instead: repositories at $UPSTREAM_GIT_BASE/<owner>/<name>.git).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/versions.env
. "$ROOT/hack/versions.env"
DEST="${1:-$ROOT/.vdcos/upstream}"
GIT_BASE="${UPSTREAM_GIT_BASE:-https://github.com}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/out"

# checkout OWNER/NAME COMMIT PATTERN...: only the files matching PATTERNs of that commit,
# without the repository's history or its other blobs (KubeVirt's tree is large).
checkout() {
  local repo="$1" commit="$2"
  shift 2
  local dir="$WORK/src/${repo//\//_}"
  printf '==> %s @ %s\n' "$repo" "$commit"
  git init -q "$dir"
  git -C "$dir" remote add origin "$GIT_BASE/$repo.git"
  git -C "$dir" sparse-checkout set --no-cone "$@"
  git -C "$dir" fetch -q --depth 1 --filter=blob:none origin "$commit"
  git -C "$dir" -c advice.detachedHead=false checkout -q FETCH_HEAD
  CHECKED_OUT="$dir"
}

# place SOURCE TARGET: one file into the output tree, failing if upstream lacks it.
place() {
  mkdir -p "$(dirname "$OUT/$2")"
  cp "$1" "$OUT/$2"
}

checkout kubevirt/kubevirt "$KUBEVIRT_SCHEMA_COMMIT" /api/openapi-spec/swagger.json /examples/
place "$CHECKED_OUT/api/openapi-spec/swagger.json" schemas/kubevirt/swagger.json
# The VirtualMachine, VMI, pool, replica-set, preset and migration examples: the objects the
# emulation runs (the instancetypes, preferences, priority classes and resource claims some
# of them name are left out, as in ../shared).
for example in "$CHECKED_OUT"/examples/vm*.yaml "$CHECKED_OUT"/examples/*migration*.yaml; do
  place "$example" "conformance/kubevirt-examples/$(basename "$example")"
done

checkout kubevirt/containerized-data-importer "$CDI_SCHEMA_COMMIT" /api/openapi-spec/swagger.json
place "$CHECKED_OUT/api/openapi-spec/swagger.json" schemas/cdi/swagger.json

checkout k8snetworkplumbingwg/network-attachment-definition-client "$NAD_CLIENT_SCHEMA_COMMIT" \
  /artifacts/networks-crd.yaml
place "$CHECKED_OUT/artifacts/networks-crd.yaml" schemas/multus/networks-crd.yaml

checkout nmstate/kubernetes-nmstate "$NMSTATE_SCHEMA_COMMIT" /deploy/crds/
for kind in nodenetworkconfigurationpolicies nodenetworkconfigurationenactments \
    nodenetworkstates; do
  place "$CHECKED_OUT/deploy/crds/nmstate.io_$kind.yaml" "schemas/nmstate/$kind.yaml"
done

checkout medik8s/fence-agents-remediation "$FAR_SCHEMA_COMMIT" /config/crd/bases/
place "$CHECKED_OUT/config/crd/bases/fence-agents-remediation.medik8s.io_fenceagentsremediations.yaml" \
  schemas/medik8s/fenceagentsremediations.yaml

checkout kubernetes-csi/external-snapshotter "$SNAPSHOTTER_SCHEMA_COMMIT" /client/config/crd/
for kind in volumesnapshots volumesnapshotcontents volumesnapshotclasses; do
  place "$CHECKED_OUT/client/config/crd/snapshot.storage.k8s.io_$kind.yaml" \
    "schemas/external-snapshotter/snapshot.storage.k8s.io_$kind.yaml"
done

# Replace only what this script writes, and only once everything arrived.
mkdir -p "$DEST"
rm -rf "$DEST/schemas" "$DEST/conformance"
mv "$OUT/schemas" "$OUT/conformance" "$DEST/"
printf '\nUpstream oracles are in %s (%s files).\n' "$DEST" "$(find "$DEST" -type f | wc -l)"
if [ "$DEST" != "$ROOT/.vdcos/upstream" ]; then
  printf 'Run the tests with VDCOS_UPSTREAM=%s\n' "$DEST"
fi
