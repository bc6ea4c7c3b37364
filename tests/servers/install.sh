#!/usr/bin/env bash
# Installs the Node test servers' dependencies from the npm registry: OpenHIM core (openhim/) and CongoDB
# (openhim/mongo/, plus the CongoDB code extracted by its setup.sh). The FHIR server is HAPI (hapi/, Maven:
# hapi/build.sh). Also the browser test driver (../browser: playwright-core, axe-core).
# Idempotent and quiet: a folder is (re)installed with `npm ci` only when its node_modules is missing or its
# package-lock.json changed since the last install. Prints nothing on success; on failure prints npm's log and
# exits non-zero. A registry fetch that stalls times out after 60 s (3 retries) instead of npm's 5 min.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

command -v node >/dev/null || { echo "install.sh: node not found" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "install.sh: Node >= 20 required, found $(node --version)" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

lock_hash() {
  node -e 'process.stdout.write(require("crypto").createHash("sha256").update(require("fs").readFileSync(process.argv[1])).digest("hex"))' "$1"
}

install_folder() {
  local dir="$1"
  local stamp="$dir/node_modules/.ddcc-install-stamp"
  local want
  want="$(lock_hash "$dir/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  # --ignore-scripts: openhim-core's install scripts are not needed to run lib/server.js; none of the others
  # needs one either.
  if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefer-offline --fetch-timeout=60000 --fetch-retries=3) >"$log" 2>&1; then
    grep -v 'Unknown user config "nodedir"' "$log" >&2 || true
    echo "install.sh: npm ci failed in $dir" >&2
    exit 1
  fi
  printf '%s' "$want" >"$stamp"
}

install_folder "$here/openhim"
install_folder "$here/../browser"
install_folder "$here/openhim/mongo"

if ! "$here/openhim/mongo/setup.sh" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install.sh: CongoDB setup failed" >&2
  exit 1
fi
