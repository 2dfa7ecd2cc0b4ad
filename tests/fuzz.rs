//! Fuzz targets for everything vouch reads from outside, on the stable toolchain (issue 11):
//! COSE and JWS envelopes (parsed and verified against a trust store), image references, trust
//! policies, AdmissionReviews, docker config files, manifest YAML, certificates, and registry
//! documents (manifests, indexes, digests, `WWW-Authenticate` challenges), CRLs (parsed,
//! validated against their issuer and checked for a certificate) and RFC 3161 timestamp tokens
//! (parsed, their TSTInfo read, verified against a TSA root). OCSP responses have no
//! stored vector to seed from; `tests/ocsp.rs` and the unit tests of `revocation::ocsp` cover
//! their hostile forms.
//!
//! The engine is `proptest`: each case is a seed — a real vector from `../shared/vectors`
//! (notation-go's COSE signature and timestamped envelopes, the notation e2e layouts' JWS
//! envelopes, notation-core-go's conformance envelopes, the e2e trust policies, certificates,
//! manifests and indexes) or a small valid example written here — and a list of mutations: bit
//! flips, byte sets, inserts of interesting bytes (huge CBOR lengths, JSON edge values, ESC/CR,
//! bidi controls, YAML anchors and merge keys), deletes, truncation, repeats and splices from
//! another seed. Where it is cheap the mutation is structure-aware: inside one CBOR field of a
//! COSE_Sign1, inside one base64 part of a JWS, or on one node of a JSON document. A failing
//! case is shrunk to a minimal list of mutations and stored in `tests/fuzz.proptest-regressions`,
//! which every later run replays first.
//!
//! Invariants, for every case: no panic; bounded memory (a counting allocator measures the peak
//! bytes a case holds live on its thread, which must stay below 32 MiB + 256 × the input's size;
//! each target prints the peak RSS of the process); and a mutated envelope is never "verified"
//! unless what the signature covers is unchanged — the same signed bytes (protected header and
//! payload as verified), the same payload and the same target digest as the seed's — and its
//! signing certificate is the seed's. Envelopes
//! have unsigned parts (COSE's unprotected header, JWS's `header`: the chain, the signing agent,
//! the timestamp token), so a mutation there may still verify, and is counted and printed.
//! Where the output is shown to people (admission denials, verify's text report), no unsafe
//! character may survive ([`vouch::escape`]); the two AdmissionReview readers (raw text and
//! parsed JSON) must agree; digests show exactly as written; a parsed image reference reparses
//! to itself; a loaded trust policy never lets a non-skip statement stop enforcing integrity.
//!
//! `cargo test` (and so `tests/run.sh`) runs a short, reproducible run: a fixed RNG seed and a
//! few hundred cases per target, well under a minute in all. To fuzz longer:
//!
//! ```sh
//! VOUCH_FUZZ_CASES=20000 VOUCH_FUZZ_SEED=random cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! `VOUCH_FUZZ_CASES` sets the cases per target (`PROPTEST_CASES` works too);
//! `VOUCH_FUZZ_SEED` is `random` or a number (the default is fixed, so CI runs the same cases).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coset::cbor::value::Value as Cbor;
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngSeed, TestCaseError, TestError, TestRunner,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

use common::vectors;
use vouch::escape::is_unsafe;
use vouch::notation::envelope::{self, TargetArtifact, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use vouch::notation::level::{Action, Check};
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;
use vouch::notation::verifier::{verify_signature, VerificationContext};
use vouch::verdict::{Admission, Outcome, Verdict};

// ---------------------------------------------------------------------------------------------
// Memory: a counting allocator, per thread, so parallel targets do not see each other's bytes.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local cells with no destructor, so touching them never allocates or reenters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Run `f`, failing the case when it held more than the budget for `input_len` bytes live.
fn bounded<R>(input_len: usize, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = (PEAK.with(Cell::get) - start).max(0) as usize;
    let budget = 32 * 1024 * 1024 + 256 * input_len;
    if peak > budget {
        return Err(TestCaseError::fail(format!(
            "a {input_len}-byte input held {peak} bytes live (budget {budget})"
        )));
    }
    Ok(r)
}

/// Peak resident set of the process, MiB (`VmHWM`).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

// ---------------------------------------------------------------------------------------------
// The engine: seeds and mutations.

/// One byte-level mutation; positions are taken modulo the input's length.
#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
    Truncate(usize),
    Repeat(usize, usize, u8),
    Splice(usize, usize, usize, usize),
}

/// Bytes worth inserting: encodings that stress length fields, number parsing, escapes and the
/// text a hostile party would plant.
const MAGIC: &[&[u8]] = &[
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", // CBOR uint64 max
    b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00", // CBOR byte string of 4 GiB
    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", // CBOR array of 2^64-1 items
    b"\xbf",                                 // CBOR indefinite map
    b"\xd8\x12",                             // CBOR tag 18
    b"\xc1\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", // tag 1, huge time
    b"\"",
    b"\\",
    b"{",
    b"[",
    b"]}",
    b"\\u0000",
    b"\\ud800",
    b"1e999999",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"null",
    b"\"*\"",
    b"\x1b[2K\rVERIFIED ",
    "\u{202e}".as_bytes(),
    b"\n---\n",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"!!binary ",
    b"[[[[[[[[[[[[[[[[",
    b"{{{{{{{{{{{{{{{{",
    b"%",
    b"..",
    b"@sha256:",
    b":5000",
    b"==",
];

fn op() -> impl Strategy<Value = Op> {
    let pos = any::<usize>();
    prop_oneof![
        3 => (pos, 0u8..8).prop_map(|(a, b)| Op::Flip(a, b)),
        2 => (pos, any::<u8>()).prop_map(|(a, b)| Op::Set(a, b)),
        3 => (pos, any::<usize>()).prop_map(|(a, m)| Op::Insert(a, m)),
        2 => (pos, 1usize..64).prop_map(|(a, n)| Op::Delete(a, n)),
        1 => pos.prop_map(Op::Truncate),
        1 => (pos, 1usize..32, 1u8..16).prop_map(|(a, n, t)| Op::Repeat(a, n, t)),
        1 => (any::<usize>(), pos, 1usize..128, pos).prop_map(|(s, f, n, a)| Op::Splice(s, f, n, a)),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..6)
}

/// Apply mutations; `others` are the seeds splices take bytes from.
fn mutate(bytes: &mut Vec<u8>, ops: &[Op], others: &[&[u8]]) {
    for op in ops {
        let at = |p: usize, len: usize| p % (len + 1);
        match *op {
            Op::Flip(p, bit) if !bytes.is_empty() => {
                let i = p % bytes.len();
                bytes[i] ^= 1 << bit;
            }
            Op::Set(p, b) if !bytes.is_empty() => {
                let i = p % bytes.len();
                bytes[i] = b;
            }
            Op::Insert(p, m) => {
                let i = at(p, bytes.len());
                let magic = MAGIC[m % MAGIC.len()];
                bytes.splice(i..i, magic.iter().copied());
            }
            Op::Delete(p, n) => {
                let i = at(p, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Op::Truncate(p) => {
                let i = at(p, bytes.len());
                bytes.truncate(i);
            }
            Op::Repeat(p, n, times) if !bytes.is_empty() => {
                let i = p % bytes.len();
                let end = (i + n).min(bytes.len());
                let chunk = bytes[i..end].to_vec();
                for _ in 0..times {
                    bytes.splice(end..end, chunk.iter().copied());
                }
            }
            Op::Splice(s, from, n, p) if !others.is_empty() => {
                let other = others[s % others.len()];
                let f = at(from, other.len());
                let end = (f + n).min(other.len());
                let i = at(p, bytes.len());
                bytes.splice(i..i, other[f..end].iter().copied());
            }
            _ => {}
        }
    }
}

/// A case: which seed, which part of it (structure-aware layers; 0 is the raw bytes), what to do.
#[derive(Debug, Clone)]
struct Case {
    seed: usize,
    layer: usize,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (any::<usize>(), any::<usize>(), ops()).prop_map(|(seed, layer, ops)| Case { seed, layer, ops })
}

/// Cases per target: `VOUCH_FUZZ_CASES`, else `PROPTEST_CASES`, else the target's default.
fn cases(default: u32) -> u32 {
    ["VOUCH_FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .unwrap_or(default)
}

/// Run one target and print what it did.
fn run<S: Strategy>(
    name: &'static str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let seed = match std::env::var("VOUCH_FUZZ_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(n) => RngSeed::Fixed(n.parse().expect("VOUCH_FUZZ_SEED: random or a number")),
        // Fixed, and different per target.
        None => RngSeed::Fixed(
            name.bytes()
                .fold(0x0076_6f75_6368_u64, |h, b| h.rotate_left(5) ^ u64::from(b)),
        ),
    };
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        test_name: Some(name),
        rng_seed: seed,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ran = AtomicU64::new(0);
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    println!(
        "fuzz {name}: {} cases in {:.1}s, peak RSS {} MiB",
        ran.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!("fuzz {name}: {why}\nminimal input: {input:#?}"),
        Err(e) => panic!("fuzz {name}: {e}"),
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(vectors().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every blob of an OCI layout.
fn layout_blobs(layout: &Path) -> Vec<Vec<u8>> {
    let dir = layout.join("blobs/sha256");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn e2e_layouts() -> Vec<std::path::PathBuf> {
    let dir = vectors().join("notation-e2e/layouts");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Text whose unsafe characters are listed, for assertions.
fn unsafe_chars(s: &str) -> Vec<String> {
    s.chars()
        .filter(|c| is_unsafe(*c))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Envelopes.

/// A seed envelope with everything it takes to verify it: a trust store holding its own chain,
/// a permissive statement (integrity and authenticity enforced), a time inside its validity.
struct EnvelopeSeed {
    media_type: &'static str,
    bytes: Vec<u8>,
    /// What the signature covers, when the seed itself verifies.
    signed: Option<Signed>,
    policy: TrustPolicy,
    stores: TrustStores,
    target: TargetArtifact,
    now: OffsetDateTime,
    _dir: tempfile::TempDir,
}

/// What a verified seed's signature covers, and who signed it.
struct Signed {
    signed_bytes: Vec<u8>,
    payload: Vec<u8>,
    target: TargetArtifact,
    leaf: Vec<u8>,
}

const PERMISSIVE: &str = r#"{"version":"1.0","trustPolicies":[{"name":"fuzz","registryScopes":["*"],
 "signatureVerification":{"level":"permissive"},"trustStores":["ca:fuzz","signingAuthority:fuzz"],
 "trustedIdentities":["*"]}]}"#;

fn envelope_seed(media_type: &'static str, bytes: Vec<u8>) -> EnvelopeSeed {
    let dir = tempfile::tempdir().unwrap();
    let parsed = envelope::parse(media_type, &bytes).ok();
    for kind in ["ca", "signingAuthority"] {
        let store = dir.path().join("x509").join(kind).join("fuzz");
        std::fs::create_dir_all(&store).unwrap();
        let chain: Vec<&[u8]> = parsed
            .iter()
            .flat_map(|e| e.chain.iter().map(|c| c.der()))
            .collect();
        if chain.is_empty() {
            // Some certificate, so the store loads; nothing in it signed this seed.
            std::fs::write(store.join("0.crt"), read("notation-e2e/localkeys/e2e.crt")).unwrap();
        }
        for (i, der) in chain.iter().enumerate() {
            std::fs::write(store.join(format!("{i}.der")), der).unwrap();
        }
    }
    let policy = TrustPolicy::from_json(PERMISSIVE.as_bytes()).unwrap();
    let stores = TrustStores::load(dir.path(), policy.trust_store_refs()).unwrap();
    let integrity = parsed.as_ref().and_then(|e| e.verify_integrity().ok());
    let target = integrity.clone().unwrap_or(TargetArtifact {
        media_type: vouch::registry::OCI_MANIFEST.into(),
        digest: "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0".into(),
        size: 481,
        annotations: None,
    });
    let now = parsed.as_ref().map_or(OffsetDateTime::now_utc(), |e| {
        e.signing_time + time::Duration::minutes(1)
    });
    let mut seed = EnvelopeSeed {
        media_type,
        bytes,
        signed: None,
        policy,
        stores,
        target,
        now,
        _dir: dir,
    };
    if verify(&seed, &seed.bytes).verified {
        let env = parsed.expect("a verified seed parses");
        seed.signed = Some(Signed {
            leaf: env.leaf().map(|c| c.der().to_vec()).unwrap_or_default(),
            signed_bytes: env.signed_bytes,
            payload: env.payload,
            target: seed.target.clone(),
        });
    }
    seed
}

fn verify(seed: &EnvelopeSeed, bytes: &[u8]) -> vouch::notation::verifier::SignatureOutcome {
    let ctx = VerificationContext {
        statement: &seed.policy.statements()[0],
        stores: &seed.stores,
        target: &seed.target,
        now: seed.now,
        revocation: offline_revocation(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(1),
    };
    futures::executor::block_on(verify_signature(
        &ctx,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        seed.media_type,
        bytes,
    ))
}

/// A revocation checker that never goes to the network: mutated certificates name any URL,
/// and tests reach loopback only. Revocable chains are then "unknown".
fn offline_revocation() -> &'static vouch::notation::revocation::Checker {
    static CHECKER: std::sync::OnceLock<vouch::notation::revocation::Checker> =
        std::sync::OnceLock::new();
    CHECKER.get_or_init(|| {
        vouch::notation::revocation::Checker::new(
            vouch::notation::revocation::RevocationSettings {
                fetch: false,
                ..Default::default()
            },
            None,
        )
    })
}

fn envelope_seeds() -> Vec<EnvelopeSeed> {
    let mut seeds = vec![
        envelope_seed(MEDIA_TYPE_COSE, read("notation-go-cose/cose_signature.sig")),
        envelope_seed(MEDIA_TYPE_COSE, read("notation-cose/coseWithTimestamp.sig")),
        envelope_seed(
            MEDIA_TYPE_COSE,
            read("notation-cose/coseExpiredWithTimestamp.sig"),
        ),
        envelope_seed(
            MEDIA_TYPE_COSE,
            read("notation-cose/timestampAfterNotAfter.sig"),
        ),
        envelope_seed(
            MEDIA_TYPE_COSE,
            read("timestamp/notation-e2e/signatures/blob.cose.sig"),
        ),
        envelope_seed(
            MEDIA_TYPE_JWS,
            read("timestamp/notation-e2e/signatures/blob.jws.sig"),
        ),
        envelope_seed(MEDIA_TYPE_JWS, read("notation-cose/jws-conformance.json")),
    ];
    let conformance: Value =
        serde_json::from_slice(&read("notation-cose/conformance.json")).unwrap();
    if let Some(hex) = conformance["expectedOutput"]["cborHex"].as_str() {
        seeds.push(envelope_seed(MEDIA_TYPE_COSE, hex::decode(hex).unwrap()));
    }
    // Every envelope of the notation e2e layouts (JWS), found as the layers of their
    // signature manifests.
    for layout in e2e_layouts() {
        let blobs = layout_blobs(&layout);
        for blob in &blobs {
            let Ok(m) = serde_json::from_slice::<Value>(blob) else {
                continue;
            };
            let signature = vouch::notation::ARTIFACT_TYPE_SIGNATURE;
            if m["artifactType"] != signature && m["config"]["mediaType"] != signature {
                continue;
            }
            let Some(d) = m["layers"][0]["digest"].as_str() else {
                continue;
            };
            let path = common::blob_path(&layout, d);
            let media_type = match m["layers"][0]["mediaType"].as_str() {
                Some(MEDIA_TYPE_COSE) => MEDIA_TYPE_COSE,
                _ => MEDIA_TYPE_JWS,
            };
            if let Ok(bytes) = std::fs::read(path) {
                seeds.push(envelope_seed(media_type, bytes));
            }
        }
    }
    seeds
}

/// Mutate one CBOR field of a COSE_Sign1 (1 protected, 2 payload, 3 signature, 4 the leaf
/// certificate, 5 the unprotected header's encoding), or the raw bytes.
fn mutate_cose(bytes: &[u8], case: &Case, others: &[&[u8]]) -> Vec<u8> {
    let mut raw = bytes.to_vec();
    let layer = case.layer % 6;
    let decoded: Option<Cbor> = coset::cbor::de::from_reader(bytes).ok();
    let Some(Cbor::Tag(18, mut inner)) = decoded.filter(|_| layer != 0) else {
        mutate(&mut raw, &case.ops, others);
        return raw;
    };
    let Cbor::Array(items) = inner.as_mut() else {
        mutate(&mut raw, &case.ops, others);
        return raw;
    };
    let field = match layer {
        1 => items.get_mut(0),
        2 => items.get_mut(2),
        3 => items.get_mut(3),
        4 => items.get_mut(1).and_then(|u| match u {
            Cbor::Map(m) => m
                .iter_mut()
                .find(|(k, _)| *k == Cbor::Integer(33.into()))
                .and_then(|(_, v)| match v {
                    Cbor::Array(chain) => chain.first_mut(),
                    _ => None,
                }),
            _ => None,
        }),
        _ => None,
    };
    match field {
        Some(Cbor::Bytes(b)) => mutate(b, &case.ops, others),
        _ => {
            // The unprotected map, through its encoding; put back only if it still decodes.
            if let Some(u) = items.get_mut(1) {
                let mut enc = Vec::new();
                let _ = coset::cbor::ser::into_writer(&*u, &mut enc);
                mutate(&mut enc, &case.ops, others);
                if let Ok(v) = coset::cbor::de::from_reader::<Cbor, _>(enc.as_slice()) {
                    *u = v;
                }
            }
        }
    }
    let mut out = Vec::new();
    let _ = coset::cbor::ser::into_writer(&Cbor::Tag(18, inner), &mut out);
    out
}

/// Mutate one part of a JWS (1 protected header, 2 payload, 3 signature — each decoded from
/// base64url, mutated, encoded again —, 4 the leaf certificate, 5 the unprotected header's
/// JSON), or the raw bytes.
fn mutate_jws(bytes: &[u8], case: &Case, others: &[&[u8]]) -> Vec<u8> {
    let layer = case.layer % 6;
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let Some(mut env) = parsed.filter(|v| v.is_object() && layer != 0) else {
        let mut raw = bytes.to_vec();
        mutate(&mut raw, &case.ops, others);
        return raw;
    };
    let b64url = |env: &mut Value, key: &str| {
        if let Some(s) = env[key].as_str() {
            let mut part = URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
            mutate(&mut part, &case.ops, others);
            env[key] = Value::String(URL_SAFE_NO_PAD.encode(part));
        }
    };
    match layer {
        1 => b64url(&mut env, "protected"),
        2 => b64url(&mut env, "payload"),
        3 => b64url(&mut env, "signature"),
        4 => {
            if let Some(s) = env["header"]["x5c"][0].as_str() {
                let mut der = STANDARD.decode(s).unwrap_or_default();
                mutate(&mut der, &case.ops, others);
                env["header"]["x5c"][0] = Value::String(STANDARD.encode(der));
            }
        }
        _ => {
            let mut enc = serde_json::to_vec(&env["header"]).unwrap_or_default();
            mutate(&mut enc, &case.ops, others);
            if let Ok(v) = serde_json::from_slice::<Value>(&enc) {
                env["header"] = v;
            }
        }
    }
    serde_json::to_vec(&env).unwrap_or_default()
}

#[test]
fn fuzz_envelopes() {
    let seeds = envelope_seeds();
    let verifying = seeds.iter().filter(|s| s.signed.is_some()).count();
    let cose = seeds
        .iter()
        .filter(|s| s.signed.is_some() && s.media_type == MEDIA_TYPE_COSE);
    assert!(
        cose.count() >= 1 && verifying >= 3,
        "the seeds must include verifying COSE and JWS envelopes ({verifying} verify)"
    );
    let raw: Vec<&[u8]> = seeds.iter().map(|s| s.bytes.as_slice()).collect();
    let still_verified = AtomicU64::new(0);
    let (parsed, intact) = (AtomicU64::new(0), AtomicU64::new(0));
    run("envelopes", 4000, case(), |case| {
        let seed = &seeds[case.seed % seeds.len()];
        let mutated = if seed.media_type == MEDIA_TYPE_COSE {
            mutate_cose(&seed.bytes, &case, &raw)
        } else {
            mutate_jws(&seed.bytes, &case, &raw)
        };
        let outcome = bounded(mutated.len(), || verify(seed, &mutated))?;
        if outcome.signer.is_some() {
            parsed.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.checks.first().is_some_and(|c| c.error.is_none()) {
            intact.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.verified && mutated != seed.bytes {
            let signed = seed.signed.as_ref().ok_or_else(|| {
                TestCaseError::fail("a mutation of a seed that does not verify verified")
            })?;
            let env = envelope::parse(seed.media_type, &mutated)
                .map_err(|e| TestCaseError::fail(format!("verified but does not parse: {e}")))?;
            prop_assert_eq!(
                &env.signed_bytes,
                &signed.signed_bytes,
                "signed bytes changed yet verified"
            );
            prop_assert_eq!(
                &env.payload,
                &signed.payload,
                "payload changed yet verified"
            );
            let got = env.verify_integrity().map_err(TestCaseError::fail)?;
            prop_assert_eq!(
                &got.digest,
                &signed.target.digest,
                "target changed yet verified"
            );
            // The chain is unsigned, but no mutation can make another certificate for the key.
            let leaf = env.leaf().map(|c| c.der().to_vec()).unwrap_or_default();
            prop_assert_eq!(
                leaf,
                signed.leaf.clone(),
                "another signing certificate verified"
            );
            still_verified.fetch_add(1, Ordering::Relaxed);
        }
        // What verify shows for it is one line per message, nothing unsafe in it.
        let mut verdict = verdict_for(&outcome);
        verdict.signatures.push(outcome);
        verdict.escape_messages();
        let lines = 1 + verdict.reasons.len() + verdict.warnings.len();
        let text = vouch::report::text(&[verdict]);
        prop_assert_eq!(text.lines().count(), lines, "{}", text.escape_debug());
        for line in text.lines() {
            prop_assert!(unsafe_chars(line).is_empty(), "{}", line.escape_debug());
        }
        Ok(())
    });
    println!(
        "fuzz envelopes: {} seeds ({verifying} verify); mutations: {} parsed, {} passed integrity, {} verified with their signed content unchanged (unsigned parts changed)",
        seeds.len(),
        parsed.load(Ordering::Relaxed),
        intact.load(Ordering::Relaxed),
        still_verified.load(Ordering::Relaxed)
    );
}

/// A verified verdict for `image` (pinning fills `pinned`).
fn verdict_for_pin(image: &str) -> Verdict {
    Verdict {
        policy: Some("p".into()),
        level: Some("strict".into()),
        outcome: Outcome::Verified,
        verified: true,
        admission: Admission::Allow,
        ..Verdict::new(image)
    }
}

fn verdict_for(outcome: &vouch::notation::verifier::SignatureOutcome) -> Verdict {
    Verdict {
        policy: Some("fuzz".into()),
        level: Some("permissive".into()),
        outcome: if outcome.verified {
            Outcome::Verified
        } else {
            Outcome::Failed
        },
        verified: outcome.verified,
        admission: if outcome.verified {
            Admission::Allow
        } else {
            Admission::Deny
        },
        reasons: outcome.error.iter().cloned().collect(),
        warnings: outcome.warnings.clone(),
        ..Verdict::new("registry.example/app:v1")
    }
}

// ---------------------------------------------------------------------------------------------
// JSON documents: byte mutations, or one node at a time.

/// Mutate a JSON document: for one layer in three its raw bytes; otherwise the document is
/// parsed, one node (chosen by `layer`) is changed — to a dictionary word, another
/// type, a byte-mutated string, a removed key or element, a duplicated element —, and written.
fn mutate_json(bytes: &[u8], case: &Case, dict: &[&str], others: &[&[u8]]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let Some(mut doc) = parsed.filter(|_| !case.layer.is_multiple_of(3)) else {
        let mut raw = bytes.to_vec();
        mutate(&mut raw, &case.ops, others);
        return raw;
    };
    let mut count = 0usize;
    count_nodes(&doc, &mut count);
    let target = (case.layer / 3) % count.max(1);
    let mut i = 0usize;
    edit_node(&mut doc, target, &mut i, case, dict, others);
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn count_nodes(v: &Value, n: &mut usize) {
    *n += 1;
    match v {
        Value::Array(a) => a.iter().for_each(|x| count_nodes(x, n)),
        Value::Object(o) => o.values().for_each(|x| count_nodes(x, n)),
        _ => {}
    }
}

fn edit_node(
    v: &mut Value,
    target: usize,
    i: &mut usize,
    case: &Case,
    dict: &[&str],
    others: &[&[u8]],
) -> bool {
    if *i == target {
        // The seed index uses the low bits of `seed`; the rest picks the edit.
        let pick = case.seed / 64;
        let word = dict[pick % dict.len()];
        *v = match (pick / dict.len()) % 8 {
            0 => Value::String(word.into()),
            1 => match v.take() {
                Value::String(s) => {
                    let mut b = s.into_bytes();
                    mutate(&mut b, &case.ops, others);
                    Value::String(String::from_utf8_lossy(&b).into_owned())
                }
                other => other,
            },
            2 => json!(null),
            3 => json!([word, word]),
            4 => match v.take() {
                Value::Object(mut o) => {
                    o.insert(word.into(), json!(word));
                    Value::Object(o)
                }
                Value::Array(mut a) => {
                    if let Some(first) = a.first().cloned() {
                        a.push(first);
                    }
                    Value::Array(a)
                }
                other => other,
            },
            5 => match v.take() {
                Value::Object(mut o) => {
                    let key = o.keys().nth(pick % o.len().max(1)).cloned();
                    if let Some(k) = key {
                        o.remove(&k);
                    }
                    Value::Object(o)
                }
                Value::Array(mut a) => {
                    if !a.is_empty() {
                        a.remove(pick % a.len());
                    }
                    Value::Array(a)
                }
                other => other,
            },
            6 => json!({ word: word }),
            _ => json!(u64::MAX),
        };
        return true;
    }
    *i += 1;
    match v {
        Value::Array(a) => a
            .iter_mut()
            .any(|x| edit_node(x, target, i, case, dict, others)),
        Value::Object(o) => o
            .values_mut()
            .any(|x| edit_node(x, target, i, case, dict, others)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Trust policies.

#[test]
fn fuzz_trust_policies() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for dir in [
        vectors().join("notation-e2e/trustpolicies"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policy"),
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        seeds.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
    }
    seeds.push(PERMISSIVE.as_bytes().to_vec());
    let dict = [
        "*",
        "1.0",
        "strict",
        "permissive",
        "audit",
        "skip",
        "enforce",
        "log",
        "integrity",
        "authenticity",
        "authenticTimestamp",
        "expiry",
        "revocation",
        "override",
        "level",
        "signatureVerification",
        "registryScopes",
        "trustStores",
        "trustedIdentities",
        "verifyTimestamp",
        "always",
        "afterCertExpiry",
        "ca:e2e",
        "tsa:x",
        "signingAuthority:s",
        "x509.subject: CN=a,O=b,L=c,ST=d,C=US",
        "x509.subject: CN=a,CN=b",
        "x509.subject: ",
        "localhost:5000/app",
        "LOCALHOST:5000/app",
        "a/b",
        "name",
        "version",
        "trustPolicies",
    ];
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    run("trust policies", 5000, case(), |case| {
        let seed = &seeds[case.seed % seeds.len()];
        let doc = mutate_json(seed, &case, &dict, &raw);
        let loaded = bounded(doc.len(), || TrustPolicy::from_json(&doc))?;
        if let Ok(policy) = loaded {
            for s in policy.statements() {
                if !s.level.is_skip() {
                    prop_assert_eq!(
                        s.level.action(Check::Integrity),
                        Action::Enforce,
                        "statement {:?} does not enforce integrity",
                        s.name
                    );
                }
                for scope in s
                    .registry_scopes
                    .iter()
                    .map(String::as_str)
                    .chain(["a.example/b"])
                {
                    let _ = policy.statement_for(scope);
                }
            }
            let _ = policy.trust_store_refs().count();
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Image references.

#[test]
fn fuzz_image_references() {
    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
    let seeds: Vec<String> = [
        "nginx",
        "library/nginx:1.27",
        "docker.io/library/nginx:latest",
        "index.docker.io/bitnami/redis:7",
        "localhost:5000/app:v1",
        "127.0.0.1:46000/team/app@DIGEST",
        "registry.example/a/b/c:tag@DIGEST",
        "[::1]:5000/app:v1",
        "contoso.azurecr.io/app:v1",
        "ghcr.io/owner/image:sha-1234",
        "registry.example:443/x_y.z-w/app__v:1.0-rc.1",
    ]
    .iter()
    .map(|s| s.replace("DIGEST", D))
    .collect();
    let raw: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
    run("image references", 10000, case(), |case| {
        let mut bytes = seeds[case.seed % seeds.len()].clone().into_bytes();
        mutate(&mut bytes, &case.ops, &raw);
        let image = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = bounded(image.len(), || {
            vouch::reference::ImageReference::parse(&image)
        })?;
        match parsed {
            Ok(r) => {
                prop_assert!(r.scope().contains('/'));
                // Normalisation is idempotent: the normal form parses to the same reference.
                let again = vouch::reference::ImageReference::parse(&r.to_string())
                    .map_err(|e| TestCaseError::fail(format!("{r} does not reparse: {e}")))?;
                prop_assert_eq!(again.scope(), r.scope());
                prop_assert_eq!(again.tag(), r.tag());
                prop_assert_eq!(again.digest(), r.digest());
                let _ = (
                    r.registry_endpoint(),
                    r.manifest_reference(),
                    r.with_digest(D),
                );
            }
            Err(e) => prop_assert!(unsafe_chars(&e.to_string()).is_empty(), "{}", e),
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// AdmissionReviews.

fn review(kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": kind},
            "name": "w", "namespace": "team", "operation": "CREATE",
            "userInfo": {"username": "admin"}, "object": object, "oldObject": null, "dryRun": false}
    }))
    .unwrap()
}

/// The parts of a review the webhook reads (as `src/server` reads them: the object stays raw
/// text until its images are read).
#[derive(serde::Deserialize)]
struct ReviewIn<'a> {
    #[serde(borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    kind: KindIn,
    #[serde(borrow, default)]
    object: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct KindIn {
    kind: String,
}

/// Whether any object of a JSON document repeats a key.
fn has_duplicate_keys(json: &[u8]) -> bool {
    struct Walk;
    impl<'de> serde::de::Visitor<'de> for Walk {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON without repeated keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(serde::de::Error::custom("repeated key"));
                }
                map.next_value::<WalkValue>()?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<WalkValue>()?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    struct WalkValue;
    impl<'de> serde::Deserialize<'de> for WalkValue {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Walk).map(|()| WalkValue)
        }
    }
    serde_json::from_slice::<WalkValue>(json).is_err()
}

#[test]
fn fuzz_admission_reviews() {
    let spec = json!({"initContainers": [{"name": "i", "image": "init:1"}],
        "containers": [{"name": "c", "image": "registry.example/app:v1"}, {"name": "d", "image": "nginx"}],
        "ephemeralContainers": [{"name": "e", "image": "debug@sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"}]});
    let meta = json!({"name": "w", "namespace": "team"});
    let template = json!({"metadata": meta, "spec": spec});
    let seeds: Vec<Vec<u8>> = vec![
        review(
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}),
        ),
        review(
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "template": template}}),
        ),
        review(
            "CronJob",
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        ),
        review(
            "PodTemplate",
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": template}),
        ),
        review(
            "Job",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        ),
        review("ConfigMap", json!({"data": {"image": "x"}})),
    ];
    let dict = [
        "Pod",
        "Deployment",
        "CronJob",
        "PodTemplate",
        "ReplicationController",
        "containers",
        "initContainers",
        "ephemeralContainers",
        "image",
        "spec",
        "template",
        "jobTemplate",
        "\u{1b}[2K\rVERIFIED x (admission: allow)",
        "a\u{202e}b",
        "",
        "nginx",
        "request",
        "object",
    ];
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    run("admission reviews", 4000, case(), |case| {
        let seed = &seeds[case.seed % seeds.len()];
        let body = mutate_json(seed, &case, &dict, &raw);
        let result = bounded(body.len(), || {
            let review: ReviewIn = serde_json::from_slice(&body).ok()?;
            let request = review.request?;
            let object = request.object?;
            let kind = request.kind.kind;
            let from_text = vouch::admission::images_of(
                &kind,
                &mut serde_json::Deserializer::from_str(object.get()),
            );
            let value: Value = serde_json::from_str(object.get()).ok()?;
            let from_value = vouch::admission::images_of(&kind, &value);
            Some((from_text, from_value, value, kind))
        })?;
        let Some((from_text, from_value, value, kind)) = result else {
            return Ok(());
        };
        // The same images, or the same error at the same place (the text reader's message
        // adds a line and column). A duplicated key is refused by the webhook's text reader
        // (the API server never sends one: it re-encodes objects) and read last-wins from a
        // parsed document, as kubectl does: the webhook's answer is then a denial, never less.
        let duplicate = from_text.is_err() && has_duplicate_keys(&body);
        match (&from_text, &from_value) {
            _ if duplicate => {}
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "the two readers disagree"),
            (
                Err(vouch::admission::ImageExtractionError::Shape { path: a, .. }),
                Err(vouch::admission::ImageExtractionError::Shape { path: b, .. }),
            ) => prop_assert_eq!(a, b, "the two readers fail at different places"),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "one reader failed: {:?} / {:?}", a, b),
        }
        let Ok(uses) = from_text else {
            return Ok(());
        };
        prop_assert!(uses.len() <= vouch::admission::MAX_CONTAINERS);
        // The pins for them apply to the object, and rewrite exactly the images pinned.
        let pinned_verdicts: Vec<Verdict> = uses
            .iter()
            .map(|u| {
                let mut v = verdict_for_pin(&u.image);
                v.pinned = (!u.image.contains('@'))
                    .then(|| format!("{}@sha256:{}", u.image, "ab".repeat(32)));
                v
            })
            .collect();
        let by_image: std::collections::HashMap<&str, &Verdict> = pinned_verdicts
            .iter()
            .map(|v| (v.image.as_str(), v))
            .collect();
        let scope = vouch::admission::pin::PinScope {
            templates: true,
            dry_run: false,
        };
        let pinning = vouch::admission::pin::pin(&kind, &uses, &by_image, scope);
        let mut doc = value.clone();
        let applied = json_patch::patch(&mut doc, &pinning.patch);
        prop_assert!(
            applied.is_ok(),
            "the patch does not apply: {:?}: {} to {}",
            applied,
            serde_json::to_string(&pinning.patch).unwrap_or_default(),
            value
        );
        let after = vouch::admission::images_of(&kind, &doc).expect("still readable");
        prop_assert_eq!(after.len(), uses.len());
        for (a, b) in after.iter().zip(&uses) {
            let expected = by_image[b.image.as_str()]
                .pinned
                .clone()
                .unwrap_or_else(|| b.image.clone());
            prop_assert_eq!(&a.image, &expected);
        }
        // The answer for them: denials and warnings quote the images, escaped.
        let verdicts: Vec<Verdict> = uses
            .iter()
            .enumerate()
            .map(|(i, u)| Verdict {
                policy: Some("p".into()),
                level: Some(if i % 2 == 0 { "strict" } else { "audit" }.into()),
                outcome: Outcome::Failed,
                admission: if i % 2 == 0 {
                    Admission::Deny
                } else {
                    Admission::Allow
                },
                reasons: vec![format!("no signature for {}", u.image)],
                warnings: vec![u.container.clone()],
                ..Verdict::new(u.image.clone())
            })
            .collect();
        for enforcement in [
            vouch::admission::Enforcement::Enforce,
            vouch::admission::Enforcement::Dryrun,
        ] {
            let d = vouch::admission::decide(&verdicts, enforcement);
            prop_assert!(
                unsafe_chars(&d.message).is_empty(),
                "{}",
                d.message.escape_debug()
            );
            for w in &d.warnings {
                prop_assert!(unsafe_chars(w).is_empty(), "{}", w.escape_debug());
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Docker config files.

#[test]
fn fuzz_docker_configs() {
    let b64 = |s: &str| STANDARD.encode(s);
    let seeds: Vec<Vec<u8>> = [
        json!({"auths": {"localhost:5000": {"auth": b64("alice:s3cret")},
            "https://index.docker.io/v1/": {"auth": b64("bob:hub")}}}),
        json!({"auths": {"registry.example": {"identitytoken": "refresh-token"},
            "http://registry.example": {"auth": b64("x:")}}}),
        json!({"auths": {"https://registry.example/v2/": {"username": "u", "password": "p"}}}),
        json!({"auths": {}, "credHelpers": {"registry.example": "vouch-fuzz-no-such-helper"}}),
        json!({"credsStore": "vouch-fuzz-no-such-helper", "auths": {"docker.io": {"auth": b64(":")}}}),
        json!({}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).unwrap())
    .collect();
    let dict = [
        "auths",
        "auth",
        "identitytoken",
        "username",
        "password",
        "credHelpers",
        "credsStore",
        "localhost:5000",
        "docker.io",
        "https://index.docker.io/v1/",
        "registry.example",
        "YWxpY2U6czNjcmV0",
        "Og==",
        "=",
        "vouch-fuzz-no-such-helper",
    ];
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = vouch::registry::auth::CredentialSource {
        docker_config: Some(path.clone()),
        ..Default::default()
    };
    run("docker configs", 1500, case(), |case| {
        let seed = &seeds[case.seed % seeds.len()];
        let config = mutate_json(seed, &case, &dict, &raw);
        std::fs::write(&path, &config).unwrap();
        bounded(config.len(), || {
            runtime.block_on(async {
                for registry in ["localhost:5000", "docker.io", "registry.example"] {
                    let _ = source.lookup(registry).await;
                }
            })
        })?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Manifest YAML.

#[test]
fn fuzz_manifests() {
    let seeds: Vec<String> = vec![
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: init\n          image: busybox:1\n      containers:\n        - name: web\n          image: registry.example/web:v1\n".into(),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n---\n# comment\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: j\n              image: job:1\n".into(),
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: a}\n    spec:\n      containers: &cs\n        - {name: a, image: 'a:1'}\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: b}\n    spec:\n      containers: *cs\n".into(),
        "base: &base\n  name: c\n  image: merged:1\napiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers:\n    - <<: *base\n".into(),
        r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},"spec":{"template":{"spec":{"containers":[{"name":"s","image":"s:1"}]}}}}"#.into(),
        "kind: ConfigMap\napiVersion: v1\ndata: {a: b}\n".into(),
    ];
    let raw: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
    run("manifests", 4000, case(), |case| {
        let mut bytes = seeds[case.seed % seeds.len()].clone().into_bytes();
        mutate(&mut bytes, &case.ops, &raw);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (uses, errors) = bounded(text.len(), || {
            let mut uses = Vec::new();
            let mut errors = Vec::new();
            vouch::audit::manifests::read_text("fuzz.yaml", &text, &mut uses, &mut errors);
            (uses, errors)
        })?;
        for e in &errors {
            prop_assert!(e.source.starts_with("fuzz.yaml:"), "{}", e.source);
        }
        let _ = uses.len();
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Certificates (trust stores and envelope chains).

#[test]
fn fuzz_certificates() {
    let pem_files = [
        "notation-e2e/localkeys/e2e.crt",
        "notation-e2e/localkeys/expired_e2e.crt",
        "notation-go-cose/alpine.crt",
        "timestamp/notation-core-go/x509/timestamp_leaf.crt",
        "timestamp/notation-core-go/x509/timestamp_intermediate.crt",
        "timestamp/notation-e2e/config/timestamp/CertChain.pem",
    ];
    let mut seeds: Vec<Vec<u8>> = pem_files.iter().map(|p| read(p)).collect();
    // DER forms too, and the DER-only roots.
    for p in pem_files {
        if let Ok(certs) = vouch::notation::trust_store::parse_certificate_file(&read(p)) {
            seeds.extend(certs.iter().map(|c| c.der().to_vec()));
        }
    }
    seeds.push(read("notation-cose/tsa-globalsignRoot.cer"));
    seeds.push(read("notation-e2e/timestamp/DigiCertTSARootSHA384.cer"));
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    run("certificates", 5000, case(), |case| {
        let mut bytes = seeds[case.seed % seeds.len()].clone();
        mutate(&mut bytes, &case.ops, &raw);
        bounded(bytes.len(), || {
            if let Ok(certs) = vouch::notation::trust_store::parse_certificate_file(&bytes) {
                for c in &certs {
                    let _ = (
                        c.subject(),
                        c.subject_dn(),
                        c.is_ca(),
                        c.revocation_endpoints(),
                    );
                    let _ = (c.signing_algorithm(), c.sha256(), c.is_self_signed());
                }
                let _ = vouch::notation::x509::validate_code_signing_chain(&certs);
            }
        })?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// CRLs: a mutated CRL that still validates against its issuer decides as the seed did.

#[test]
fn fuzz_crls() {
    use vouch::notation::revocation::crl;
    use vouch::notation::x509::Certificate;
    let chain: Vec<Certificate> = vouch::notation::trust_store::parse_certificate_file(&read(
        "revocation/notation-e2e/crl/certchain_with_crl.pem",
    ))
    .expect("chain");
    let (leaf, intermediate, root) = (&chain[0], &chain[1], &chain[2]);
    let seeds: Vec<(Vec<u8>, &Certificate, &Certificate)> = [
        ("leaf.crl", leaf, intermediate),
        ("leaf_revoked.crl", leaf, intermediate),
        ("intermediate.crl", intermediate, root),
        ("intermediate_revoked.crl", intermediate, root),
    ]
    .into_iter()
    .map(|(f, cert, issuer)| {
        (
            read(&format!("revocation/notation-e2e/crl/{f}")),
            cert,
            issuer,
        )
    })
    .chain(
        ["crlWithMultipleFreshestCRLs.crl", "delta.crl"]
            .into_iter()
            .map(|f| {
                (
                    read(&format!("revocation/notation-core-go/crl-testdata/{f}")),
                    leaf,
                    intermediate,
                )
            }),
    )
    .collect();
    let raw: Vec<&[u8]> = seeds.iter().map(|(b, _, _)| b.as_slice()).collect();
    let now = time::OffsetDateTime::now_utc();
    run("crls", 10000, case(), |case| {
        let (seed, cert, issuer) = &seeds[case.seed % seeds.len()];
        let mut bytes = seed.clone();
        mutate(&mut bytes, &case.ops, &raw);
        bounded(bytes.len(), || -> Result<(), TestCaseError> {
            let Ok(mutated) = crl::parse(bytes.clone()) else {
                return Ok(());
            };
            let _ = (
                crl::delta_urls(&mutated),
                mutated.is_delta(),
                mutated.number(),
            );
            let decided = crl::check(cert, &mutated, None, Some(now));
            if crl::validate(&mutated, issuer, now, false).is_ok() {
                let original = crl::parse(seed.clone()).expect("seed parses");
                let expected = crl::check(cert, &original, None, Some(now));
                prop_assert_eq!(
                    decided.status,
                    expected.status,
                    "a mutated CRL that validates decides differently"
                );
            }
            Ok(())
        })??;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Registry documents: manifests, indexes, digests, challenges.

/// RFC 3161 tokens: a mutated token never panics or balloons, and one that still verifies
/// against GlobalSign's root vouches for the seed's own time over the seed's own message (the
/// signature covers the TSTInfo through the message-digest attribute).
#[test]
fn fuzz_timestamp_tokens() {
    use vouch::notation::timestamp::TimestampToken;
    let roots = vouch::notation::trust_store::parse_certificate_file(&read(
        "timestamp/tspclient-go/testdata/GlobalSignRootCA.crt",
    ))
    .expect("root");
    let seeds: Vec<Vec<u8>> = [
        "timestamp/tspclient-go/testdata/TimeStampToken.p7s",
        "timestamp/tspclient-go/testdata/TimeStampTokenWithValidAndInvalidSignerInfos.p7s",
        "timestamp/tspclient-go/testdata/TimeStampTokenNoRoot.p7s",
        "timestamp/tspclient-go/testdata/TimeStampTokenWithTSTInfoVersion2.p7s",
        "timestamp/tspclient-go/cms-testdata/TimeStampTokenWithSigningTime.p7s",
    ]
    .iter()
    .map(|f| read(f))
    .collect();
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    let gen_time = time::macros::datetime!(2021-09-17 14:09:10 UTC);
    run("timestamp tokens", 5000, case(), |case| {
        let mut bytes = seeds[case.seed % seeds.len()].clone();
        mutate(&mut bytes, &case.ops, &raw);
        bounded(bytes.len(), || -> Result<(), TestCaseError> {
            let Ok(token) = TimestampToken::parse(&bytes) else {
                return Ok(());
            };
            let stamp = token.timestamp(b"notation");
            if token.verify(&roots, gen_time).is_ok() {
                if let Ok(stamp) = stamp {
                    prop_assert_eq!(stamp.time, gen_time, "a verified token changed its time");
                }
            }
            Ok(())
        })??;
        Ok(())
    });
}

#[test]
fn fuzz_registry_documents() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for layout in e2e_layouts()
        .into_iter()
        .chain([vectors().join("notation-go-cose/layout")])
    {
        seeds.push(std::fs::read(layout.join("index.json")).unwrap());
        seeds.extend(
            layout_blobs(&layout)
                .into_iter()
                .filter(|b| b.len() < 4096 && serde_json::from_slice::<Value>(b).is_ok()),
        );
    }
    seeds.extend(
        [
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
            r#"Basic realm="registry""#,
            r#"Bearer realm="http://127.0.0.1:1/token", error="insufficient_scope""#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec()),
    );
    let raw: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    run("registry documents", 5000, case(), |case| {
        let mut bytes = seeds[case.seed % seeds.len()].clone();
        mutate(&mut bytes, &case.ops, &raw);
        let digests = bounded(bytes.len(), || {
            let mut digests = Vec::new();
            if let Ok(m) = serde_json::from_slice::<vouch::registry::Manifest>(&bytes) {
                digests.extend(m.layers.iter().chain(&m.blobs).map(|d| d.digest.clone()));
                digests.extend(m.config.iter().chain(&m.subject).map(|d| d.digest.clone()));
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                if let Ok(ds) = serde_json::from_value::<Vec<vouch::registry::Descriptor>>(
                    v["manifests"].clone(),
                ) {
                    digests.extend(ds.into_iter().map(|d| d.digest));
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = vouch::registry::auth::parse_challenge(&text);
            digests.push(text.into_owned());
            for d in &digests {
                let _ = vouch::registry::verify_digest(d, &bytes);
            }
            digests
        })?;
        for d in &digests {
            // Digests show (and compare) exactly as the registry wrote them.
            prop_assert_eq!(vouch::registry::Digest::new(d).to_string(), d.clone());
        }
        Ok(())
    });
}

#[test]
fn the_engine_mutates_and_shrinks_reproducibly() {
    let ops = [
        Op::Flip(0, 0),
        Op::Insert(5, 0),
        Op::Truncate(8),
        Op::Splice(0, 0, 2, 0),
    ];
    let mut a = b"hello world".to_vec();
    mutate(&mut a, &ops, &[b"xy"]);
    assert_eq!(a, b"xyiello\x00 w");
    let counted = Arc::new(AtomicU64::new(0));
    let c = counted.clone();
    run("engine self-check", 20, case(), move |_| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    assert!(counted.load(Ordering::Relaxed) >= 1);
}
