#!/usr/bin/env bash
# Shared by tests/servers/hapi/build.sh and tests/ig-validator/build.sh.
#
# usage: maven-build.sh <maven project dir> [post-build command...]
#
# Compiles the project, packs target/classes into target/app.jar (plain jar, no dependencies) and
# writes <dir>/target/classpath.txt (dependency:build-classpath, absolute paths of the runtime jars),
# so the program starts with `java -cp <dir>/target/app.jar:$(cat <dir>/target/classpath.txt) Main`
# (target/classes works in place of app.jar too; the jar is there for class-data sharing, which
# refuses directories). The optional post-build command runs in <dir> after a real build; its
# failure is only warned about.
# Idempotent: skips Maven when pom.xml and src/ are unchanged since the last successful build
# (stamp: target/.build-stamp, a sha256 over pom.xml, src/**, this script, the post-build
# command and the java version) and every
# jar named in classpath.txt still exists. Tries Maven offline (-o) first, then online.
# Concurrent callers are serialised with flock on target/.build.lock.
set -euo pipefail

dir="$(cd "${1:?usage: maven-build.sh <project dir>}" && pwd)"
shift || true
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
post="$*"
target="$dir/target"
mkdir -p "$target"

stamp_of() {
	(
		cd "$dir"
		{
			sha256sum pom.xml "$self"
			echo "post-build: $post"
			find src -type f -print0 | sort -z | xargs -0 sha256sum
			java -version 2>&1 | head -1
		} | sha256sum | cut -d' ' -f1
	)
}

up_to_date() {
	[[ -f "$target/.build-stamp" && -f "$target/classpath.txt" && -f "$target/app.jar" ]] || return 1
	[[ "$(cat "$target/.build-stamp")" == "$(stamp_of)" ]] || return 1
	local jar
	while IFS= read -r -d: jar || [[ -n "$jar" ]]; do
		[[ -z "$jar" || -e "$jar" ]] || return 1
	done < "$target/classpath.txt"
	return 0
}

exec 9>"$target/.build.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

if up_to_date; then
	exit 0
fi

goals=(compile dependency:build-classpath -Dmdep.outputFile="$target/classpath.txt" -Dmdep.includeScope=runtime)
cd "$dir"
rm -f "$target/.build-stamp"
if ! mvn -q -B -o "${goals[@]}" >"$target/maven-offline.log" 2>&1; then
	if grep -qiE "offline|could not be resolved|cannot access|not been downloaded" "$target/maven-offline.log"; then
		echo "maven-build: $dir needs artifacts not in the local repository; building online" >&2
		mvn -q -B "${goals[@]}" >&2
	else
		cat "$target/maven-offline.log" >&2
		exit 1
	fi
fi

rm -f "$target/app.jar"
jar --create --file "$target/app.jar" -C "$target/classes" .

if [[ $# -gt 0 ]]; then
	"$@" || echo "maven-build: post-build step failed (ignored): $*" >&2
fi
stamp_of >"$target/.build-stamp"
