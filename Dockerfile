# syntax=docker/dockerfile:1
# vouch's image: a static (musl) release binary on an empty base. No shell, no package manager,
# nothing but /usr/local/bin/vouch, the CA bundle and passwd/group names for UID 65532.
#
#   docker build --build-arg VOUCH_GIT_REVISION=$(git rev-parse HEAD) -t vouch .
#   podman build --build-arg VOUCH_GIT_REVISION=$(git rev-parse HEAD) -t vouch .
#
# scripts/build-image.sh builds the same image without a container engine (buildah, from
# scratch); both lay out the files with that script's --rootfs-only, and tests/image.rs checks
# that this file's runtime settings are the ones the script gives the image it builds and tests.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# musl-gcc builds aws-lc (the TLS and signature crypto) for the static target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
# .dockerignore keeps .git out of the context: the revision comes in as a build argument.
ARG VOUCH_GIT_REVISION=unknown
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    VOUCH_GIT_REVISION="${VOUCH_GIT_REVISION}" \
    cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" \
 && scripts/build-image.sh --binary "target/$(uname -m)-unknown-linux-musl/release/vouch" --rootfs-only /rootfs

FROM scratch
ARG VOUCH_GIT_REVISION=unknown
ARG VOUCH_VERSION=0.1.0
COPY --from=build /rootfs/ /
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 65532:65532
WORKDIR /
ENV PATH=/usr/local/bin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8443/tcp
ENTRYPOINT ["vouch"]
CMD ["--help"]
LABEL org.opencontainers.image.title="vouch" \
      org.opencontainers.image.description="Kubernetes admission webhook and CI verifier for Notary Project (Notation) signatures" \
      org.opencontainers.image.source="https://github.com/vouch-dev/vouch" \
      org.opencontainers.image.url="https://github.com/vouch-dev/vouch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VOUCH_VERSION}" \
      org.opencontainers.image.revision="${VOUCH_GIT_REVISION}"
