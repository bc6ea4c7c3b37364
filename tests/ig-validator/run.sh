#!/usr/bin/env bash
# Validates FHIR JSON files against the WHO DDCC IG (see README.md). Builds first if needed.
#
#   tests/ig-validator/run.sh [--package <tgz>] [--document-profile <canonical>] <file.json>...
#
# --package defaults to ../shared/vectors/ddcc/ig-1.0.0/who.ddcc-1.0.0-package.tgz (beside the repo).
# stdout: one JSON object; exit 0 after validating, 2 on usage/load errors.
# Environment: IGV_JAVA (java binary), IGV_HEAP (default 768m), IGV_LOG_LEVEL (default ERROR),
# IGV_SKIP_BUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${IGV_SKIP_BUILD:-0}" != 1 ]]; then
	"$here/build.sh" >&2
fi
args=("$@")
if [[ " $* " != *" --package "* ]]; then
	args=(--package "$here/../../../shared/vectors/ddcc/ig-1.0.0/who.ddcc-1.0.0-package.tgz" "$@")
fi
exec "${IGV_JAVA:-java}" -Xmx"${IGV_HEAP:-768m}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss4m \
	-Xlog:disable -Xlog:all=error:stderr \
	-cp "$here/target/app.jar:$(cat "$here/target/classpath.txt")" org.ddcc.igvalidator.IgValidator "${args[@]}"
