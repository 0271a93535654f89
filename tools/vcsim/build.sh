#!/usr/bin/env bash
# Builds tools/vcsim against Debian's govmomi source (golang-github-vmware-govmomi-dev), no modules.
# Usage: tools/vcsim/build.sh [OUT]   (default OUT: .peers/vcsim/vcsim)
# Rebuilds only when the Go sources, the Go toolchain or the govmomi package changed; prints OUT.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/.peers/vcsim/vcsim}"
gopath=/usr/share/gocode
[[ -d $gopath/src/github.com/vmware/govmomi/simulator ]] ||
  { echo "vcsim build: $gopath has no govmomi simulator (apt-get install golang-github-vmware-govmomi-dev)" >&2; exit 1; }
command -v go >/dev/null || { echo "vcsim build: no go toolchain (apt-get install golang-go)" >&2; exit 1; }

govmomi_version=$(dpkg-query -W -f '${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown)
key=$( { cat "$here"/*.go "$here/build.sh"; go version; echo "$govmomi_version"; } | sha256sum | cut -d' ' -f1)
if [[ -x $out && -f $out.key && $(cat "$out.key") == "$key" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
start=$(date +%s%3N)
# A private build cache next to the binary keeps rebuilds fast without touching $HOME.
(cd "$root" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$(dirname "$out")/gocache" \
  go build -o "$out.tmp" ./tools/vcsim)
mv -f "$out.tmp" "$out"
echo "$key" >"$out.key"
echo "vcsim build: $(( $(date +%s%3N) - start )) ms (govmomi $govmomi_version, $(go version | cut -d' ' -f3))" >&2
echo "$out"
