#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real servers and tools the tests start
# (Debian's docker-registry, redis-server, chromium, faketime), then checks formatting and
# lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
# tests/timestamp.rs makes RFC 3161 tokens at pretended times with libfaketime.
command -v faketime >/dev/null 2>&1 || need+=(faketime)
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
