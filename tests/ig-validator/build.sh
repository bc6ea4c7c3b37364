#!/usr/bin/env bash
# Builds the DDCC IG validator (idempotent; ~0.15 s when nothing changed). Uses the Maven helper of
# tests/servers/hapi. Result: target/app.jar + target/classpath.txt; run it with ./run.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../servers/hapi/maven-build.sh" "$here"
