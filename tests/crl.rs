//! CRL parsing, validation and checking (`vouch::notation::revocation::crl`) against notation's
//! own fixtures and against CRLs made here by `openssl ca -gencrl`, each outcome asserted with
//! notation's message.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use vouch::notation::revocation::crl::{self, Crl};
use vouch::notation::revocation::{chain_result, CertResult, Method, Purpose, Status};
use vouch::notation::x509::Certificate;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/revocation")
}

fn pem_certs(path: &Path) -> Vec<Certificate> {
    vouch::notation::trust_store::parse_certificate_file(&fs::read(path).unwrap()).unwrap()
}

fn crl_file(path: &Path) -> Crl {
    crl::parse(fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// notation e2e fixtures: chain leaf 0x1000 ← IntermediateCA ← RootCA, CRLs valid to 2124.

const E2E_LEAF_URL: &str = "http://localhost:10086/leaf.crl";
const E2E_INTERMEDIATE_URL: &str = "http://localhost:10086/intermediate.crl";
const LEAF_SUBJECT: &str = "CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US";
const INTERMEDIATE_SUBJECT: &str =
    "CN=IntermediateCA,OU=OrgUnit,O=Organization,L=City,ST=State,C=US";

fn e2e() -> (Vec<Certificate>, PathBuf) {
    let dir = vectors().join("notation-e2e/crl");
    let chain = pem_certs(&dir.join("certchain_with_crl.pem"));
    assert_eq!(chain.len(), 3);
    (chain, dir)
}

fn cert_result(cert: &Certificate, status: Status) -> CertResult {
    CertResult {
        subject: cert.subject().to_string(),
        status,
        method: Some(Method::Crl),
        servers: Vec::new(),
        valid_until: None,
    }
}

#[test]
fn notation_e2e_crls_decide_as_notation() {
    let (chain, dir) = e2e();
    let (leaf, intermediate) = (&chain[0], &chain[1]);
    let now = OffsetDateTime::now_utc();
    assert_eq!(leaf.crl_urls(), [E2E_LEAF_URL]);
    assert_eq!(intermediate.crl_urls(), [E2E_INTERMEDIATE_URL]);

    let leaf_crl = crl_file(&dir.join("leaf.crl"));
    let d = crl::decide_url(
        E2E_LEAF_URL,
        leaf,
        intermediate,
        Ok((&leaf_crl, None)),
        now,
        None,
    );
    assert_eq!(d.status, Status::Ok, "{d:?}");
    assert_eq!(d.error, None);
    assert_eq!(d.next_update, Some(datetime!(2124-10-18 05:30:52 UTC)));
    assert!(leaf_crl.is_effective(now));

    let int_crl = crl_file(&dir.join("intermediate.crl"));
    let d = crl::decide_url(
        E2E_INTERMEDIATE_URL,
        intermediate,
        &chain[2],
        Ok((&int_crl, None)),
        now,
        None,
    );
    assert_eq!(d.status, Status::Ok, "{d:?}");

    let revoked = crl_file(&dir.join("leaf_revoked.crl"));
    let d = crl::decide_url(
        E2E_LEAF_URL,
        leaf,
        intermediate,
        Ok((&revoked, None)),
        now,
        None,
    );
    assert_eq!(d.status, Status::Revoked, "{d:?}");
    let results = [
        cert_result(leaf, d.status),
        cert_result(intermediate, Status::Ok),
        cert_result(&chain[2], Status::NonRevokable),
    ];
    assert_eq!(
        chain_result(Purpose::CodeSigning, &results).unwrap_err(),
        format!("signing certificate with subject {LEAF_SUBJECT:?} is revoked")
    );
    // The revoked leaf CRL does not revoke the intermediate (other serial, other issuer).
    assert_eq!(
        crl::check(intermediate, &revoked, None, None).status,
        Status::Ok
    );

    let int_revoked = crl_file(&dir.join("intermediate_revoked.crl"));
    let d = crl::decide_url(
        E2E_INTERMEDIATE_URL,
        intermediate,
        &chain[2],
        Ok((&int_revoked, None)),
        now,
        None,
    );
    assert_eq!(d.status, Status::Revoked, "{d:?}");
    let results = [
        cert_result(leaf, Status::Ok),
        cert_result(intermediate, d.status),
        cert_result(&chain[2], Status::NonRevokable),
    ];
    assert_eq!(
        chain_result(Purpose::CodeSigning, &results).unwrap_err(),
        format!("signing certificate with subject {INTERMEDIATE_SUBJECT:?} is revoked")
    );
}

#[test]
fn notation_e2e_expired_crl_is_unknown_for_its_signature_then_its_date() {
    let (chain, dir) = e2e();
    let (leaf, intermediate) = (&chain[0], &chain[1]);
    let expired = crl_file(&dir.join("leaf_expired.crl"));
    assert!(!expired.is_effective(OffsetDateTime::now_utc()));
    // Made by another IntermediateCA key: the signature check (first) fails.
    let d = crl::decide_url(
        E2E_LEAF_URL,
        leaf,
        intermediate,
        Ok((&expired, None)),
        OffsetDateTime::now_utc(),
        None,
    );
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(
        d.error.unwrap(),
        format!(
            "failed to validate CRL from {E2E_LEAF_URL}: failed to validate base CRL: CRL is not \
             signed by CA {INTERMEDIATE_SUBJECT}: crypto/rsa: verification error,"
        )
    );
    // A good CRL past its nextUpdate is expired.
    let good = crl_file(&dir.join("leaf.crl"));
    let later = datetime!(2124-10-18 05:30:53 UTC);
    let e = crl::validate(&good, intermediate, later, false).unwrap_err();
    assert_eq!(
        e,
        "failed to validate base CRL: expired CRL. Current time 2124-10-18 05:30:53 +0000 UTC is \
         after CRL NextUpdate 2124-10-18 05:30:52 +0000 UTC"
    );
    // At nextUpdate exactly it is still valid (notation: now.After(nextUpdate)).
    crl::validate(
        &good,
        intermediate,
        datetime!(2124-10-18 05:30:52 UTC),
        false,
    )
    .unwrap();
    // Signed by the intermediate, not the root.
    let e = crl::validate(&good, &chain[2], OffsetDateTime::now_utc(), false).unwrap_err();
    assert!(
        e.starts_with("failed to validate base CRL: CRL is not signed by CA CN=RootCA,"),
        "{e}"
    );
    // A leaf is no CA.
    let e = crl::validate(&good, leaf, OffsetDateTime::now_utc(), true).unwrap_err();
    assert_eq!(
        e,
        format!(
            "failed to validate delta CRL: CRL is not signed by CA {LEAF_SUBJECT}: x509: invalid \
             signature: parent certificate cannot sign this kind of certificate,"
        )
    );
}

#[test]
fn download_failures_are_worded_as_notation() {
    let (chain, _) = e2e();
    let d = crl::decide_url(
        E2E_LEAF_URL,
        &chain[0],
        &chain[1],
        Err(&crl::status_error(404)),
        OffsetDateTime::now_utc(),
        None,
    );
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(
        d.error.clone().unwrap(),
        "failed to download CRL from http://localhost:10086/leaf.crl: failed to retrieve CRL: \
         failed to download with status code: 404"
    );
    assert_eq!(
        crl::url_error("https://example.test/a.crl").unwrap(),
        "unsupported scheme: https. Only supports CRL URL in HTTP protocol"
    );
    assert_eq!(crl::url_error(E2E_LEAF_URL), None);
    assert_eq!(crl::size_error(), "CRL size exceeds the limit: 33554432");
    let e = crl::parse(b"invalid crl".to_vec()).unwrap_err();
    assert!(e.0.starts_with("x509: malformed crl"), "{e}");
    let sr = crl::server_result(E2E_LEAF_URL, &d);
    assert_eq!(sr.method, Method::Crl);
    assert_eq!(sr.url, E2E_LEAF_URL);
}

// ---------------------------------------------------------------------------------------------
// notation-core-go crl-testdata: Freshest CRL parsing and delta rules.

fn freshest_of(name: &str) -> Vec<u8> {
    let cert = &pem_certs(&vectors().join("notation-core-go/crl-testdata").join(name))[0];
    cert.freshest_crl_extension()
        .expect("freshest CRL extension")
        .to_vec()
}

#[test]
fn freshest_crl_extensions_parse_as_notation() {
    let urls = crl::freshest_crl_urls(&freshest_of("certificateWithDeltaCRL.cer")).unwrap();
    assert_eq!(urls.len(), 1);
    assert!(
        urls[0].starts_with("http://localhost:80/ejbca/publicweb/webdist/certdist?cmd=deltacrl"),
        "{urls:?}"
    );
    assert_eq!(
        crl::freshest_crl_urls(&freshest_of("certificateWith2DeltaCRL.cer"))
            .unwrap()
            .len(),
        2
    );
    for zero in [
        "certificateWithZeroDeltaCRLURL.cer",
        "certificateWithNonURIDeltaCRL.cer",
        "certificateWithIncompleteFreshestCRL2.cer",
    ] {
        assert_eq!(
            crl::freshest_crl_urls(&freshest_of(zero)).unwrap(),
            Vec::<String>::new(),
            "{zero}"
        );
    }
    assert_eq!(
        crl::freshest_crl_urls(&freshest_of("certificateWithIncompleteFreshestCRL.cer"))
            .unwrap_err(),
        "x509: invalid CRL distribution point"
    );
}

#[test]
fn core_go_delta_fixtures() {
    let dir = vectors().join("notation-core-go/crl-testdata");
    let base = crl_file(&dir.join("crlWithMultipleFreshestCRLs.crl"));
    let delta = crl_file(&dir.join("delta.crl"));
    // Both have nextUpdate 2024-11-25T07:36:40Z: pretend the time.
    assert!(base.is_effective(datetime!(2024-11-25 07:33:00 UTC)));
    assert!(!base.is_effective(datetime!(2024-11-25 07:36:41 UTC)));
    assert!(delta.is_effective(datetime!(2024-11-25 07:36:40 UTC)));
    let urls = crl::delta_urls(&base).unwrap();
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|u| u.contains("cmd=deltacrl")));
    assert_eq!(crl::delta_urls(&delta).unwrap(), Vec::<String>::new());
    // Garbage at the delta URL fails the whole download, as notation's fetcher test expects.
    let e = crl::parse(b"invalid crl".to_vec()).unwrap_err();
    assert!(
        crl::download_failed(&urls[1], &e.0)
            .ends_with("failed to retrieve CRL: x509: malformed crl"),
        "{e}"
    );
    assert_eq!(
        crl::validate_delta(&base, &delta).unwrap_err(),
        "delta CRL number 5 is not greater than the base CRL number 5"
    );
    // The EJBCA CA is not in the fixtures: the signature check (first) refuses any other CA.
    let (chain, _) = e2e();
    let e = crl::validate(&delta, &chain[2], datetime!(2024-11-25 07:33:00 UTC), true).unwrap_err();
    assert!(
        e.starts_with("failed to validate delta CRL: CRL is not signed by CA CN=RootCA"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// CRLs made by `openssl ca` at test time.

const CA_CNF: &str = r#"
[ca]
default_ca = CA_default
[CA_default]
database = ./ca/index.txt
serial = ./ca/serial
crlnumber = ./ca/crlnumber
new_certs_dir = ./ca
certificate = ./ca/root.crt
private_key = ./ca/root.key
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
copy_extensions = none
unique_subject = no
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Test Root
[v3_root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_no_crl_sign]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign
[v3_leaf]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
crlDistributionPoints = URI:http://127.0.0.1:9/leaf.crl
[v3_leaf_freshest]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
crlDistributionPoints = URI:http://127.0.0.1:9/leaf.crl
freshestCRL = URI:http://127.0.0.1:9/delta.crl
[crl_ext]
authorityKeyIdentifier = keyid:always
[crl_freshest]
authorityKeyIdentifier = keyid:always
freshestCRL = URI:http://127.0.0.1:9/delta.crl
[crl_critical_unknown]
1.2.3.4 = critical,DER:0500
[crl_idp]
issuingDistributionPoint = critical,@idp
[idp]
fullname = URI:http://127.0.0.1:9/leaf.crl
[crl_delta_16]
2.5.29.27 = critical,DER:020110
[crl_delta_17]
2.5.29.27 = critical,DER:020111
"#;

struct Pki {
    dir: tempfile::TempDir,
    root: Certificate,
    /// Leaves with serials 0x1000, 0x1001, 0x1002 (all valid, issued by the root).
    leaves: Vec<Certificate>,
}

/// A revocation line of the openssl index: serial (hex), revocation time and reason field.
struct Revoked<'a>(&'a str, &'a str, &'a str);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("ca")).unwrap();
        fs::write(d.join("ca.cnf"), CA_CNF).unwrap();
        fs::write(d.join("ca/index.txt"), "").unwrap();
        fs::write(d.join("ca/serial"), "1000\n").unwrap();
        #[rustfmt::skip]
        openssl(d, &[
            "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca/root.key",
            "-out", "ca/root.crt", "-subj", "/CN=Test Root", "-days", "3650", "-config",
            "ca.cnf", "-extensions", "v3_root",
        ]);
        #[rustfmt::skip]
        openssl(d, &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=Leaf",
        ]);
        let mut leaves = Vec::new();
        for (i, ext) in ["v3_leaf", "v3_leaf", "v3_leaf_freshest"]
            .iter()
            .enumerate()
        {
            let out = format!("leaf{i}.crt");
            #[rustfmt::skip]
            openssl(d, &[
                "ca", "-batch", "-config", "ca.cnf", "-extensions", ext, "-in", "leaf.csr",
                "-out", &out, "-notext",
            ]);
            leaves.push(pem_certs(&d.join(&out)).remove(0));
        }
        let root = pem_certs(&d.join("ca/root.crt")).remove(0);
        Self { dir, root, leaves }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        openssl(self.dir.path(), args);
    }

    fn cert(&self, name: &str) -> Certificate {
        pem_certs(&self.path(name)).remove(0)
    }

    /// Another self-signed CA made with `extensions` and `subject`.
    fn other_ca(&self, name: &str, subject: &str, extensions: &str) -> Certificate {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            subject,
            "-days",
            "3650",
            "-config",
            "ca.cnf",
            "-extensions",
            extensions,
        ]);
        self.cert(&crt)
    }

    /// A CRL from an index of `revoked` lines, numbered `number`, with `crlexts` and extra
    /// `openssl ca -gencrl` arguments; returned parsed (from DER).
    fn gencrl(&self, revoked: &[Revoked<'_>], number: u32, crlexts: &str, extra: &[&str]) -> Crl {
        let index: String = revoked
            .iter()
            .map(|Revoked(serial, time, reason)| {
                let rev = if reason.is_empty() {
                    time.to_string()
                } else {
                    format!("{time},{reason}")
                };
                format!("R\t301231000000Z\t{rev}\t{serial}\tunknown\t/CN=Leaf\n")
            })
            .collect();
        fs::write(self.path("ca/index.txt"), index).unwrap();
        fs::write(self.path("ca/crlnumber"), format!("{number:02X}\n")).unwrap();
        let mut args = vec!["ca", "-config", "ca.cnf", "-gencrl", "-out", "out.crl"];
        if !crlexts.is_empty() {
            args.extend(["-crlexts", crlexts]);
        }
        args.extend(extra);
        self.openssl(&args);
        self.to_der("out.crl")
    }

    fn to_der(&self, pem: &str) -> Crl {
        self.openssl(&["crl", "-in", pem, "-outform", "DER", "-out", "out.der"]);
        crl::parse(fs::read(self.path("out.der")).unwrap()).unwrap()
    }
}

const URL: &str = "http://127.0.0.1:9/leaf.crl";

#[test]
fn openssl_crls_revoke_hold_and_unrevoke_as_notation() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let (leaf, other) = (&pki.leaves[0], &pki.leaves[1]);
    let decide = |base: &Crl, delta: Option<&Crl>, signing_time| {
        crl::decide_url(URL, leaf, &pki.root, Ok((base, delta)), now, signing_time)
    };

    let empty = pki.gencrl(&[], 0x10, "crl_ext", &[]);
    let d = decide(&empty, None, None);
    assert_eq!((d.status, d.error.as_deref()), (Status::Ok, None));
    let next = d.next_update.unwrap();
    assert!(
        next > now + Duration::days(6) && next <= now + Duration::days(8),
        "{next}"
    );

    // keyCompromise (any permanent reason) and no reason revoke; another serial does not.
    for reason in ["keyCompromise", "superseded", ""] {
        let crl = pki.gencrl(
            &[Revoked("1000", "250101000000Z", reason)],
            0x10,
            "crl_ext",
            &[],
        );
        assert_eq!(decide(&crl, None, None).status, Status::Revoked, "{reason}");
        assert_eq!(crl::check(other, &crl, None, None).status, Status::Ok);
    }

    // certificateHold revokes; removeFromCRL alone does not.
    let hold = pki.gencrl(
        &[Revoked("1000", "250101000000Z", "certificateHold")],
        0x10,
        "crl_ext",
        &[],
    );
    assert_eq!(decide(&hold, None, None).status, Status::Revoked);
    let remove = pki.gencrl(
        &[Revoked("1000", "250102000000Z", "removeFromCRL")],
        0x11,
        "crl_delta_16",
        &[],
    );
    assert_eq!(crl::check(leaf, &remove, None, None).status, Status::Ok);

    // Hold in the base, removeFromCRL in the delta: the latest revocation time wins; a tie keeps
    // the base's hold.
    let d = decide(&hold, Some(&remove), None);
    assert_eq!(
        (d.status, d.error),
        (Status::Ok, None),
        "later removeFromCRL unrevokes"
    );
    let tie = pki.gencrl(
        &[Revoked("1000", "250101000000Z", "removeFromCRL")],
        0x11,
        "crl_delta_16",
        &[],
    );
    assert_eq!(
        decide(&hold, Some(&tie), None).status,
        Status::Revoked,
        "tie"
    );
    let earlier = pki.gencrl(
        &[Revoked("1000", "241231000000Z", "removeFromCRL")],
        0x11,
        "crl_delta_16",
        &[],
    );
    assert_eq!(decide(&hold, Some(&earlier), None).status, Status::Revoked);
    // removeFromCRL in the base, a later hold in the delta: held again.
    let base_remove = pki.gencrl(
        &[Revoked("1000", "250101000000Z", "removeFromCRL")],
        0x10,
        "crl_ext",
        &[],
    );
    let delta_hold = pki.gencrl(
        &[Revoked("1000", "250102000000Z", "certificateHold")],
        0x11,
        "crl_delta_16",
        &[],
    );
    assert_eq!(
        decide(&base_remove, Some(&delta_hold), None).status,
        Status::Revoked
    );
    // A permanent revocation in the delta revokes whatever the base says.
    let delta_revoked = pki.gencrl(
        &[Revoked("1000", "250102000000Z", "keyCompromise")],
        0x11,
        "crl_delta_16",
        &[],
    );
    assert_eq!(
        decide(&empty, Some(&delta_revoked), None).status,
        Status::Revoked
    );
    // next_update is the earliest of base and delta.
    let short = pki.gencrl(&[], 0x11, "crl_delta_16", &["-crlhours", "2"]);
    let d = decide(&empty, Some(&short), None);
    assert_eq!(d.status, Status::Ok);
    assert_eq!(d.next_update, short.next_update());
    assert!(d.next_update < empty.next_update());
}

#[test]
fn openssl_invalidity_date_against_the_signing_time() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let leaf = &pki.leaves[0];
    // `keyTime,<t>` = keyCompromise with invalidityDate t.
    let crl = pki.gencrl(
        &[Revoked("1000", "250201000000Z", "keyTime,20250101000000Z")],
        0x10,
        "crl_ext",
        &[],
    );
    let decide = |signing_time| {
        crl::decide_url(URL, leaf, &pki.root, Ok((&crl, None)), now, signing_time).status
    };
    assert_eq!(decide(Some(datetime!(2024-12-31 23:59:59 UTC))), Status::Ok);
    assert_eq!(
        decide(Some(datetime!(2025-01-01 00:00:00 UTC))),
        Status::Revoked
    );
    assert_eq!(
        decide(Some(datetime!(2025-01-15 00:00:00 UTC))),
        Status::Revoked
    );
    assert_eq!(
        decide(None),
        Status::Revoked,
        "no signing time: any revocation counts"
    );
    // Without an invalidityDate the signing time does not matter.
    let plain = pki.gencrl(
        &[Revoked("1000", "250201000000Z", "keyCompromise")],
        0x10,
        "crl_ext",
        &[],
    );
    let d = crl::decide_url(
        URL,
        leaf,
        &pki.root,
        Ok((&plain, None)),
        now,
        Some(datetime!(2020-01-01 00:00:00 UTC)),
    );
    assert_eq!(d.status, Status::Revoked);
}

#[test]
fn openssl_crls_that_do_not_validate() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let leaf = &pki.leaves[0];
    let validate_error = |crl: &Crl| {
        let d = crl::decide_url(URL, leaf, &pki.root, Ok((crl, None)), now, None);
        assert_eq!(d.status, Status::Unknown);
        d.error.unwrap()
    };
    let prefix = format!("failed to validate CRL from {URL}: failed to validate base CRL: ");

    // Signed by another key under the same DN.
    pki.other_ca("impostor", "/CN=Test Root", "v3_root");
    let forged = pki.gencrl(
        &[],
        0x10,
        "crl_ext",
        &["-cert", "impostor.crt", "-keyfile", "impostor.key"],
    );
    assert_eq!(
        validate_error(&forged),
        format!("{prefix}CRL is not signed by CA CN=Test Root: crypto/rsa: verification error,")
    );

    // An issuer whose key usage lacks cRLSign.
    let no_crl_sign = pki.other_ca("nocrlsign", "/CN=No CRL Sign", "v3_no_crl_sign");
    let crl = pki.gencrl(
        &[],
        0x10,
        "crl_ext",
        &["-cert", "nocrlsign.crt", "-keyfile", "nocrlsign.key"],
    );
    let e = crl::validate(&crl, &no_crl_sign, now, false).unwrap_err();
    assert_eq!(
        e,
        "failed to validate base CRL: CRL is not signed by CA CN=No CRL Sign: x509: invalid \
         signature: parent certificate cannot sign this kind of certificate,"
    );

    // Expired: an hour's CRL two hours later.
    let hourly = pki.gencrl(&[], 0x10, "crl_ext", &["-crlhours", "1"]);
    let later = now + Duration::hours(2);
    let d = crl::decide_url(URL, leaf, &pki.root, Ok((&hourly, None)), later, None);
    assert!(
        d.error
            .as_deref()
            .unwrap()
            .starts_with(&format!("{prefix}expired CRL. Current time ")),
        "{d:?}"
    );
    assert!(!hourly.is_effective(later) && hourly.is_effective(now));

    // A critical CRL extension vouch does not know; a critical IDP is accepted (not evaluated).
    let critical = pki.gencrl(&[], 0x10, "crl_critical_unknown", &[]);
    assert_eq!(
        validate_error(&critical),
        format!("{prefix}unsupported critical extension found in CRL: 1.2.3.4")
    );
    let idp = pki.gencrl(&[], 0x10, "crl_idp", &[]);
    assert_eq!(crl::validate(&idp, &pki.root, now, false), Ok(()));

    // SHA-1 signatures are accepted on CRLs, as Go's CheckSignature accepts them.
    let sha1 = pki.gencrl(&[], 0x10, "crl_ext", &["-md", "sha1"]);
    assert_eq!(crl::validate(&sha1, &pki.root, now, false), Ok(()));
}

#[test]
fn openssl_delta_crls() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let (leaf, second) = (&pki.leaves[0], &pki.leaves[1]);

    // A base naming a delta, and `openssl crl -gendelta` between it and a newer CRL.
    let base = pki.gencrl(
        &[Revoked("1000", "250101000000Z", "keyCompromise")],
        0x10,
        "crl_freshest",
        &[],
    );
    fs::copy(pki.path("out.crl"), pki.path("base.crl")).unwrap();
    assert_eq!(
        crl::delta_urls(&base).unwrap(),
        ["http://127.0.0.1:9/delta.crl"]
    );
    pki.gencrl(
        &[
            Revoked("1000", "250101000000Z", "keyCompromise"),
            Revoked("1001", "250102000000Z", "keyCompromise"),
        ],
        0x11,
        "crl_ext",
        &[],
    );
    pki.openssl(&[
        "crl",
        "-in",
        "base.crl",
        "-gendelta",
        "out.crl",
        "-key",
        "ca/root.key",
        "-sha256",
        "-out",
        "delta.crl",
    ]);
    let delta = pki.to_der("delta.crl");
    assert_eq!(
        crl::validate_bundle(&base, Some(&delta), &pki.root, now),
        Ok(())
    );
    let d = crl::decide_url(URL, second, &pki.root, Ok((&base, Some(&delta))), now, None);
    assert_eq!(d.status, Status::Revoked, "revoked in the delta: {d:?}");
    assert_eq!(crl::check(second, &base, None, None).status, Status::Ok);
    assert_eq!(
        crl::check(leaf, &base, Some(&delta), None).status,
        Status::Revoked
    );

    // Delta rules.
    let prefix = format!("failed to validate CRL from {URL}: ");
    let decide = |base: &Crl, delta: &Crl| {
        crl::decide_url(URL, leaf, &pki.root, Ok((base, Some(delta))), now, None)
            .error
            .unwrap()
    };
    let same_number = pki.gencrl(&[], 0x10, "crl_delta_16", &[]);
    assert_eq!(
        decide(&base, &same_number),
        format!("{prefix}delta CRL number 16 is not greater than the base CRL number 16")
    );
    let no_indicator = pki.gencrl(&[], 0x11, "crl_ext", &[]);
    assert_eq!(
        decide(&base, &no_indicator),
        format!("{prefix}delta CRL indicator extension is not found")
    );
    let ahead = pki.gencrl(&[], 0x12, "crl_delta_17", &[]);
    assert_eq!(
        decide(&base, &ahead),
        format!(
            "{prefix}delta CRL indicator 17 is not less than or equal to the base CRL number 16"
        )
    );
    let expired_delta = pki.gencrl(&[], 0x11, "crl_delta_16", &["-crlhours", "1"]);
    let e = crl::decide_url(
        URL,
        leaf,
        &pki.root,
        Ok((&base, Some(&expired_delta))),
        now + Duration::hours(2),
        None,
    )
    .error
    .unwrap();
    assert!(
        e.starts_with(&format!(
            "{prefix}failed to validate delta CRL: expired CRL. Current time"
        )),
        "{e}"
    );

    // A certificate naming delta CRLs itself, with no delta from the base: not supported.
    let freshest_leaf = &pki.leaves[2];
    assert!(freshest_leaf.freshest_crl_extension().is_some());
    let plain = pki.gencrl(&[], 0x10, "crl_ext", &[]);
    let d = crl::decide_url(URL, freshest_leaf, &pki.root, Ok((&plain, None)), now, None);
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(
        d.error.as_deref(),
        Some("freshest CRL from certificate extension is not supported")
    );
    let d = crl::decide_url(
        URL,
        freshest_leaf,
        &pki.root,
        Ok((&base, Some(&delta))),
        now,
        None,
    );
    assert_eq!(d.status, Status::Ok, "{d:?}");
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[test]
fn a_critical_entry_extension_makes_the_check_unknown() {
    // openssl cannot put arbitrary entry extensions in a CRL: build the TBS by hand and sign it
    // with the root's key (`openssl dgst -sign`, PKCS#1 v1.5 SHA-256).
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let seq = |parts: &[Vec<u8>]| tlv(0x30, &parts.concat());
    let alg = seq(&[
        vec![
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
        ],
        vec![0x05, 0x00],
    ]);
    let critical_unknown = seq(&[
        vec![0x06, 0x03, 0x2a, 0x03, 0x04],
        vec![0x01, 0x01, 0xff],
        tlv(0x04, &[0x05, 0x00]),
    ]);
    let entry = seq(&[
        tlv(0x02, &[0x10, 0x00]),
        tlv(0x17, b"250101000000Z"),
        seq(&[critical_unknown]),
    ]);
    let next_update = (now + Duration::days(1))
        .format(time::macros::format_description!(
            "[year repr:last_two][month][day][hour][minute][second]Z"
        ))
        .unwrap();
    let tbs = seq(&[
        vec![0x02, 0x01, 0x01],
        alg.clone(),
        pki.root.subject_der().to_vec(),
        tlv(0x17, b"250101000000Z"),
        tlv(0x17, next_update.as_bytes()),
        seq(&[entry]),
    ]);
    fs::write(pki.path("tbs.der"), &tbs).unwrap();
    pki.openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        "ca/root.key",
        "-out",
        "sig.bin",
        "tbs.der",
    ]);
    let mut bits = vec![0x00];
    bits.extend(fs::read(pki.path("sig.bin")).unwrap());
    let crl = crl::parse(seq(&[tbs, alg, tlv(0x03, &bits)])).unwrap();
    assert_eq!(crl::validate(&crl, &pki.root, now, false), Ok(()));
    let d = crl::decide_url(URL, &pki.leaves[0], &pki.root, Ok((&crl, None)), now, None);
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(
        d.error.as_deref(),
        Some(
            "failed to check revocation status from http://127.0.0.1:9/leaf.crl: unsupported \
             critical extension found in CRL: 1.2.3.4"
        )
    );
    assert_eq!(d.next_update, crl.next_update());
    // The entry is the leaf's only: the next leaf is not concerned.
    let d = crl::decide_url(URL, &pki.leaves[1], &pki.root, Ok((&crl, None)), now, None);
    assert_eq!(d.status, Status::Ok);
}
