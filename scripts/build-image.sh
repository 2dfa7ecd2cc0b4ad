#!/usr/bin/env bash
# Build vouch's container image without a container engine or daemon: Debian's buildah, from
# scratch, with its own temporary storage (vfs, chroot isolation), so it runs as root in CI and
# leaves nothing behind. The image is the one the Dockerfile describes: one layer holding the
# static binary at /usr/local/bin/vouch, the CA bundle and passwd/group entries for UID 65532,
# and the same config (user, entrypoint, env, labels). No shell, no package manager.
#
#   scripts/build-image.sh                      # release build (static, musl), then the image
#   scripts/build-image.sh --binary PATH        # image of a binary built already (must be static)
#   scripts/build-image.sh --rootfs-only DIR    # only lay out the image's files (the Dockerfile)
#   scripts/build-image.sh --dest oci-archive:vouch.tar
#
# --dest takes any containers-transports destination (default oci:target/image/oci:<version>);
# publish with e.g. `skopeo copy oci:target/image/oci:0.1.0 docker://ghcr.io/vouch-dev/vouch:0.1.0`.
# The version and revision labels are read from the binary's own `vouch --version`, so they
# cannot disagree with what is inside. The image's created time is the commit's, so the same
# commit and binary give the same image digest.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
dest=""
rootfs_only=""
ca_bundle="${VOUCH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
while [ $# -gt 0 ]; do
  case "$1" in
    --release) binary="" ;;
    --binary) binary="$2"; shift ;;
    --dest) dest="$2"; shift ;;
    --rootfs-only) rootfs_only="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "build-image.sh: $*" >&2; exit 1; }

if [ -z "$binary" ]; then
  # musl, linked statically: no libc to ship and no NSS (musl's resolver reads /etc/resolv.conf
  # and /etc/hosts itself, which is all a pod has). mimalloc replaces musl's slow allocator.
  target="$(uname -m)-unknown-linux-musl"
  command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc not found: apt-get install -y musl-tools"
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
  cargo build --release --locked --target "$target"
  binary="${CARGO_TARGET_DIR:-target}/$target/release/vouch"
fi
[ -x "$binary" ] || die "no executable at $binary"
# A scratch image has no dynamic loader or libraries: refuse anything that needs them.
if readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  die "$binary is dynamically linked ($(readelf -l "$binary" | grep -o 'interpreter: [^]]*')); build it for $(uname -m)-unknown-linux-musl"
fi
[ -f "$ca_bundle" ] || die "no CA bundle at $ca_bundle: apt-get install -y ca-certificates"

# "vouch 0.1.0 (revision <sha>)"
version_line="$("$binary" --version)"
version="$(sed -E 's/^vouch ([^ ]+).*/\1/' <<<"$version_line")"
revision="$(sed -E 's/.*\(revision ([^)]+)\).*/\1/' <<<"$version_line")"
[ -n "$version" ] && [ "$version" != "$version_line" ] || die "cannot read the version from: $version_line"

stage_rootfs() {
  local root="$1"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs"
  install -m 0755 "$binary" "$root/usr/local/bin/vouch"
  install -m 0644 "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
  # Names for the IDs, as distroless has them: tools that print a user, and Go or Rust code
  # looking up the home directory, find one. The home does not exist; vouch writes nothing.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

if [ -n "$rootfs_only" ]; then
  stage_rootfs "$rootfs_only"
  echo "$rootfs_only: vouch $version (revision $revision)"
  exit 0
fi

command -v buildah >/dev/null 2>&1 || die "buildah not found: apt-get install -y buildah"
dest="${dest:-oci:target/image/oci:$version}"
case "$dest" in oci:*) mkdir -p "$(cut -d: -f2 <<<"$dest")" ;; oci-archive:*) mkdir -p "$(dirname "$(cut -d: -f2 <<<"$dest")")" ;; esac

work="$(mktemp -d)"
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
cleanup() {
  [ -n "${ctr:-}" ] && bah rm "$ctr" >/dev/null 2>&1 || true
  # vfs layers are plain directories; a failed build must not leave them in /tmp.
  rm -rf "$work"
}
trap cleanup EXIT
export BUILDAH_ISOLATION=chroot

created="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
stage_rootfs "$work/rootfs"
# File times are the commit's too, so that nothing in the layer depends on when it was built.
find "$work/rootfs" -exec touch -h -d "@$created" {} +
ctr="$(bah from --quiet scratch)"
bah copy --quiet "$ctr" "$work/rootfs/" / >/dev/null
bah config \
  --os linux --arch "$(case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)" \
  --user 65532:65532 \
  --workingdir / \
  --env PATH=/usr/local/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 8443/tcp \
  --entrypoint '["vouch"]' \
  --cmd '["--help"]' \
  --label org.opencontainers.image.title=vouch \
  --label "org.opencontainers.image.description=Kubernetes admission webhook and CI verifier for Notary Project (Notation) signatures" \
  --label org.opencontainers.image.source=https://github.com/vouch-dev/vouch \
  --label org.opencontainers.image.url=https://github.com/vouch-dev/vouch \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --created-by "scripts/build-image.sh" \
  "$ctr"
bah commit --quiet --format oci --disable-compression=false --identity-label=false --timestamp "$created" --rm "$ctr" "$dest" >/dev/null
ctr=""
digest=""
command -v skopeo >/dev/null 2>&1 && digest=", manifest $(skopeo inspect --format '{{.Digest}}' "$dest")"
echo "built $dest: vouch $version (revision $revision)$digest"
