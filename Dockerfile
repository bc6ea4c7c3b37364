# syntax=docker/dockerfile:1.7
#
# ddcc-mediator container images (BuildKit).
#
#   docker build -t ddcc-mediator .                      # the service image (last stage: runtime)
#   docker build --target tools -t ddcc-mediator-tools . # one-shot jobs of the compose stack (vault-init, openhim-init)
#
# runtime: distroless (glibc, CA certificates, no shell), UID/GID 65532, only the binary. It runs with a read-only
# root filesystem; the one writable path is DDCC_DATA_DIR=/data (a volume or an emptyDir). There is no HEALTHCHECK:
# distroless has no shell or HTTP client to run one, so the orchestrator probes GET /health/live and
# /health/ready (Kubernetes probes in the Helm chart; the compose stack's readiness is the one-shot jobs'
# completion and the depends_on order).

ARG RUST_VERSION=1.95.0
ARG CARGO_CHEF_VERSION=0.1.78

# --- dependency caching: cargo-chef cooks the dependency graph in its own layer, rebuilt only when
# Cargo.toml/Cargo.lock change; BuildKit cache mounts keep the registry between builds.
FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --version "${CARGO_CHEF_VERSION}" --locked
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json --bin ddcc-mediator
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked --bin ddcc-mediator \
    && install -D -m 0755 target/release/ddcc-mediator /out/ddcc-mediator \
    && mkdir -p /out/data \
    && /out/ddcc-mediator --version

# --- tools: the binary plus curl/jq and the provisioning scripts, for the compose stack's one-shot jobs.
# Not the service image: it has a shell and a package manager.
FROM debian:bookworm-slim AS tools
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl jq \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/ddcc-mediator /usr/local/bin/ddcc-mediator
COPY --chmod=0755 deploy/scripts/vault-init deploy/scripts/openhim-init /usr/local/bin/
# Named volumes mounted here start with this ownership, so the jobs can write them as 65532.
RUN install -d -o 65532 -g 65532 -m 0700 /vault-init \
    && install -d -o 65532 -g 65532 -m 0750 /approle
USER 65532:65532
WORKDIR /tmp
CMD ["ddcc-mediator", "--help"]

# --- runtime: the service image (default target).
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="ddcc-mediator" \
      org.opencontainers.image.description="Issues WHO DDCC:VS vaccination certificates (FHIR document Bundle, signed HC1 QR payloads)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ddcc-mediator /usr/local/bin/ddcc-mediator
COPY --from=builder --chown=65532:65532 /out/data /data
ENV DDCC_LISTEN=0.0.0.0:4321 \
    DDCC_DATA_DIR=/data \
    DDCC_KEY_DIR=/data/keys \
    DDCC_LOG_FORMAT=json \
    RUST_LOG=info
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4321
ENTRYPOINT ["/usr/local/bin/ddcc-mediator"]
CMD ["serve"]
