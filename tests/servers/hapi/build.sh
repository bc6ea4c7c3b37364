#!/usr/bin/env bash
# Builds the HAPI FHIR JPA test server (idempotent; ~0.2 s when nothing changed).
# Result: target/app.jar, target/classpath.txt and target/app-cds.jsa (a class-data-sharing
# archive recorded by one training start; it makes later starts faster). HAPI_CDS=0 skips it.
# Start the server with ./run.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${HAPI_CDS:-1}" == 0 ]]; then
	exec "$here/maven-build.sh" "$here"
fi
exec "$here/maven-build.sh" "$here" env HAPI_SKIP_BUILD=1 HAPI_CDS_TRAIN=1 "$here/run.sh" 0
