#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real servers and tools the tests start
# (Debian's docker-registry, redis-server, chromium, faketime, and for vouch's own image buildah,
# skopeo, podman, runc and musl-tools), builds the static binary of the image test, then
# checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
# tests/timestamp.rs makes RFC 3161 tokens at pretended times with libfaketime.
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# tests/image.rs: vouch's image, built (buildah), pushed (skopeo) and run (podman with runc:
# crun refuses this machine's hybrid cgroup layout) without a daemon; musl-gcc for the static
# binary's C (aws-lc).
for tool in buildah skopeo podman runc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
# tests/tenancy.rs: a docker-registry with htpasswd authentication (bcrypt hashes by htpasswd -B).
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Helm chart's checks (tests/chart.rs runs tests/chart/check.py): a real Helm as a library
# (helm-sdkpy declares Python >= 3.12 but works on 3.11) and the Kubernetes JSON schemas, offline.
py_need=()
python3 -c 'import helm_sdkpy' 2>/dev/null || py_need+=(helm-sdkpy==0.1.32)
python3 -c 'import kubernetes_validate' 2>/dev/null || py_need+=(kubernetes-validate==1.37.0)
python3 -c 'import yaml, cryptography' 2>/dev/null || py_need+=(pyyaml cryptography)
if [ ${#py_need[@]} -gt 0 ]; then
  echo "installing: ${py_need[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --ignore-requires-python "${py_need[@]}"
fi

if [ ! -d ../shared/vectors ]; then
  echo "error: ../shared/vectors (the Notation test vectors) must sit beside this checkout" >&2
  exit 1
fi

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The image's binary for tests/image.rs: static (musl), as a release's, but the dev profile
# without debug info, which builds in a third of the CPU time of --release (about 2.5 minutes on
# 2 cores, against 6) and keeps this script within CI's 15 minutes. The release pipeline runs
# the same scripts/build-image.sh, which builds with --release.
musl_target="$(uname -m)-unknown-linux-musl"
rustup target list --installed | grep -qx "$musl_target" || rustup target add "$musl_target"
SECONDS=0
CARGO_PROFILE_DEV_DEBUG=false cargo build --locked --quiet --target "$musl_target"
echo "static binary for the image test built in ${SECONDS}s"
export VOUCH_IMAGE_BINARY="$(realpath -m "${CARGO_TARGET_DIR:-target}/$musl_target/debug/vouch")"
mkdir -p target
set +e
cargo test --all-targets 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one "test result" per test binary).
passed=$(grep -E '^test result: ' target/test-output.log | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result: ' target/test-output.log | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
exit "${status}"
