#!/usr/bin/env bash
# The benchmark suite: figures, not pass/fail. Installs the floors' tools (nginx, wrk,
# hyperfine) and the registry when missing, runs the criterion signature benchmarks and the load
# benchmarks, prints a table and leaves JSON in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
mkdir -p target/bench

cargo bench --bench signatures -- --noplot 2>&1 | tee target/bench/signatures.txt | grep -E "^verify_signature|time:"
python3 - <<'PY'
import json, glob, os
rows = {}
for est in glob.glob("target/criterion/verify_signature/*/new/estimates.json"):
    name = json.load(open(os.path.join(os.path.dirname(est), "benchmark.json")))["function_id"]
    rows[name] = json.load(open(est))["mean"]["point_estimate"] / 1000.0
json.dump({k: {"mean_us": v} for k, v in rows.items()}, open("target/bench/signatures.json", "w"), indent=2)
PY

cargo bench --bench load -- "$@" 2>&1 | tee target/bench/load.txt | grep -vE "^\s*(Compiling|Finished|Running)"

python3 - <<'PY'
import json, os
def load(n):
    p = f"target/bench/{n}.json"
    return json.load(open(p)) if os.path.exists(p) else {}
s, w, c, h, m, sc = (load(n) for n in ["signatures", "warm", "cold", "herd", "memory", "scale"])
wr, co = load("warm_revocation"), load("cold_ocsp_crl")
print("\n== vouch benchmarks (this machine: %d cores) ==" % os.cpu_count())
for k, v in s.items():
    print(f"signature  {k:<36} {v['mean_us']:9.1f} µs")
for part in ("one_core", "all_cores"):
    r = w.get(part) or {}
    if r.get("vouch"):
        f = r.get("nginx_floor") or {}
        print(f"warm       {r['cores']} core(s) each: vouch {r['vouch']['requests_per_s']:.0f} req/s p99 {r['vouch']['p99_ms']:.2f} ms | nginx floor {f.get('requests_per_s', 0):.0f} req/s p99 {f.get('p99_ms', 0):.2f} ms | ratio {r.get('throughput_ratio') or 0:.2f} (target >= 0.5, p99 <= 5 ms)")
if c.get("vouch_verify_ms"):
    print(f"cold       vouch verify {c['vouch_verify_ms']:.1f} ms | curl floor {c['curl_floor_ms']:.1f} ms | ratio {c['ratio']:.2f} (target <= 1.5)")
if wr:
    print(f"warm rev.  1 core: OCSP+CRL image {wr['revocation']['requests_per_s']:.0f} req/s p99 {wr['revocation']['p99_ms']:.2f} ms | no-endpoint image {wr['plain']['requests_per_s']:.0f} req/s | ratio {wr['throughput_ratio']:.2f} (target >= 0.95), revocation requests while warm: {wr['revocation_fetches_during_warm']:.0f} (target 0)")
if co.get("vouch_verify_ms"):
    print(f"cold OCSP+CRL  vouch verify median {co['vouch_verify_median_ms']:.1f} ms | curl floor {co['curl_floor_median_ms']:.1f} ms | ratio {co['median_ratio']:.2f} (target <= 1.5); CRL on disk: {co['crl_on_disk']['vouch_verify_median_ms']:.1f} ms")
if h:
    print(f"herd       registry requests: 1 admission {h['registry_requests_one_admission']}, 200 concurrent {h['registry_requests_200_concurrent']} (target: equal)")
if m:
    print(f"memory     {m.get('verdicts')} cached verdicts: +{m.get('delta_mib', 0):.0f} MiB resident (target <= 100 MB)")
if sc:
    print(f"scale      {sc['pods']} pods x 10 images @ {sc['rate_per_s']:.0f}/s, registry 50 req/s: answered {sc['answered']}, timeouts {sc['timeouts']}, denied {sc['denied']}, p50 {sc['p50_ms']:.1f} ms, p95 {sc['p95_ms']:.1f} ms (from the 10th second on: {sc.get('p95_after_10s_ms', float('nan')):.1f} ms), max {sc['max_ms']:.0f} ms, peak {sc['peak_rss_mib']:.0f} MiB, registry requests {sc['registry_requests']} (429s {sc['registry_429s']})")
    if "cold_start_s" in sc:
        print(f"           {100 * sc['slow_pods_share']:.1f}% of pods took over 10 ms (p95 over all pods can be under 10 ms only when this share is under 5%): those sent in the first 10 s were all answered by {sc['cold_start_s']:.1f} s; {sc.get('slow_pods_after_10s', 0)} sent later (a tag's digest re-resolved after digestTtl)")
PY
