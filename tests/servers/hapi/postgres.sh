#!/usr/bin/env bash
# A throw-away PostgreSQL for the HAPI test server (bench/load --fhir-db postgres): a new cluster in <dir>,
# served in the foreground on 127.0.0.1:<port> (exec: the PID you started is the postmaster; SIGINT or
# SIGTERM stops it). Debian's `postgresql` package (apt-get install -y postgresql); the cluster it may have
# set up is not used. As root, the server runs as the `postgres` user (PostgreSQL refuses root).
#
#   tests/servers/hapi/postgres.sh /tmp/pg 5433 [-c name=value ...] &
#   HAPI_DB_URL=jdbc:postgresql://127.0.0.1:5433/hapi tests/servers/hapi/run.sh 0
#
# Database `hapi`, user `postgres`, no password (trust, 127.0.0.1 only). PostgreSQL's default settings (fsync
# and synchronous_commit on, as a deployment keeps them; shared_buffers 128MB), but for logging. It logs
# "database system is ready to accept connections" when it is. Arguments after the port go to the server as
# they are (later `-c` settings win over earlier ones). As root, <dir>'s parents must be searchable by `postgres`.
set -euo pipefail
dir="${1:?usage: postgres.sh <data dir> <port>}"
port="${2:?usage: postgres.sh <data dir> <port>}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$bin/postgres" ]] || { echo "PostgreSQL not installed: apt-get install -y postgresql" >&2; exit 2; }
as=()
if [[ $(id -u) == 0 ]]; then
	as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
fi
if [[ ! -f "$dir/PG_VERSION" ]]; then
	"${as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
	# a database for HAPI, made by a single-user backend (no server needed yet)
	echo "CREATE DATABASE hapi;" | "${as[@]}" "$bin/postgres" --single -D "$dir" postgres >/dev/null
fi
# Every autovacuum run and checkpoint is logged (to stderr: bench/load --keep keeps it), so that a latency
# outlier can be matched to one.
exec "${as[@]}" "$bin/postgres" -D "$dir" -h 127.0.0.1 -p "$port" -k "$dir" -c shared_buffers=128MB \
	-c log_autovacuum_min_duration=0 -c log_checkpoints=on "${@:3}"
