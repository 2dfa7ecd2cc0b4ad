//! Issue 12, the CRL disk cache: `vouch verify` keeps the CRLs it downloads in notation's own
//! cache layout (`$NOTATION_CACHE/crl/<hex(sha256(url))>`, JSON `{"baseCRL": <base64 DER>}`), so
//! a later run — or the notation CLI — finds them there. Chains minted here with rcgen name a
//! CRL distribution point on a loopback server on a port chosen at run time; the server is
//! stopped to show that a later run needs no network.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::crl_server::CrlServer;
use common::fake_registry::{put_signed_image, FakeRegistry, State};
use common::pki::{Ca, Endpoints};
use common::verify_json;

const POLICY: &str = r#"{"version":"1.0","trustPolicies":[{"name":"crl","registryScopes":["*"],
    "signatureVerification":{"level":"strict"},"trustStores":["ca:crl"],"trustedIdentities":["*"]}]}"#;

const LEAF_SERIAL: u64 = 0x1001;

/// A root, a leaf naming `crl_url`, one signed image, the trust policy and store.
struct World {
    root: Ca,
    reg: FakeRegistry,
    dir: tempfile::TempDir,
    image: String,
}

impl World {
    fn new(crl_url: &str) -> World {
        let root = Ca::root("crl cache root");
        let id = root.signer(
            "crl cache signer",
            LEAF_SERIAL,
            Endpoints {
                crl: Some(crl_url),
                ocsp: None,
            },
        );
        let reg = FakeRegistry::start(State {
            referrers_api: true,
            ..Default::default()
        })
        .unwrap();
        put_signed_image(&reg, "app", "v1", b"crl cache", &id.signer());
        let dir = tempfile::tempdir().unwrap();
        id.write_store(&dir.path().join("store"), "crl");
        std::fs::write(dir.path().join("policy.json"), POLICY).unwrap();
        let image = format!("{}/app:v1", reg.host);
        World {
            root,
            reg,
            dir,
            image,
        }
    }

    /// `vouch verify` with `NOTATION_CACHE=cache` (JSON output): exit status, the first result.
    fn verify(&self, cache: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let cache = cache.display().to_string();
        let (code, v, err) = verify_json(
            &[&self.image],
            &self.dir.path().join("policy.json"),
            &self.dir.path().join("store"),
            &self.reg.host,
            extra,
            &[("NOTATION_CACHE", &cache)],
        );
        (code, v["results"][0].clone(), err)
    }
}

/// The leaf's revocation result of the first signature.
fn leaf(result: &serde_json::Value) -> &serde_json::Value {
    &result["signatures"][0]["revocation"]["certificates"][0]
}

#[test]
fn a_crl_stored_by_one_run_is_used_by_the_next_with_the_server_down() {
    let server = CrlServer::start(0);
    let url = server.url("leaf.crl");
    let w = World::new(&url);
    let crl = w.root.crl(1, &[]);
    server.serve("leaf.crl", crl.clone());
    let cache = w.dir.path().join("notation-cache");

    let (code, r, err) = w.verify(&cache, &[]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(leaf(&r)["method"], "CRL", "{r:#}");
    assert_eq!(leaf(&r)["status"], "ok", "{r:#}");
    assert_eq!(server.requests(), vec!["/leaf.crl".to_string()]);

    // notation's layout: <cache>/crl/<hex(sha256(url))>, private, holding the CRL as fetched.
    let dir = cache.join("crl");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let file = dir.join(vouch::registry::sha256_hex(url.as_bytes()));
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(stored["baseCRL"], b64.encode(&crl), "{stored}");
    assert!(stored.get("deltaCRL").is_none(), "{stored}");

    // The server goes away: a second process decides from the file alone.
    drop(server);
    let (code, r, err) = w.verify(&cache, &[]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(leaf(&r)["status"], "ok", "{r:#}");

    // Without the disk cache the same run has nothing to go on: unknown, a failure under strict.
    let (code, r, _) = w.verify(&cache, &["--no-crl-cache"]);
    assert_eq!(code, 1, "{r:#}");
    assert!(
        r.to_string().contains("revocation status is unknown"),
        "{r:#}"
    );
}

#[test]
fn a_file_in_notations_format_is_used_and_an_expired_or_corrupt_one_is_fetched_again() {
    let server = CrlServer::start(0);
    let url = server.url("leaf.crl");
    let w = World::new(&url);
    let cache = w.dir.path().join("seeded");
    let dir = cache.join("crl");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(vouch::registry::sha256_hex(url.as_bytes()));
    let b64 = base64::engine::general_purpose::STANDARD;

    // Seeded by hand as notation writes it: a CRL revoking the leaf. The server serves a CRL
    // that does not; the file decides, and the server is not asked.
    let revoking = w.root.crl(2, &[LEAF_SERIAL]);
    std::fs::write(
        &file,
        format!(r#"{{"baseCRL":"{}"}}"#, b64.encode(&revoking)),
    )
    .unwrap();
    let current = w.root.crl(3, &[]);
    server.serve("leaf.crl", current.clone());
    let (code, r, err) = w.verify(&cache, &[]);
    assert_eq!(code, 1, "{r:#}{err}");
    assert_eq!(leaf(&r)["status"], "revoked", "{r:#}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // An expired entry (notation's e2e seed, nextUpdate 2023-12-25) is a miss: fetched and
    // replaced by the download.
    let expired =
        std::fs::read(common::vectors().join("revocation/notation-e2e/crl/leaf_expired.crl"))
            .unwrap();
    std::fs::write(
        &file,
        format!(r#"{{"baseCRL":"{}"}}"#, b64.encode(&expired)),
    )
    .unwrap();
    let (code, r, err) = w.verify(&cache, &[]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    let stored =
        || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap() };
    assert_eq!(stored()["baseCRL"], b64.encode(&current));

    // A corrupt file is a miss too (and replaced), never a failure.
    std::fs::write(&file, b"{\"baseCRL\": \"not base64").unwrap();
    let (code, r, err) = w.verify(&cache, &[]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
    assert!(err.contains("CRL disk cache error"), "{err}");
    assert_eq!(stored()["baseCRL"], b64.encode(&current));
}

#[test]
fn a_cache_directory_that_cannot_be_made_never_fails_a_check() {
    let server = CrlServer::start(0);
    let w = World::new(&server.url("leaf.crl"));
    server.serve("leaf.crl", w.root.crl(1, &[]));
    // NOTATION_CACHE names a regular file: no crl/ directory can be made under it.
    let blocked = w.dir.path().join("not-a-directory");
    std::fs::write(&blocked, b"").unwrap();
    let (code, r, err) = w.verify(&blocked, &[]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(leaf(&r)["status"], "ok", "{r:#}");
    assert!(err.contains("CRL disk cache error"), "{err}");
    // --crl-cache-dir names another directory, used instead of notation's.
    let chosen = w.dir.path().join("chosen");
    let (code, r, err) = w.verify(&blocked, &["--crl-cache-dir", chosen.to_str().unwrap()]);
    assert_eq!(code, 0, "{r:#}{err}");
    assert_eq!(std::fs::read_dir(&chosen).unwrap().count(), 1);
}
