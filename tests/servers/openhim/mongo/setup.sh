#!/usr/bin/env bash
# Extracts CongoDB (the self-contained `dist_ts/congodb/` folder of @push.rocks/smartmongo 2.2.0) next to mongo.mjs.
#
# The smartmongo package itself cannot be installed from the registry (its dependency @push.rocks/lik@^6.4.1 does
# not resolve, and it would pull mongodb-memory-server, which downloads binaries). Only CongoDB is needed: `npm pack`
# fetches the tarball, its integrity is checked against the registry's published sha512, and only that folder is
# kept. Idempotent: does nothing when the marker file of this version is present. Its six runtime dependencies
# are in package.json here (installed with `npm ci`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package="@push.rocks/smartmongo@2.2.0"
integrity="sha512-ovVCNoJ3D0aBuKtoKaQWWQKvBngaGJq9fAPQigzji1EHsS1XyGpXWCpe5nq/ptGvBROOcpqZcOFEGAcrnb+OjA=="
target="$here/congodb"
marker="$target/.extracted-from-smartmongo-2.2.0"

if [[ -f "$marker" ]]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack "$package" --silent >/dev/null 2>"$work/pack.log") || {
  cat "$work/pack.log" >&2
  echo "setup.sh: npm pack $package failed" >&2
  exit 1
}
tarball="$(ls "$work"/*.tgz)"
actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
if [[ "$actual" != "$integrity" ]]; then
  echo "setup.sh: integrity mismatch for $package: $actual" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work" package/dist_ts/congodb
rm -rf "$target.tmp" "$target"
mv "$work/package/dist_ts/congodb" "$target.tmp"
touch "$target.tmp/.extracted-from-smartmongo-2.2.0"
mv "$target.tmp" "$target"
