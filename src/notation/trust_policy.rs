//! The Notation trust policy document (`trustpolicy.json` / `trustpolicy.oci.json`), validated
//! with notation-go's rules and messages (`verifier/trustpolicy/oci.go`, `trustpolicy.go`).
//!
//! A document is validated whole before anything is verified: a policy that notation would
//! reject is never half-used. Statement selection is exact string equality of the normalised
//! `registry/repository` against `registryScopes`, falling back to the `*` statement.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use super::dn::DistinguishedName;
use super::level::{Action, Check, LevelName, VerificationLevel};
use super::trust_store::{StoreType, TrustStoreRef};

/// Largest trust policy file read.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// A trust policy document that failed to load or validate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read: missing, not a regular file, or larger than 1 MiB.
    #[error("trust policy {0}")]
    File(crate::files::FileError),
    /// The file is not the JSON of a trust policy document.
    #[error("malformed trust policy: {0}")]
    Malformed(String),
    /// The document breaks a rule of the specification.
    #[error("{0}")]
    Invalid(String),
}

/// What `trustedIdentities` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentities {
    /// `*`: any signer whose chain ends in the statement's trust stores.
    Any,
    /// `x509.subject:` entries; the leaf must contain one of them. Entries with other prefixes
    /// pass validation but are ignored, as in notation.
    Subjects(Vec<DistinguishedName>),
}

/// When to verify a timestamp countersignature (`verifyTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyTimestamp {
    /// Always (the default).
    Always,
    /// Only once a certificate of the signing chain has expired.
    AfterCertExpiry,
}

/// One validated trust policy statement.
#[derive(Debug, Clone)]
pub struct TrustPolicyStatement {
    /// Unique statement name.
    pub name: String,
    /// Exact `registry/repository` scopes; empty when the statement is the `*` statement.
    pub registry_scopes: Vec<String>,
    /// Whether the statement applies to every repository not named elsewhere.
    pub is_wildcard: bool,
    /// The level with overrides applied.
    pub level: VerificationLevel,
    /// `verifyTimestamp`.
    pub verify_timestamp: VerifyTimestamp,
    /// Named trust stores, duplicates removed.
    pub trust_stores: Vec<TrustStoreRef>,
    /// Who may sign.
    pub trusted_identities: TrustedIdentities,
}

/// A validated trust policy document.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    statements: Vec<TrustPolicyStatement>,
    /// SHA-256 of the document bytes, for cache fingerprints and logs.
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    #[serde(default)]
    version: String,
    #[serde(default)]
    trust_policies: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(default)]
    name: String,
    #[serde(default)]
    registry_scopes: Vec<String>,
    #[serde(default)]
    signature_verification: RawSignatureVerification,
    #[serde(default)]
    trust_stores: Vec<String>,
    #[serde(default)]
    trusted_identities: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSignatureVerification {
    #[serde(default)]
    level: String,
    #[serde(default, rename = "override")]
    overrides: HashMap<String, String>,
    #[serde(default)]
    verify_timestamp: String,
}

fn domain_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$")
            .expect("static regex")
    })
}

fn repository_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$")
            .expect("static regex")
    })
}

fn store_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z0-9_.-]+$").expect("static regex"))
}

/// Whether `scope` is a fully qualified `domain/repository` as notation requires.
pub fn is_valid_scope(scope: &str) -> bool {
    match scope.split_once('/') {
        Some((domain, repo)) => domain_re().is_match(domain) && repository_re().is_match(repo),
        None => false,
    }
}

/// Statement names starting with this are vouch's: a scope judged by a cosign rule alone is
/// judged under a stand-in statement named `cosign[N]` (the verdict's `policy`, the verdict
/// cache's fingerprint key), which a Notation statement of that name would be mistaken for.
pub const RESERVED_NAME_PREFIX: &str = "cosign[";

/// Whether a trust store name is one notation accepts.
pub fn is_valid_store_name(name: &str) -> bool {
    store_name_re().is_match(name)
}

impl TrustPolicy {
    /// Read and validate a trust policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let bytes = crate::files::read(path, MAX_POLICY_BYTES).map_err(PolicyError::File)?;
        Self::from_json(&bytes)
    }

    /// Validate a trust policy document given as JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() as u64 > MAX_POLICY_BYTES {
            return Err(PolicyError::Malformed("document too large".into()));
        }
        let raw: RawDocument =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        let statements = validate(raw).map_err(PolicyError::Invalid)?;
        Ok(Self {
            statements,
            digest: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)),
        })
    }

    /// All statements in document order.
    pub fn statements(&self) -> &[TrustPolicyStatement] {
        &self.statements
    }

    /// SHA-256 (hex) of the document.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The statement that applies to `scope` (`registry/repository`): an exact scope match, else
    /// the `*` statement.
    pub fn statement_for(&self, scope: &str) -> Option<&TrustPolicyStatement> {
        self.statements
            .iter()
            .find(|s| s.registry_scopes.iter().any(|r| r == scope))
            .or_else(|| self.statements.iter().find(|s| s.is_wildcard))
    }

    /// Every trust store any statement names.
    pub fn trust_store_refs(&self) -> impl Iterator<Item = &TrustStoreRef> {
        self.statements.iter().flat_map(|s| s.trust_stores.iter())
    }
}

fn validate(raw: RawDocument) -> Result<Vec<TrustPolicyStatement>, String> {
    if raw.version.is_empty() {
        return Err(
            "trust policy document is missing or has empty version, it must be specified".into(),
        );
    }
    if raw.version != "1.0" {
        return Err(format!(
            "trust policy document uses unsupported version {:?}",
            raw.version
        ));
    }
    if raw.trust_policies.is_empty() {
        return Err("trust policy document can not have zero trust policy statements".into());
    }
    let mut names = HashSet::new();
    let mut scopes_seen: HashSet<String> = HashSet::new();
    let mut statements = Vec::with_capacity(raw.trust_policies.len());
    for s in raw.trust_policies {
        if s.name.is_empty() {
            return Err(
                "a trust policy statement is missing a name, every statement requires a name"
                    .into(),
            );
        }
        if s.name.starts_with(RESERVED_NAME_PREFIX) {
            return Err(format!(
                "trust policy statement name {:?} is reserved: names starting with {RESERVED_NAME_PREFIX:?} stand for the config file's cosign rules in verdicts",
                s.name
            ));
        }
        if !names.insert(s.name.clone()) {
            return Err(format!(
                "multiple oci trust policy statements use the same name {:?}, statement names must be unique",
                s.name
            ));
        }
        let level = validate_level(&s.name, &s.signature_verification)?;
        let verify_timestamp = match s.signature_verification.verify_timestamp.as_str() {
            "" | "always" => VerifyTimestamp::Always,
            "afterCertExpiry" => VerifyTimestamp::AfterCertExpiry,
            other => {
                return Err(format!(
                    "trust policy statement {:?} has invalid signatureVerification.verifyTimestamp {other:?}, valid values are \"always\" and \"afterCertExpiry\"",
                    s.name
                ))
            }
        };
        let (trust_stores, trusted_identities) = if level.is_skip() {
            if !s.trust_stores.is_empty() || !s.trusted_identities.is_empty() {
                return Err(format!(
                    "oci trust policy statement {:?} is set to skip signature verification but configured with trust stores and/or trusted identities, remove them if signature verification needs to be skipped",
                    s.name
                ));
            }
            (Vec::new(), TrustedIdentities::Subjects(Vec::new()))
        } else {
            if s.trust_stores.is_empty() || s.trusted_identities.is_empty() {
                return Err(format!(
                    "oci trust policy statement {:?} is either missing trust stores or trusted identities, both must be specified",
                    s.name
                ));
            }
            (
                validate_trust_stores(&s.name, &s.trust_stores)?,
                validate_identities(&s.name, &s.trusted_identities)?,
            )
        };
        let (registry_scopes, is_wildcard) = validate_scopes(
            &format!("trust policy statement {:?}", s.name),
            &s.registry_scopes,
        )?;
        for scope in registry_scopes
            .iter()
            .map(String::as_str)
            .chain(is_wildcard.then_some("*"))
        {
            if !scopes_seen.insert(scope.to_string()) {
                return Err(format!(
                    "registry scope {scope:?} is present in multiple oci trust policy statements, one registry scope value can only be associated with one statement"
                ));
            }
        }
        statements.push(TrustPolicyStatement {
            name: s.name,
            registry_scopes,
            is_wildcard,
            level,
            verify_timestamp,
            trust_stores,
            trusted_identities,
        });
    }
    Ok(statements)
}

fn validate_level(name: &str, sv: &RawSignatureVerification) -> Result<VerificationLevel, String> {
    let Some(level_name) = LevelName::from_name(&sv.level) else {
        return Err(format!(
            "trust policy statement {name:?} uses invalid signatureVerification level {:?}, supported values are \"strict\", \"permissive\", \"audit\" and \"skip\"",
            sv.level
        ));
    };
    let mut level = VerificationLevel::new(level_name);
    if sv.overrides.is_empty() {
        return Ok(level);
    }
    if level_name == LevelName::Skip {
        return Err(format!(
            "signature verification level \"skip\" can not be overridden in trust policy statement {name:?}"
        ));
    }
    // Sorted, so that the first reported problem does not depend on hash order.
    let mut entries: Vec<_> = sv.overrides.iter().collect();
    entries.sort();
    for (check_name, action_name) in entries {
        let Some(check) = Check::from_name(check_name) else {
            return Err(format!(
                "verification type {check_name:?} in custom signature verification of trust policy statement {name:?} is not supported, supported values are \"authenticity\", \"authenticTimestamp\", \"expiry\" and \"revocation\""
            ));
        };
        if check == Check::Integrity {
            return Err(
                "\"integrity\" verification can not be overridden in custom signature verification"
                    .into(),
            );
        }
        let Some(action) = Action::from_name(action_name) else {
            return Err(format!(
                "verification action {action_name:?} in custom signature verification of trust policy statement {name:?} is not supported, supported values are \"enforce\", \"log\" and \"skip\""
            ));
        };
        if action == Action::Skip && check != Check::Revocation {
            return Err(format!(
                "{:?} verification can not be skipped in custom signature verification of trust policy statement {name:?}",
                check.name()
            ));
        }
        level = level.with_override(check, action);
    }
    Ok(level)
}

fn validate_trust_stores(name: &str, values: &[String]) -> Result<Vec<TrustStoreRef>, String> {
    let mut out: Vec<TrustStoreRef> = Vec::new();
    for value in values {
        let Some((ty, store)) = value.split_once(':') else {
            return Err(format!(
                "oci trust policy statement {name:?} has malformed trust store value {value:?}. The required format is <TrustStoreType>:<TrustStoreName>"
            ));
        };
        let Some(store_type) = StoreType::from_name(ty) else {
            return Err(format!(
                "oci trust policy statement {name:?} uses an unsupported trust store type {ty:?} in trust store value {value:?}"
            ));
        };
        if !is_valid_store_name(store) {
            return Err(format!(
                "oci trust policy statement {name:?} uses an unsupported trust store name {store:?} in trust store value {value:?}. Named store name needs to follow [a-zA-Z0-9_.-]+ format"
            ));
        }
        let r = TrustStoreRef {
            store_type,
            name: store.to_string(),
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

fn validate_identities(name: &str, values: &[String]) -> Result<TrustedIdentities, String> {
    if values.iter().any(|v| v.is_empty()) {
        return Err(format!(
            "oci trust policy statement {name:?} has an empty trusted identity"
        ));
    }
    if values.iter().any(|v| v == "*") {
        if values.len() > 1 {
            return Err(format!(
                "oci trust policy statement {name:?} uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"
            ));
        }
        return Ok(TrustedIdentities::Any);
    }
    let mut subjects: Vec<(String, DistinguishedName)> = Vec::new();
    for identity in values {
        let Some((prefix, value)) = identity.split_once(':') else {
            return Err(format!(
                "oci trust policy statement {name:?} has trusted identity {identity:?} missing separator"
            ));
        };
        if prefix != "x509.subject" {
            continue;
        }
        if value.trim().is_empty() {
            return Err(format!(
                "oci trust policy statement {name:?} has trusted identity {identity:?} without an identity value"
            ));
        }
        let dn = DistinguishedName::parse(value).map_err(|e| {
            format!("oci trust policy statement {name:?} has trusted identity {identity:?} with invalid identity value: {e}")
        })?;
        subjects.push((identity.clone(), dn));
    }
    for (i, (a_text, a)) in subjects.iter().enumerate() {
        for (j, (b_text, b)) in subjects.iter().enumerate() {
            if i != j && a.is_subset_of(b) {
                return Err(format!(
                    "oci trust policy statement {name:?} has overlapping x509 trustedIdentities, {a_text:?} overlaps with {b_text:?}"
                ));
            }
        }
    }
    Ok(TrustedIdentities::Subjects(
        subjects.into_iter().map(|(_, dn)| dn).collect(),
    ))
}

/// Registry scopes written as trust-policy statements write them, validated and canonicalised
/// the same way: for vouch's own per-scope settings beside the trust policy (platforms, cosign),
/// so one image selects entries of every kind by one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryScopes {
    scopes: Vec<String>,
    wildcard: bool,
}

impl RegistryScopes {
    /// No scope at all: matches nothing (for defaults that apply when no entry does).
    pub const EMPTY: RegistryScopes = RegistryScopes {
        scopes: Vec::new(),
        wildcard: false,
    };

    /// Validate `scopes` as notation validates a statement's; `owner` names the entry in errors
    /// (e.g. `platforms entry 2`).
    pub fn parse(owner: &str, scopes: &[String]) -> Result<Self, String> {
        let (scopes, wildcard) = validate_scopes(owner, scopes)?;
        Ok(Self { scopes, wildcard })
    }

    /// The scopes, canonical, with `"*"` for the wildcard.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .map(String::as_str)
            .chain(self.wildcard.then_some("*"))
    }

    /// The entry for `scope` (an image's `registry/repository`): the one listing it, else the
    /// `"*"` entry, as [`TrustPolicy::statement_for`] selects statements.
    pub fn select<'a, T>(
        entries: &'a [T],
        scopes_of: impl Fn(&T) -> &RegistryScopes,
        scope: &str,
    ) -> Option<&'a T> {
        entries
            .iter()
            .find(|e| scopes_of(e).scopes.iter().any(|s| s == scope))
            .or_else(|| entries.iter().find(|e| scopes_of(e).wildcard))
    }

    /// Refuse a scope listed by two entries (notation's rule for statements).
    pub fn check_disjoint<'a>(
        all: impl IntoIterator<Item = &'a RegistryScopes>,
    ) -> Result<(), String> {
        let mut seen = HashSet::new();
        for scope in all.into_iter().flat_map(|s| s.iter()) {
            if !seen.insert(scope) {
                return Err(format!(
                    "registry scope {scope:?} is present in multiple entries, one registry scope value can only be associated with one entry"
                ));
            }
        }
        Ok(())
    }
}

fn validate_scopes(owner: &str, scopes: &[String]) -> Result<(Vec<String>, bool), String> {
    if scopes.is_empty() {
        return Err(format!(
            "{owner} has zero registry scopes, it must specify registry scopes with at least one value"
        ));
    }
    if scopes.iter().any(|s| s == "*") {
        if scopes.len() > 1 {
            return Err(format!(
                "{owner} uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values"
            ));
        }
        return Ok((Vec::new(), true));
    }
    for scope in scopes {
        if !is_valid_scope(scope) {
            return Err(format!(
                "registry scope {scope:?} is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout"
            ));
        }
    }
    let mut unique: Vec<String> = Vec::new();
    for s in scopes.iter().map(|s| canonical_scope(s)) {
        if unique.contains(&s) {
            return Err(format!(
                "registry scope {s:?} is present in multiple oci trust policy statements, one registry scope value can only be associated with one statement"
            ));
        }
        unique.push(s);
    }
    Ok((unique, false))
}

/// A scope with its registry host spelled as image references are normalised
/// ([`crate::reference::canonical_registry`]: Docker Hub's aliases are `docker.io`), so that every
/// spelling of a host selects the same statement. A scope whose host cannot be canonicalised
/// is kept as written (no image can then match it).
fn canonical_scope(scope: &str) -> String {
    let Some((domain, repository)) = scope.split_once('/') else {
        return scope.to_string();
    };
    match crate::reference::canonical_registry(domain) {
        Ok(d) => format!("{d}/{repository}"),
        Err(_) => scope.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statements: &str) -> String {
        format!(r#"{{"version":"1.0","trustPolicies":[{statements}]}}"#)
    }

    const OK: &str = r#"{"name":"a","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}"#;

    #[test]
    fn exact_scope_beats_wildcard() {
        let p = TrustPolicy::from_json(
            doc(&format!(
                r#"{OK},{{"name":"b","registryScopes":["localhost:5000/app"],"signatureVerification":{{"level":"audit"}},"trustStores":["ca:x"],"trustedIdentities":["*"]}}"#
            ))
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.statement_for("localhost:5000/app").unwrap().name, "b");
        assert_eq!(p.statement_for("localhost:5000/other").unwrap().name, "a");
    }

    /// Scopes are compared in the canonical host spelling image references use, so a scope
    /// written `LOCALHOST:05000/app` is the statement of `localhost:5000/app`, and two
    /// spellings of one scope in two statements are the duplicate they are.
    #[test]
    fn scopes_are_matched_by_canonical_host() {
        let b = |scope: &str| {
            format!(
                r#"{{"name":"b","registryScopes":["{scope}"],"signatureVerification":{{"level":"audit"}},"trustStores":["ca:x"],"trustedIdentities":["*"]}}"#
            )
        };
        let p =
            TrustPolicy::from_json(doc(&format!("{OK},{}", b("LOCALHOST:05000/app"))).as_bytes())
                .unwrap();
        assert_eq!(p.statement_for("localhost:5000/app").unwrap().name, "b");
        let p = TrustPolicy::from_json(doc(&format!("{OK},{}", b("127.1:5000/app"))).as_bytes())
            .unwrap();
        assert_eq!(p.statement_for("127.0.0.1:5000/app").unwrap().name, "b");
        for alias in [
            "registry-1.docker.io/library/nginx",
            "index.docker.io/library/nginx",
        ] {
            let p = TrustPolicy::from_json(doc(&format!("{OK},{}", b(alias))).as_bytes()).unwrap();
            assert_eq!(
                p.statement_for("docker.io/library/nginx").unwrap().name,
                "b"
            );
        }
        let p = TrustPolicy::from_json(
            doc(&format!("{OK},{}", b("registry.example:443/app"))).as_bytes(),
        )
        .unwrap();
        assert_eq!(p.statement_for("registry.example/app").unwrap().name, "b");
        let twice = doc(&format!(
            r#"{},{{"name":"c","registryScopes":["localhost:5000/app","LOCALHOST:5000/app"],"signatureVerification":{{"level":"audit"}},"trustStores":["ca:x"],"trustedIdentities":["*"]}}"#,
            OK
        ));
        assert!(TrustPolicy::from_json(twice.as_bytes()).is_err());
    }

    #[test]
    fn no_wildcard_means_no_statement() {
        let p = TrustPolicy::from_json(
            doc(r#"{"name":"b","registryScopes":["r.example/app"],"signatureVerification":{"level":"skip"}}"#).as_bytes(),
        )
        .unwrap();
        assert!(p.statement_for("r.example/other").is_none());
        assert!(p.statement_for("r.example/app").unwrap().level.is_skip());
    }

    #[test]
    fn rejects_bad_documents_with_notation_messages() {
        let cases = [
            (r#"{"version":"2.0","trustPolicies":[]}"#.to_string(), "unsupported version"),
            (r#"{"version":"1.0","trustPolicies":[]}"#.to_string(), "zero trust policy statements"),
            (doc(&OK.replace(r#""level":"strict""#, r#""level":"paranoid""#)), "invalid signatureVerification level"),
            (doc(&OK.replace(r#""level":"strict""#, r#""level":"strict","override":{"revocation":"never"}"#)), "verification action \"never\""),
            (doc(&OK.replace(r#""level":"strict""#, r#""level":"strict","override":{"expiry":"skip"}"#)), "can not be skipped"),
            (doc(&OK.replace(r#""level":"strict""#, r#""level":"skip""#)), "is set to skip signature verification but configured"),
            (doc(&OK.replace(r#""ca:e2e""#, r#""tsx:e2e""#)), "unsupported trust store type \"tsx\""),
            (doc(&OK.replace(r#"["*"]}"#, r#"["x509.subject: C=US, ST=WA, O=N", "x509.subject: C=US, ST=WA, O=N, CN=x"]}"#)), "has overlapping x509 trustedIdentities"),
            (doc(&OK.replace(r#""registryScopes":["*"]"#, r#""registryScopes":["localhost:5000/app:v1"]"#)), "is not valid"),
            (doc(&OK.replace(r#""registryScopes":["*"]"#, r#""registryScopes":["localhost:5000/App"]"#)), "is not valid"),
            (doc(&OK.replace(r#""registryScopes":["*"]"#, r#""registryScopes":["app"]"#)), "is not valid"),
            (doc(&OK.replace(r#""name":"a","#, "")), "missing a name"),
            // The gate's stand-in statements for cosign rules are named so.
            (doc(&OK.replace(r#""name":"a""#, r#""name":"cosign[0]""#)), "name \"cosign[0]\" is reserved"),
            (doc(&OK.replace(r#""name":"a""#, r#""name":"cosign[x""#)), "is reserved"),
        ];
        for (json, want) in cases {
            let err = TrustPolicy::from_json(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}\n => {err}\n wanted {want}");
        }
        let err = TrustPolicy::from_json(b"{not json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("malformed trust policy"), "{err}");
    }

    #[test]
    fn duplicate_trust_stores_are_tolerated_and_other_identity_prefixes_ignored() {
        let p = TrustPolicy::from_json(
            doc(&OK.replace(r#""ca:e2e""#, r#""ca:e2e","ca:e2e""#).replace(
                r#"["*"]}"#,
                r#"["x509.subject: C=US, ST=WA, O=N", "x509.other: foo"]}"#,
            ))
            .as_bytes(),
        )
        .unwrap();
        let s = &p.statements()[0];
        assert_eq!(s.trust_stores.len(), 1);
        assert!(matches!(&s.trusted_identities, TrustedIdentities::Subjects(v) if v.len() == 1));
    }
}
