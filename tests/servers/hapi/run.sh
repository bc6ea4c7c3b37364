#!/usr/bin/env bash
# Starts the HAPI FHIR JPA test server in the foreground (exec: the PID you started is the JVM;
# SIGTERM stops it cleanly).
#
#   HAPI_PORT=0 tests/servers/hapi/run.sh      # or: run.sh <port>; 0 = a free port chosen by the OS
#
# stdout: exactly one line once the server accepts requests:
#   HAPI FHIR ready http://127.0.0.1:<port>/fhir
# stderr: build output (only when a build was needed) and WARN+ logs.
#
# Environment:
#   HAPI_PORT        port (default 8080; the first argument wins)
#   HAPI_HEAP        max heap (default 512m)
#   HAPI_LOG_LEVEL   root log level (default WARN; INFO/DEBUG for debugging)
#   HAPI_JAVA        java executable (default: java on PATH; Java 17+)
#   HAPI_JAVA_OPTS   extra JVM options, appended last (e.g. -XX:TieredStopAtLevel=4 for full JIT in benchmarks)
#   HAPI_SKIP_BUILD  1 = do not run build.sh first
#   HAPI_VALIDATE    1 = validate every resource a request carries (RequestValidatingInterceptor; 422 on errors)
#   HAPI_CDS         0 = do not use (or record) the class-data-sharing archive
#   HAPI_DB_URL      a PostgreSQL JDBC URL (jdbc:postgresql://127.0.0.1:5433/hapi; postgres.sh starts one), with
#                    HAPI_DB_USER (default postgres) and HAPI_DB_PASSWORD; default: H2 in memory, empty at start
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${HAPI_SKIP_BUILD:-0}" != 1 ]]; then
	"$here/build.sh" >&2
fi
cp="$here/target/app.jar:$(cat "$here/target/classpath.txt")"
jsa="$here/target/app-cds.jsa"
cds=()
if [[ "${HAPI_CDS_TRAIN:-0}" == 1 ]]; then
	# build.sh: one start that records the classes it loaded, then exits; stdout goes to stderr.
	rm -f "$jsa"
	cds=(-XX:ArchiveClassesAtExit="$jsa" -Dhapi.exitWhenReady=true)
	exec 1>&2
elif [[ "${HAPI_CDS:-1}" != 0 && -f "$jsa" ]]; then
	cds=(-XX:SharedArchiveFile="$jsa")
fi
# JVM unified logging (CDS warnings etc.) goes to stderr so stdout keeps only the ready line.
# shellcheck disable=SC2086
exec "${HAPI_JAVA:-java}" \
	-Xmx"${HAPI_HEAP:-512m}" -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
	-Xlog:disable -Xlog:all=error:stderr \
	"${cds[@]}" \
	-Djava.net.preferIPv4Stack=true -Dfile.encoding=UTF-8 \
	${HAPI_JAVA_OPTS:-} \
	-cp "$cp" org.ddcc.testserver.HapiTestServer "$@"
