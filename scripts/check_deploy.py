#!/usr/bin/env python3
"""Checks of the deployment files that need no container engine and no cluster (called by scripts/check-deploy).

- Dockerfile: every build-context COPY source is let through by .dockerignore; the runtime stage is non-root,
  distroless, exposes 4321.
- docker-compose.yml (as resolved by `docker compose config`): pinned images, host ports on 127.0.0.1 only,
  start order (healthchecks behind service_healthy, one-shot jobs behind service_completed_successfully),
  every healthcheck runs only programs its image has (IMAGE_TOOLS, from each upstream Dockerfile), secrets
  only as ${VAR:-demo default}, the mediator's settings are the service's, the OTLP exporter endpoint is an
  OTLP/HTTP port (4318) the collector listens on, HAPI gets the settings its image reads, bind-mounted files
  exist, and the Prometheus / OpenTelemetry Collector configs are consistent.
- The Helm chart, through the real Helm engine (helm-python-sdk: Helm's Go SDK as a library): `helm lint
  --strict`, values.yaml against values.schema.json, rendering with every ci/*.yaml, rejection of bad values,
  Kubernetes schema validation of every rendered object (kubernetes-validate, strict, oldest and newest
  supported Kubernetes), and cross-object consistency (selectors, ports, probes, hardening, secret handling).

Prints one line per check and a closing "N passed, N failed" line; exits 1 on any failure.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "ddcc-mediator"
KUBE_VERSIONS = ("1.25.0", "1.37.0")  # Chart.yaml kubeVersion >=1.25; the newest schemas kubernetes-validate ships

# The service's settings (the contract of `ddcc-mediator serve` and `keys`); the files may set nothing else.
CONTRACT_ENV = set(
    """DDCC_CONFIG DDCC_LISTEN DDCC_DATA_DIR DDCC_FHIR_URL DDCC_PUBLIC_URL DDCC_BODY_LIMIT DDCC_BATCH_CONCURRENCY
    DDCC_MAX_BATCH_ENTRIES DDCC_SIGNER DDCC_KEY_DIR VAULT_ADDR VAULT_TOKEN VAULT_ROLE_ID VAULT_SECRET_ID
    VAULT_APPROLE_MOUNT VAULT_K8S_ROLE VAULT_K8S_JWT_PATH VAULT_K8S_MOUNT VAULT_NAMESPACE VAULT_TRANSIT_MOUNT
    VAULT_TRANSIT_KEY VAULT_KEY_TYPE DDCC_ISSUER_COUNTRY DDCC_VALIDITY_DAYS DDCC_RENEWAL_DAYS DDCC_HCERT_KEY DDCC_ISSUER_NAME
    DDCC_PDF_LANGUAGE
    DDCC_NO_DCC DDCC_API_KEYS OPENHIM_URL OPENHIM_USERNAME OPENHIM_PASSWORD OPENHIM_AUTH OPENHIM_TRUST_SELF_SIGNED
    DDCC_MEDIATOR_HOST DDCC_MEDIATOR_PORT RUST_LOG DDCC_LOG_FORMAT OTEL_EXPORTER_OTLP_ENDPOINT
    OTEL_SERVICE_NAME DDCC_OPENHIM_ROUTE_KEY DDCC_OIDC_ISSUER DDCC_OIDC_AUDIENCE DDCC_OIDC_REQUIRED_ROLE
    DDCC_TRUSTED_PROXIES DDCC_FORWARDED_HEADER DDCC_WORKERS DDCC_SHUTDOWN_DELAY""".split()
)
SECRET_ENV = {"VAULT_TOKEN", "VAULT_SECRET_ID", "VAULT_ROLE_ID", "OPENHIM_PASSWORD", "DDCC_API_KEYS", "DDCC_OPENHIM_ROUTE_KEY"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN", re.I)

results: list[tuple[bool, str]] = []


# What each image's healthcheck may call: the programs on its PATH, as its upstream Dockerfile builds it. A
# healthcheck that names anything else never succeeds in the container (e.g. curl in the OpenHIM core image).
# "sh" means CMD-SHELL works. Keys are image repositories without tag; add an image here before giving it a
# healthcheck.
IMAGE_TOOLS: dict[str, tuple[set[str], str]] = {
    "mongo": ({"sh", "bash", "mongod", "mongosh"},
              "docker-library/mongo Dockerfile (Ubuntu; mongosh installed since 6.0)"),
    "jembi/openhim-core": ({"sh", "node", "npm", "wget", "openssl"},
                           "openhim-core-js v8.5.0 Dockerfile: node:14.21.3-alpine (busybox) + apk openssl; no curl"),
    "jembi/openhim-console": ({"sh", "nginx", "wget", "envsubst"},
                              "openhim-console v1.18.2 Dockerfile: nginx:mainline-alpine (busybox)"),
    "postgres": ({"sh", "bash", "pg_isready", "psql", "postgres"}, "docker-library/postgres Dockerfile (Debian)"),
    "hapiproject/hapi": ({"java"},
                         "hapi-fhir-jpaserver-starter image/v8.10.0-1 Dockerfile: distroless java21, /app/HealthCheck"),
    "openbao/openbao": ({"sh", "bao", "vault", "wget"}, "openbao Dockerfile, default target: Alpine (busybox) + bao"),
    "otel/opentelemetry-collector-contrib": ({"otelcol-contrib"}, "opentelemetry-collector-releases: scratch + binary"),
    "jaegertracing/all-in-one": ({"all-in-one-linux"}, "jaeger all-in-one Dockerfile: the binary only assumed"),
    "prom/prometheus": ({"sh", "wget", "prometheus", "promtool"},
                        "prometheus Dockerfile: quay.io/prometheus/busybox + binaries"),
    "quay.io/keycloak/keycloak": ({"sh", "bash", "grep", "kc.sh", "java"},
                                  "keycloak quarkus/container/Dockerfile: ubi9-micro (bash as sh, grep) + JDK; no curl "
                                  "(keycloak/keycloak#32363, #38126 healthchecks use bash /dev/tcp and grep)"),
    "ddcc-mediator-tools": ({"sh", "bash", "curl", "jq", "ddcc-mediator"}, "Dockerfile target tools (debian slim)"),
    "ddcc-mediator": ({"ddcc-mediator"}, "Dockerfile target runtime (distroless cc: no shell)"),
}
SHELL_BUILTINS = {"[", "test", "exit", "true", "false", "echo", "printf", "cd", "set", ":", "exec"}
OTLP_HTTP_PORT = 4318  # the OTLP/HTTP default; 4317 is OTLP/gRPC, which the mediator's exporter does not speak


def image_repository(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name.removeprefix("docker.io/").removeprefix("library/")


def shell_programs(script: str) -> list[str]:
    """The programs a simple sh command line runs: the first word of each command between ; && || | and ( )."""
    import shlex

    programs = []
    for part in re.split(r"&&|\|\||;|\||\(|\)|`|\$\(", script):
        words = shlex.split(part, posix=True) if part.strip() else []
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # VAR=value prefix
            words.pop(0)
        if words and not re.match(r"^[0-9]*[<>]", words[0]):
            programs.append(words[0])
    return programs


def healthcheck_programs(test: list[str]) -> tuple[list[str], bool]:
    """(programs the healthcheck runs, whether it needs a shell)."""
    if not test or test[0] == "NONE":
        return [], False
    if test[0] == "CMD":
        return [test[1]] if len(test) > 1 else [], False
    if test[0] == "CMD-SHELL":
        return [p for p in shell_programs(" ".join(test[1:])) if p not in SHELL_BUILTINS], True
    return [p for p in shell_programs(" ".join(test)) if p not in SHELL_BUILTINS], True


def otlp_port(endpoint: str) -> int | None:
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    return url.port or {"http": 80, "https": 443}.get(url.scheme)



def check(ok: bool, what: str, detail: str = "") -> bool:
    results.append((ok, what))
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'' if ok or not detail else ': ' + detail}")
    return ok


# --- Dockerfile -----------------------------------------------------------------------------------------


def dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes. Directories match their contents."""
    allowed = True
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        pat = pat.rstrip("/")
        if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") or pat == "*":
            allowed = negate
    return allowed


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def copy_build_context(dest: Path) -> int:
    """Copies the tracked files that .dockerignore lets into the image build to `dest` (what `COPY . .` sees)."""
    import shutil

    patterns = dockerignore_patterns()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    count = 0
    for name in filter(None, files.decode().split("\0")):
        if dockerignore_allows(name, patterns) and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
            count += 1
    return count


def check_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    patterns = dockerignore_patterns()
    # Logical lines (continuations joined).
    lines = re.sub(r"\\\n", " ", text).splitlines()
    sources: list[str] = []
    for line in lines:
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        sources += [s for s in args[:-1] if s != "."]
    for src in sources:
        exists = (ROOT / src).exists()
        check(exists and dockerignore_allows(src.rstrip("/"), patterns), f"Dockerfile COPY {src}: exists, not dockerignored")
    # `COPY . .` sends what .dockerignore lets through: the crate must build from it.
    for needed in ("Cargo.toml", "Cargo.lock", "src/main.rs", "fhir-models/Cargo.toml", "benches/pipeline.rs", "assets"):
        check(dockerignore_allows(needed, patterns), f".dockerignore lets {needed} into the build")
    check(not dockerignore_allows("target/debug/x", patterns), ".dockerignore keeps target/ out of the build context")
    stages = re.split(r"^FROM ", text, flags=re.M)
    runtime = stages[-1]
    check(runtime.startswith("gcr.io/distroless/cc-debian12:nonroot AS runtime"), "the default (last) stage is the distroless runtime")
    check(bool(re.search(r"^USER 65532:65532$", runtime, re.M)), "runtime runs as UID/GID 65532")
    check(bool(re.search(r"^EXPOSE 4321$", runtime, re.M)), "runtime exposes 4321")
    check("DDCC_DATA_DIR=/data" in runtime and 'VOLUME ["/data"]' in runtime, "runtime data dir is the /data volume")


# --- docker-compose.yml ---------------------------------------------------------------------------------


def compose_resolved() -> dict:
    cmd = ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDCC_", "OPENHIM_", "HAPI_", "VAULT_"))}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if not check(out.returncode == 0, "docker compose config (schema, interpolation)", out.stderr.strip()[:500]):
        sys.exit(1)
    return json.loads(out.stdout)


def check_compose() -> None:
    resolved = compose_resolved()
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = resolved["services"]

    for name, svc in sorted(services.items()):
        image = svc.get("image", "")
        if "build" in svc:
            check(image.endswith(":local"), f"compose {name}: built image is tagged :local ({image})")
        else:
            tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
            check(bool(re.search(r"\d", tag)) and tag != "latest", f"compose {name}: image pinned ({image})")
        for port in svc.get("ports", []):
            check(port.get("host_ip") == "127.0.0.1", f"compose {name}: port {port.get('published')} bound to 127.0.0.1")
        for dep, cond in (svc.get("depends_on") or {}).items():
            target = services.get(dep)
            if not check(target is not None, f"compose {name}: depends on existing service {dep}"):
                continue
            c = cond.get("condition")
            if c == "service_healthy":
                check("healthcheck" in target and not target["healthcheck"].get("disable"), f"compose {name} -> {dep}: service_healthy has a healthcheck")
            elif c == "service_completed_successfully":
                check(target.get("restart", "no") == "no", f"compose {name} -> {dep}: one-shot job does not restart")
        health = svc.get("healthcheck")
        if health and not health.get("disable"):
            repo = image_repository(image)
            tools, source = IMAGE_TOOLS.get(repo, (None, ""))
            if check(tools is not None, f"compose {name}: the tools of image {repo} are known (IMAGE_TOOLS)"):
                programs, needs_shell = healthcheck_programs(health.get("test", []))
                missing = sorted({p.rsplit("/", 1)[-1] for p in programs} - tools) + (["sh"] if needs_shell and "sh" not in tools else [])
                check(not missing and bool(programs), f"compose {name}: healthcheck runs {', '.join(programs) or 'nothing'}, which {repo} has",
                      f"not in the image ({source}): {', '.join(missing)}")
        for vol in svc.get("volumes", []):
            if vol.get("type") == "bind":
                check(Path(vol["source"]).is_file(), f"compose {name}: bind-mounted {Path(vol['source']).relative_to(ROOT)} exists")

    # Secrets: only ${VAR:-default} in the file itself.
    for name, svc in raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key) and key not in {"OPENHIM_TRUST_SELF_SIGNED"}:
                check(isinstance(value, str) and value.startswith("${"), f"compose {name}: {key} comes from the environment")

    med = services["ddcc-mediator"]
    env = set(med.get("environment", {}))
    check(env <= CONTRACT_ENV, "compose ddcc-mediator: every setting is one the service reads", ", ".join(sorted(env - CONTRACT_ENV)))
    check(med.get("read_only") is True, "compose ddcc-mediator: read-only root filesystem")
    check(med.get("cap_drop") == ["ALL"], "compose ddcc-mediator: all capabilities dropped")
    check(any(m.get("target") == "/data" for m in med.get("volumes", [])), "compose ddcc-mediator: /data is a volume")
    check(med["environment"].get("DDCC_SIGNER") == "vault" and "VAULT_ROLE_ID" in env, "compose ddcc-mediator: Vault signer with AppRole")
    order = {dep: c["condition"] for dep, c in med["depends_on"].items()}
    check(order.get("vault-init") == "service_completed_successfully" and order.get("openhim-init") == "service_completed_successfully",
          "compose ddcc-mediator: starts after vault-init and openhim-init succeeded")
    check(med["environment"]["VAULT_ROLE_ID"] == services["vault-init"]["environment"]["DDCC_VAULT_ROLE_ID"]
          and med["environment"]["VAULT_SECRET_ID"] == services["vault-init"]["environment"]["DDCC_VAULT_SECRET_ID"],
          "compose: the mediator logs in with the AppRole ids vault-init installs")

    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    check("ddcc-mediator:4321" in targets, "prometheus.yml scrapes ddcc-mediator:4321")
    check(all(job.get("metrics_path", "/metrics") == "/metrics" for job in prom["scrape_configs"]), "prometheus.yml uses /metrics")

    otel = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())
    for pname, pipe in otel["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind, []):
                check(comp in (otel.get(kind) or {}), f"otel-collector.yaml pipeline {pname}: {kind[:-1]} {comp} is defined")
    endpoint = med["environment"].get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    check(endpoint.startswith("http://otel-collector:"), "compose: the mediator exports OTLP to the collector", endpoint)
    check(otlp_port(endpoint) == OTLP_HTTP_PORT, f"compose: the OTLP endpoint is OTLP/HTTP (port {OTLP_HTTP_PORT})",
          f"{endpoint}: the mediator's exporter speaks OTLP over HTTP; 4317 is gRPC")
    http_receiver = str((((otel.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("http", {}).get("endpoint", ""))
    check(http_receiver.endswith(f":{otlp_port(endpoint)}"), "otel-collector.yaml: an OTLP/HTTP receiver on the mediator's port", http_receiver)

    # HAPI reads its datasource from SPRING_DATASOURCE_* (Spring Boot relaxed binding), the dialect from
    # HIBERNATE_DIALECT (its application.yaml) and its own settings as hapi.fhir.* (hapi-fhir-jpaserver-starter).
    hapi = services["hapi-fhir"]["environment"]
    for key in ("SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_USERNAME", "SPRING_DATASOURCE_PASSWORD",
                "SPRING_DATASOURCE_DRIVERCLASSNAME", "HIBERNATE_DIALECT"):
        check(key in hapi, f"compose hapi-fhir: {key} is set")
    check(all(k.startswith(("SPRING_", "HIBERNATE_", "hapi.fhir.", "JAVA_")) for k in hapi),
          "compose hapi-fhir: only settings the image reads", ", ".join(k for k in hapi if not k.startswith(("SPRING_", "HIBERNATE_", "hapi.fhir.", "JAVA_"))))
    check(hapi.get("hapi.fhir.client_id_strategy") == "ALPHANUMERIC", "compose hapi-fhir: client-assigned ids allowed (ALPHANUMERIC)")
    check(hapi.get("HIBERNATE_DIALECT", "").endswith("HapiFhirPostgresDialect") and "postgresql" in hapi.get("SPRING_DATASOURCE_URL", ""),
          "compose hapi-fhir: PostgreSQL with HAPI's Postgres dialect")


# --- Helm chart -----------------------------------------------------------------------------------------


def load_values(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / name).read_text()) or {}


def docs_of(manifests: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def check_rendered(label: str, docs: list[dict], values: dict) -> None:
    import kubernetes_validate

    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for d in docs:
        if d["apiVersion"].startswith("monitoring.coreos.com/"):
            ep = d["spec"]["endpoints"][0]
            check(d["kind"] == "ServiceMonitor" and ep["path"] == "/metrics", f"{label}: ServiceMonitor scrapes /metrics")
            continue
        for kv in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(d, kv, strict=True)
                check(True, f"{label}: {d['kind']} valid for Kubernetes {kv} (strict)")
            except Exception as e:  # kubernetes_validate raises its own ValidationError / SchemaNotFoundError
                check(False, f"{label}: {d['kind']} valid for Kubernetes {kv} (strict)", str(e)[:400])

    dep = by_kind["Deployment"][0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    c = spec["containers"][0]
    sel = dep["spec"]["selector"]["matchLabels"]
    check(sel.items() <= pod["metadata"]["labels"].items(), f"{label}: Deployment selector matches its pod labels")
    svc = by_kind["Service"][0]
    check(svc["spec"]["selector"] == sel, f"{label}: Service selects the pods")
    port_names = {p["name"] for p in c["ports"]}
    check(svc["spec"]["ports"][0]["targetPort"] in port_names, f"{label}: Service targets a container port")
    check(c["ports"][0]["containerPort"] == 4321, f"{label}: container listens on 4321")
    # Readiness on /health/replica: a shared dependency that is slow must not take every pod out at once.
    check(c["livenessProbe"]["httpGet"]["path"] == "/health/live" and c["readinessProbe"]["httpGet"]["path"] == "/health/replica"
          and c["startupProbe"]["httpGet"]["path"] == "/health/live", f"{label}: probes on /health/live, /health/replica, startup")
    spread = spec.get("topologySpreadConstraints", [])
    check({t["topologyKey"] for t in spread} >= {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
          and all(t["labelSelector"]["matchLabels"] == sel for t in spread), f"{label}: pods spread over nodes and zones")
    cpu = (c.get("resources") or {}).get("requests", {}).get("cpu")
    check(bool(cpu), f"{label}: a CPU request (what the autoscaler's target is a share of)")
    sc, psc = c["securityContext"], spec["securityContext"]
    check(sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
          and psc["runAsNonRoot"] is True and psc["seccompProfile"]["type"] == "RuntimeDefault", f"{label}: pod hardening")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    check("/data" in mounts and "emptyDir" in vols[mounts["/data"]], f"{label}: /data is an emptyDir")
    cms = {cm["metadata"]["name"]: cm for cm in by_kind["ConfigMap"]}
    env_cm = cms[c["envFrom"][0]["configMapRef"]["name"]]
    names = set(env_cm["data"]) | {e["name"] for e in c.get("env", [])}
    extra = set((values.get("config") or {}).get("extraEnv") or {})
    check(names - extra <= CONTRACT_ENV, f"{label}: every setting is one the service reads", ", ".join(sorted(names - extra - CONTRACT_ENV)))
    check(not (set(env_cm["data"]) & SECRET_ENV), f"{label}: no secret in the ConfigMap")
    check(all("secretKeyRef" in e["valueFrom"] for e in c.get("env", []) if e["name"] in SECRET_ENV), f"{label}: secrets come from Secret references")
    delay = int(env_cm["data"].get("DDCC_SHUTDOWN_DELAY", "0"))
    check(delay > 0 and spec["terminationGracePeriodSeconds"] >= delay + 15,
          f"{label}: pods drain for DDCC_SHUTDOWN_DELAY within the grace period")
    k8s_auth = env_cm["data"].get("DDCC_SIGNER") == "vault" and "VAULT_K8S_ROLE" in env_cm["data"]
    check(spec["automountServiceAccountToken"] is k8s_auth, f"{label}: service-account token mounted only for Vault Kubernetes auth")
    check(pod["metadata"]["annotations"].get("checksum/config", "") != "", f"{label}: pods roll on config change")
    link = [m for m in c["volumeMounts"] if m["mountPath"] == "/data/link-secret"]
    shared = env_cm["data"]["DDCC_SIGNER"] == "vault" or dep["spec"].get("replicas", 2) > 1
    check(bool(link) == shared and all(m.get("readOnly") and "secret" in vols[m["name"]] for m in link),
          f"{label}: the link secret is mounted from a Secret when replicas share it")
    if "OPENHIM_URL" in env_cm["data"]:
        check("DDCC_OPENHIM_ROUTE_KEY" in {e["name"] for e in c.get("env", [])}, f"{label}: OpenHIM route key from a Secret")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        check(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"] and "replicas" not in dep["spec"], f"{label}: HPA scales the Deployment (which sets no replicas)")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        check(pdb["spec"]["selector"]["matchLabels"] == sel, f"{label}: PDB selects the pods")
    for np_ in by_kind.get("NetworkPolicy", []):
        check(np_["spec"]["podSelector"]["matchLabels"] == sel, f"{label}: NetworkPolicy selects the pods")
        check([p["port"] for r in np_["spec"]["ingress"] for p in r["ports"]] == [4321], f"{label}: NetworkPolicy ingress only to 4321")
        check(set(np_["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{label}: NetworkPolicy restricts egress too")
    for sm in by_kind.get("ServiceMonitor", []):
        check(sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}, f"{label}: ServiceMonitor port is a Service port")


def check_chart() -> None:
    import helm_python as helm

    helm.disable_logging()  # lint mode logs each `fail` it skips; the checks below assert them instead
    print(f"     (Helm SDK {helm.helm_sdk_version()} via helm-python-sdk)")
    for values_name in [None] + sorted(p.name for p in (CHART / "ci").glob("*.yaml")):
        values = load_values(values_name) if values_name else None
        report = helm.lint(str(CHART), values, strict=True)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        check(not problems, f"helm lint --strict ({values_name or 'values.yaml'})", "; ".join(m["error"] for m in problems))

    chart = helm.Chart.load(str(CHART))
    try:
        chart.validate_schema()
        check(True, "values.yaml satisfies values.schema.json (Helm)")
    except helm.HelmError as e:
        check(False, "values.yaml satisfies values.schema.json (Helm)", str(e))

    # Defaults alone must refuse to render: signing needs a Vault address.
    try:
        chart.render(name="ddcc", namespace="ddcc", is_install=True)
        check(False, "defaults without vault.addr are refused")
    except helm.HelmError as e:
        check("vault.addr is required" in str(e), "defaults without vault.addr are refused", str(e)[:200])

    bad_values = {
        "unknown top-level key": {"replicas": 3},
        "writable root filesystem": {"securityContext": {"readOnlyRootFilesystem": False}},
        "bad signer": {"signer": {"type": "hsm"}},
        "bad hcert key": {"config": {"hcertKey": 2}},
        "bad country": {"config": {"issuerCountry": "che"}},
        "bad egress peer": {"networkPolicy": {"egress": {"vault": {"peers": [{"cidr": "10.0.0.0/8"}]}}}},
    }
    base = load_values("vault-kubernetes-values.yaml")
    for what, override in bad_values.items():
        try:
            chart.render(values={**base, **override}, name="ddcc", namespace="ddcc", is_install=True)
            check(False, f"schema rejects {what}")
        except helm.HelmValuesError:
            check(True, f"schema rejects {what}")
    no_fhir = {**base["config"], "fhirUrl": ""}
    for what, override, message in [
        ("OpenHIM without a route key", {"openhim": {**base["openhim"], "routeKey": {"existingSecret": ""}}}, "routeKey.existingSecret is required"),
        ("Vault signer without a link secret", {"linkSecret": {"existingSecret": ""}}, "linkSecret.existingSecret is required"),
        ("autoscaling without a FHIR server", {"config": no_fhir}, "config.fhirUrl is required"),
        ("two replicas without a FHIR server", {"config": no_fhir, "autoscaling": {"enabled": False}, "replicaCount": 2},
         "config.fhirUrl is required"),
        ("an OTLP/gRPC endpoint", {"otel": {"endpoint": "http://otel-collector:4317"}}, "4317"),
        ("a grace period shorter than the drain", {"shutdownDelaySeconds": 20, "terminationGracePeriodSeconds": 30},
         "terminationGracePeriodSeconds must be at least"),
    ]:
        try:
            chart.render(values={**base, **override}, name="ddcc", namespace="ddcc", is_install=True)
            check(False, f"{what} is refused")
        except helm.HelmError as e:
            check(message in str(e), f"{what} is refused", str(e)[:200])
    approle_missing = {**base, "vault": {"addr": "http://v:8200", "auth": {"method": "approle"}}}
    try:
        chart.render(values=approle_missing, name="ddcc", namespace="ddcc", is_install=True)
        check(False, "approle without existingSecret is refused")
    except helm.HelmError as e:
        check("existingSecret is required" in str(e), "approle without existingSecret is refused", str(e)[:200])

    one_local = {**base, "config": no_fhir, "autoscaling": {"enabled": False}, "replicaCount": 1}
    try:
        chart.render(values=one_local, name="ddcc", namespace="ddcc", is_install=True)
        check(True, "one replica without a FHIR server renders (a demo)")
    except helm.HelmError as e:
        check(False, "one replica without a FHIR server renders (a demo)", str(e)[:200])

    for values_path in sorted((CHART / "ci").glob("*.yaml")):
        values = load_values(values_path.name)
        label = f"chart[{values_path.stem}]"
        endpoint = (values.get("otel") or {}).get("endpoint", "")
        if endpoint:
            check(otlp_port(endpoint) == OTLP_HTTP_PORT, f"{label}: otel.endpoint is OTLP/HTTP (port {OTLP_HTTP_PORT})", endpoint)
        try:
            manifests = chart.render(values=values, name="ddcc", namespace="ddcc", is_install=True)
        except helm.HelmError as e:
            check(False, f"{label}: renders", str(e)[:500])
            continue
        check(True, f"{label}: renders")
        docs = docs_of(manifests)
        out_dir = os.environ.get("CHECK_DEPLOY_RENDER_DIR")
        if out_dir:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / f"{values_path.stem}.yaml").write_text(
                "".join(f"---\n# {p}\n{t.strip()}\n" for p, t in sorted(manifests.items()) if t.strip() and not p.endswith("NOTES.txt"))
            )
        check_rendered(label, docs, values)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--build-context":
        print(f"copied {copy_build_context(Path(sys.argv[2]))} files")
        return 0
    check_dockerfile()
    check_compose()
    check_chart()
    passed = sum(ok for ok, _ in results)
    failed = len(results) - passed
    print(f"check_deploy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
