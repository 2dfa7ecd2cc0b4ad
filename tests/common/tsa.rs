//! An RFC 3161 timestamp authority that is not ours: `openssl ts -reply` with a root CA and a
//! timestamping leaf made by `openssl ca` in a directory of the test's, optionally at a pretended
//! time (Debian's `faketime`), optionally naming a CRL distribution point whose CRLs
//! `openssl ca -gencrl` makes (and `openssl ca -revoke` can revoke the leaf in).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use vouch::notation::trust_store::parse_certificate_file;
use vouch::notation::x509::Certificate;

/// When the TSA's certificates are valid: wide, so that tokens can be made at any pretended
/// time a test needs.
const NOT_BEFORE: &str = "20200101000000Z";
const NOT_AFTER: &str = "21000101000000Z";

/// Which ESS signing-certificate attribute a token carries (RFC 5035 v2 is what notation wants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EssCertId {
    /// `SigningCertificateV2` with a SHA-256 hash (`ess_cert_id_alg = sha256`).
    #[default]
    V2,
    /// `SigningCertificate` (v1, SHA-1 hash; `ess_cert_id_alg = sha1`).
    V1,
}

/// How one token is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamp<'a> {
    /// The pretended time (`"2025-03-01 12:00:00"`, UTC) the TSA signs at; `None` is now.
    pub at: Option<&'a str>,
    /// The signing-certificate attribute.
    pub ess_cert_id: EssCertId,
}

/// A timestamp authority: a self-signed root (CA:true, keyCertSign, cRLSign) and a leaf
/// (RSA 2048, KU critical digitalSignature, EKU critical timeStamping) it issued, both valid
/// 2020–2100. Its tokens use SHA-256, accuracy 1 s, and embed the leaf and the root.
pub struct Tsa {
    dir: PathBuf,
    root: Certificate,
    leaf: Certificate,
    /// Serialises `openssl ts -reply` (it rewrites the serial file).
    lock: Mutex<u32>,
}

impl Tsa {
    /// A TSA in `dir/<name>` (the directory is made); `name` also goes into its subjects, so two
    /// TSAs of one test never share a name.
    pub fn new(dir: &Path, name: &str) -> Tsa {
        Self::build(dir, name, None)
    }

    /// A TSA whose leaf names the CRL distribution point `crl_url` (serve [`Tsa::crl`] there).
    pub fn with_crl(dir: &Path, name: &str, crl_url: &str) -> Tsa {
        Self::build(dir, name, Some(crl_url))
    }

    fn build(dir: &Path, name: &str, crl_url: Option<&str>) -> Tsa {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("ca")).expect("mkdir");
        let cdp = crl_url
            .map(|u| format!("crlDistributionPoints = URI:{u}\n"))
            .unwrap_or_default();
        let mut cnf = TSA_CNF.replace("@CDP@\n", &cdp);
        for (section, alg) in [("tsa_v2", "sha256"), ("tsa_v1", "sha1")] {
            cnf.push_str(&TS_SECTION.replace("@NAME@", section).replace("@ALG@", alg));
        }
        std::fs::write(dir.join("tsa.cnf"), cnf).expect("cnf");
        std::fs::write(dir.join("ca/index.txt"), "").expect("index");
        std::fs::write(dir.join("ca/serial"), "1000\n").expect("serial");
        std::fs::write(dir.join("ca/crlnumber"), "1000\n").expect("crlnumber");
        std::fs::write(dir.join("tsaserial"), "01\n").expect("tsa serial");
        let run = |args: &[&str]| openssl(&dir, args).unwrap_or_else(|e| panic!("{e}"));
        let root_subject = format!("/C=US/O=vouch-test/CN=vouch test TSA root {name}");
        let leaf_subject = format!("/C=US/O=vouch-test/CN=vouch test TSA {name}");
        for (key, subject, csr) in [
            ("root.key", &root_subject, "root.csr"),
            ("tsa.key", &leaf_subject, "tsa.csr"),
        ] {
            run(&["genrsa", "-out", key, "2048"]);
            #[rustfmt::skip]
            run(&["req", "-new", "-key", key, "-subj", subject, "-out", csr, "-config", "tsa.cnf"]);
        }
        // `openssl ca` for both, so the dates can be chosen and the leaf revoked later.
        #[rustfmt::skip]
        run(&[
            "ca", "-batch", "-config", "tsa.cnf", "-selfsign", "-keyfile", "root.key",
            "-in", "root.csr", "-out", "root.crt", "-notext", "-extensions", "v3_root",
            "-startdate", NOT_BEFORE, "-enddate", NOT_AFTER,
        ]);
        #[rustfmt::skip]
        run(&[
            "ca", "-batch", "-config", "tsa.cnf", "-in", "tsa.csr", "-out", "tsa.crt",
            "-notext", "-extensions", "v3_tsa", "-startdate", NOT_BEFORE, "-enddate", NOT_AFTER,
        ]);
        let cert = |f: &str| {
            let mut certs =
                parse_certificate_file(&std::fs::read(dir.join(f)).expect("read certificate"))
                    .expect("parse certificate");
            certs.remove(0)
        };
        Tsa {
            root: cert("root.crt"),
            leaf: cert("tsa.crt"),
            dir,
            lock: Mutex::new(0),
        }
    }

    /// The leaf's subject as vouch (and Go's `pkix.Name`) prints it.
    pub fn subject(&self) -> String {
        self.leaf.subject().to_string()
    }

    /// The root's subject, printed the same way.
    pub fn root_subject(&self) -> String {
        self.root.subject().to_string()
    }

    /// The root certificate file (PEM).
    pub fn root_path(&self) -> PathBuf {
        self.dir.join("root.crt")
    }

    /// The root certificate as PEM text.
    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.root_path()).expect("read root")
    }

    /// The leaf (the token signer) certificate file (PEM).
    pub fn leaf_path(&self) -> PathBuf {
        self.dir.join("tsa.crt")
    }

    /// Put the root in the trust store under `store_root` as the `tsa:<name>` store
    /// (`<store_root>/x509/tsa/<name>/root.pem`).
    pub fn write_store(&self, store_root: &Path, name: &str) {
        let d = store_root.join("x509/tsa").join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::copy(self.root_path(), d.join("root.pem")).expect("copy root");
    }

    /// A TimeStampToken (DER) over `message`, made now.
    pub fn stamp(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.stamp_with(message, &Stamp::default())
    }

    /// A TimeStampToken over `message` made at the pretended time `at` (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub fn stamp_at(&self, message: &[u8], at: &str) -> Result<Vec<u8>, String> {
        self.stamp_with(
            message,
            &Stamp {
                at: Some(at),
                ..Default::default()
            },
        )
    }

    /// A TimeStampToken over `message` made as `how` says: `openssl ts -query -sha256 -cert`
    /// (so the token embeds the certificates), then `openssl ts -reply -token_out`.
    pub fn stamp_with(&self, message: &[u8], how: &Stamp<'_>) -> Result<Vec<u8>, String> {
        let mut n = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        let (data, query, token) = (
            format!("message-{n}.bin"),
            format!("query-{n}.tsq"),
            format!("token-{n}.der"),
        );
        std::fs::write(self.dir.join(&data), message).map_err(|e| e.to_string())?;
        #[rustfmt::skip]
        openssl(&self.dir, &["ts", "-query", "-data", &data, "-sha256", "-cert", "-out", &query])?;
        let section = match how.ess_cert_id {
            EssCertId::V2 => "tsa_v2",
            EssCertId::V1 => "tsa_v1",
        };
        #[rustfmt::skip]
        let reply = [
            "ts", "-reply", "-config", "tsa.cnf", "-section", section, "-queryfile", &query,
            "-token_out", "-out", &token,
        ];
        match how.at {
            None => openssl(&self.dir, &reply)?,
            Some(at) => faketime(&self.dir, at, &reply)?,
        };
        std::fs::read(self.dir.join(&token)).map_err(|e| format!("read the token: {e}"))
    }

    /// The TSA root's current CRL (DER), by `openssl ca -gencrl` (next update in 7 days).
    pub fn crl(&self) -> Vec<u8> {
        let run = |args: &[&str]| openssl(&self.dir, args).unwrap_or_else(|e| panic!("{e}"));
        #[rustfmt::skip]
        run(&["ca", "-config", "tsa.cnf", "-gencrl", "-crlexts", "crl_ext", "-out", "tsa.crl.pem"]);
        run(&[
            "crl",
            "-in",
            "tsa.crl.pem",
            "-outform",
            "DER",
            "-out",
            "tsa.crl",
        ]);
        std::fs::read(self.dir.join("tsa.crl")).expect("read CRL")
    }

    /// Revoke the TSA leaf (keyCompromise); later [`Tsa::crl`]s list it.
    pub fn revoke_leaf(&self) {
        #[rustfmt::skip]
        openssl(&self.dir, &[
            "ca", "-config", "tsa.cnf", "-revoke", "tsa.crt", "-crl_reason", "keyCompromise",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Run `openssl` in `dir`; its stderr is the error.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    run(Command::new("openssl").args(args).current_dir(dir), args)
}

/// Run `openssl` in `dir` at the pretended time `at` (UTC), through Debian's `faketime`.
fn faketime(dir: &Path, at: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", &format!("@{at}"), "openssl"])
        .args(args)
        .env("TZ", "UTC")
        .current_dir(dir);
    run(&mut cmd, args)
}

fn run(cmd: &mut Command, args: &[&str]) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().to_string();
    let out = cmd.output().map_err(|e| {
        format!("cannot run {program} (tests/run.sh installs openssl and faketime): {e}")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `openssl ca` (the root signs itself and the leaf; `preserve` keeps the subjects in the order
/// given) and the `openssl ts` default; the sections are [`TS_SECTION`]s.
const TSA_CNF: &str = r#"
[ ca ]
default_ca = tsa_ca

[ tsa_ca ]
dir = .
database = $dir/ca/index.txt
serial = $dir/ca/serial
crlnumber = $dir/ca/crlnumber
new_certs_dir = $dir/ca
certificate = $dir/root.crt
private_key = $dir/root.key
default_md = sha256
default_crl_days = 7
policy = any
preserve = yes
copy_extensions = none
unique_subject = no
email_in_dn = no

[ any ]
countryName = optional
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ v3_root ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ v3_tsa ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
@CDP@

[ crl_ext ]
authorityKeyIdentifier = keyid

[ tsa ]
default_tsa = tsa_v2

"#;

/// One `openssl ts` section; `@NAME@` and `@ALG@` (the ESS certificate id hash) filled in.
const TS_SECTION: &str = r#"
[ @NAME@ ]
dir = .
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/root.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = @ALG@
"#;
