//! Certificate path building at a chosen time, as Go's `Certificate.Verify` does it for the
//! chains notation verifies that way (a timestamping authority's, tspclient-go `SignedToken.Verify`):
//! from a leaf through candidate intermediates to one of the given roots, each certificate valid
//! at that time, issued (names and signature) by the next, within its issuer's CA and
//! path-length constraints, with an extended key usage allowed along the whole path.
//!
//! Written here because the certificates are already parsed into [`Certificate`] with aws-lc-rs
//! signatures, and no path-building crate verifies at a chosen time with an EKU constraint over
//! them. The search is bounded as Go bounds it, since a hostile token chooses the candidates: a
//! path never holds two certificates of the same subject and key, at most
//! [`MAX_SIGNATURE_CHECKS`] signatures are checked in all, and a path is at most [`MAX_DEPTH`]
//! long. Not done (no TSA chain in the field needs them): authority-key-identifier matching of
//! candidates, name constraints, policy processing.

use time::OffsetDateTime;

use super::Certificate;

/// Go's `maxChainSignatureChecks`: the whole search checks at most this many signatures.
pub const MAX_SIGNATURE_CHECKS: usize = 100;

/// Longest path searched (leaf, intermediates, root).
pub const MAX_DEPTH: usize = 8;

/// What the path's certificates must allow, by their extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// RFC 3161 timestamping.
    TimeStamping,
}

impl Purpose {
    fn allowed_by(self, cert: &Certificate) -> bool {
        match self {
            Purpose::TimeStamping => cert.permits_time_stamping(),
        }
    }
}

/// The path from `leaf` to one of `roots` at `at`, leaf first and ending with the root, taking
/// intermediates from `intermediates`; else Go's error (`x509: certificate signed by unknown
/// authority`, `x509: certificate has expired or is not yet valid: …`,
/// `x509: certificate specifies an incompatible key usage`, …).
pub fn build_path(
    leaf: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    at: OffsetDateTime,
    purpose: Purpose,
) -> Result<Vec<Certificate>, String> {
    if leaf.unhandled_critical_extension().is_some() {
        return Err("x509: unhandled critical extension".into());
    }
    valid_at(leaf, at)?;
    if roots.iter().any(|r| r.der() == leaf.der()) {
        return Ok(vec![leaf.clone()]);
    }
    let mut search = Search {
        intermediates,
        roots,
        at,
        purpose,
        checks: 0,
        hint: None,
        incompatible_usage: false,
    };
    let mut path = vec![leaf];
    if search.extend(&mut path) {
        return Ok(path.into_iter().cloned().collect());
    }
    if search.checks > MAX_SIGNATURE_CHECKS {
        return Err(
            "x509: signature check attempts limit reached while verifying certificate chain".into(),
        );
    }
    if search.incompatible_usage {
        return Err("x509: certificate specifies an incompatible key usage".into());
    }
    Err(match search.hint {
        Some((e, subject)) => format!(
            "x509: certificate signed by unknown authority (possibly because of {e:?} while trying to verify candidate authority certificate {subject:?})"
        ),
        None => "x509: certificate signed by unknown authority".into(),
    })
}

struct Search<'a> {
    intermediates: &'a [Certificate],
    roots: &'a [Certificate],
    at: OffsetDateTime,
    purpose: Purpose,
    /// Signatures checked so far.
    checks: usize,
    /// The first reason a candidate issuer was refused, for the error.
    hint: Option<(String, String)>,
    /// A path was found but a certificate of it does not allow the purpose.
    incompatible_usage: bool,
}

impl<'a> Search<'a> {
    /// Extend `path` (leaf first) to a root, depth first, roots before intermediates as Go
    /// tries them.
    fn extend(&mut self, path: &mut Vec<&'a Certificate>) -> bool {
        let Some(&child) = path.last() else {
            return false;
        };
        if path.len() >= MAX_DEPTH {
            return false;
        }
        for root in self.roots {
            if !self.accepts(path, child, root) {
                continue;
            }
            path.push(root);
            if path.iter().all(|c| self.purpose.allowed_by(c)) {
                return true;
            }
            self.incompatible_usage = true;
            path.pop();
        }
        for inter in self.intermediates {
            if !self.accepts(path, child, inter) {
                continue;
            }
            path.push(inter);
            if self.extend(path) {
                return true;
            }
            path.pop();
        }
        false
    }

    /// Go's `considerCandidate`: whether `issuer` may stand above `child` at the end of
    /// `path`. Each call that gets as far as the signature spends one check of the budget.
    fn accepts(
        &mut self,
        path: &[&Certificate],
        child: &Certificate,
        issuer: &Certificate,
    ) -> bool {
        if child.issuer_der() != issuer.subject_der()
            || path.iter().any(|c| c.same_subject_and_key(issuer))
            || self.checks > MAX_SIGNATURE_CHECKS
        {
            return false;
        }
        self.checks += 1;
        if self.checks > MAX_SIGNATURE_CHECKS {
            return false;
        }
        let intermediates_below = path.len() - 1;
        let check = child
            .check_signature_from(issuer)
            .and_then(|()| valid_at(issuer, self.at))
            .and_then(|()| match issuer.path_len_constraint() {
                Some(max) if intermediates_below > max as usize => {
                    Err("x509: too many intermediates for path length constraint".into())
                }
                _ => Ok(()),
            });
        match check {
            Ok(()) => true,
            Err(e) => {
                self.hint
                    .get_or_insert_with(|| (e, issuer.subject().to_string()));
                false
            }
        }
    }
}

/// Go's validity error for a certificate of the path at `at` (times in RFC 3339, whole
/// seconds, as Go prints them).
fn valid_at(cert: &Certificate, at: OffsetDateTime) -> Result<(), String> {
    let rfc3339 = |t: OffsetDateTime| {
        let fmt =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        t.to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .unwrap_or_else(|_| t.to_string())
    };
    if at < cert.not_before() {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {}",
            rfc3339(at),
            rfc3339(cert.not_before())
        ));
    }
    if at > cert.not_after() {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {}",
            rfc3339(at),
            rfc3339(cert.not_after())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SerialNumber,
    };

    fn named(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn ca_params(cn: &str, serial: u64) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = named(cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        p.serial_number = Some(SerialNumber::from(serial));
        p
    }

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).unwrap()
    }

    /// The review's attack: many self-issued CAs of one subject and one key (serials differ),
    /// each of which "issues" every other, and a leaf under that subject that reaches no root.
    /// Unbounded, the search tries every ordering (about n^8 signatures); bounded as Go bounds
    /// it, it ends after at most 100 signature checks with Go's error.
    #[test]
    fn a_thicket_of_same_key_cas_is_searched_within_the_budget() {
        let key = KeyPair::generate().unwrap();
        let thicket: Vec<Certificate> = (1..=24)
            .map(|serial| cert(ca_params("X", serial).self_signed(&key).unwrap().der()))
            .collect();
        let x = ca_params("X", 1);
        let issuer = rcgen::Issuer::from_params(&x, &key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name = named("leaf");
        let leaf = cert(leaf.signed_by(&leaf_key, &issuer).unwrap().der());
        let root_key = KeyPair::generate().unwrap();
        let root = cert(ca_params("Root", 1).self_signed(&root_key).unwrap().der());
        let now = OffsetDateTime::now_utc();
        let err = build_path(&leaf, &thicket, &[root], now, Purpose::TimeStamping).unwrap_err();
        assert!(
            err.starts_with("x509: certificate signed by unknown authority"),
            "{err}"
        );
        // Distinct keys under one subject: each signature verifies under one key only, and the
        // budget still ends a search that cannot succeed.
        let many: Vec<Certificate> = (1..=200)
            .map(|serial| {
                let k = KeyPair::generate().unwrap();
                cert(ca_params("X", serial).self_signed(&k).unwrap().der())
            })
            .collect();
        let err = build_path(&leaf, &many, &[], now, Purpose::TimeStamping).unwrap_err();
        assert_eq!(
            err,
            "x509: signature check attempts limit reached while verifying certificate chain"
        );
    }

    #[test]
    fn a_path_reaches_the_root_through_the_right_intermediate() {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("Root", 1);
        let root = cert(root_params.self_signed(&root_key).unwrap().der());
        let root_issuer = rcgen::Issuer::from_params(&root_params, &root_key);
        let mid_key = KeyPair::generate().unwrap();
        let mid_params = ca_params("Mid", 2);
        let mid = cert(mid_params.signed_by(&mid_key, &root_issuer).unwrap().der());
        // A decoy with the intermediate's name and another key comes first.
        let decoy = cert(
            ca_params("Mid", 3)
                .self_signed(&KeyPair::generate().unwrap())
                .unwrap()
                .der(),
        );
        let mid_issuer = rcgen::Issuer::from_params(&mid_params, &mid_key);
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name = named("leaf");
        let leaf = cert(
            leaf.signed_by(&KeyPair::generate().unwrap(), &mid_issuer)
                .unwrap()
                .der(),
        );
        let now = OffsetDateTime::now_utc();
        let path = build_path(
            &leaf,
            &[decoy, mid.clone()],
            std::slice::from_ref(&root),
            now,
            Purpose::TimeStamping,
        )
        .unwrap();
        let subjects: Vec<&str> = path.iter().map(|c| c.subject()).collect();
        assert_eq!(subjects, ["CN=leaf", "CN=Mid", "CN=Root"]);
        // At a time outside the intermediate's validity there is no path.
        let err = build_path(
            &leaf,
            &[mid],
            &[root],
            mid_validity_end(),
            Purpose::TimeStamping,
        )
        .unwrap_err();
        assert!(err.starts_with("x509: certificate"), "{err}");
    }

    #[test]
    fn a_leaf_with_an_unknown_critical_extension_or_a_purpose_twice_is_refused() {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("Root", 1);
        let root = cert(root_params.self_signed(&root_key).unwrap().der());
        let issuer = rcgen::Issuer::from_params(&root_params, &root_key);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = named("tsa");
        let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
        ext.set_criticality(true);
        params.custom_extensions = vec![ext];
        let leaf = cert(
            params
                .signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
        );
        assert_eq!(leaf.unhandled_critical_extension(), Some("1.2.3.4.5"));
        let err = build_path(
            &leaf,
            &[],
            &[root],
            OffsetDateTime::now_utc(),
            Purpose::TimeStamping,
        )
        .unwrap_err();
        assert_eq!(err, "x509: unhandled critical extension");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = named("tsa");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::TimeStamping,
            rcgen::ExtendedKeyUsagePurpose::TimeStamping,
        ];
        let twice = cert(
            params
                .signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
        );
        assert_eq!(
            twice.time_stamping_only(),
            None,
            "Go counts the purpose twice"
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::TimeStamping];
        let once = cert(
            params
                .signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
        );
        assert!(once.time_stamping_only().is_some());
    }

    fn mid_validity_end() -> OffsetDateTime {
        // rcgen's default validity ends in 4096; a time past it is past every certificate here.
        time::macros::datetime!(4097-01-01 00:00 UTC)
    }
}
