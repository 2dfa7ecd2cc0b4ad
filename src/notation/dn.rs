//! X.509 distinguished names as Notation compares them in `trustedIdentities`.
//!
//! notation-go parses the policy's DN with go-ldap's RFC 4514 parser and renders the leaf
//! certificate's subject with Go's `pkix.Name.String()` before parsing that too
//! (`internal/pkix/pkix.go`, `verifier/verifier.go#verifyX509TrustedIdentities`). The rules that
//! fall out of that, and that we write down here:
//! - attribute type names are case-sensitive; `S` is an alias of `ST`;
//! - multi-valued RDNs and repeated attribute types are rejected;
//! - `C`, `ST` and `O` are mandatory;
//! - a leaf subject carrying an attribute Go has no short name for (emailAddress, DC, …) is
//!   rendered as `oid=#hex`, which the parser refuses, so such a leaf never matches;
//! - matching is an order-free subset test with byte-identical values.

use std::collections::BTreeMap;
use std::fmt;

use x509_parser::x509::X509Name;

/// A parsed distinguished name: attribute type → value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistinguishedName {
    attributes: BTreeMap<String, String>,
}

/// Why a DN is not usable for identity matching.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnError {
    /// The text is not an RFC 4514 DN Notation accepts.
    #[error("distinguished name (DN) {dn:?} is not valid: {reason}")]
    Malformed {
        /// The DN as given.
        dn: String,
        /// What is wrong.
        reason: String,
    },
    /// One of C, ST, O is absent.
    #[error("distinguished name (DN) {dn:?} has no mandatory RDN attribute for {attribute:?}, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum")]
    MissingMandatory {
        /// The DN as given.
        dn: String,
        /// The missing attribute.
        attribute: &'static str,
    },
}

const MANDATORY: [&str; 3] = ["C", "ST", "O"];

/// Short names Go's `pkix.Name.String()` knows; anything else becomes `oid=#hex`.
const KNOWN_OIDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.11", "OU"),
    ("2.5.4.10", "O"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.5", "SERIALNUMBER"),
];

impl DistinguishedName {
    /// Parse a DN as written in a trust policy (`x509.subject: C=US, ST=WA, O=Notary`).
    pub fn parse(dn: &str) -> Result<Self, DnError> {
        let malformed = |reason: &str| DnError::Malformed {
            dn: dn.to_string(),
            reason: reason.to_string(),
        };
        if dn.contains("=#") {
            return Err(malformed(
                "BER-encoded (#hex) attribute values are not supported",
            ));
        }
        let mut attributes = BTreeMap::new();
        for rdn in split_rdns(dn).map_err(|r| malformed(&r))? {
            if rdn.len() > 1 {
                return Err(malformed("multi-valued RDNs are not supported"));
            }
            let Some((ty, value)) = rdn.into_iter().next() else {
                continue;
            };
            let ty = if ty == "S" { "ST".to_string() } else { ty };
            if attributes.contains_key(&ty) {
                return Err(malformed(&format!("attribute {ty:?} is repeated")));
            }
            attributes.insert(ty, value);
        }
        Self::require_mandatory(dn, attributes)
    }

    /// The DN of a certificate's subject, read the way notation reads the leaf.
    pub fn from_x509(name: &X509Name<'_>) -> Result<Self, DnError> {
        let rendered = go_style(name);
        let malformed = |reason: String| DnError::Malformed {
            dn: rendered.clone(),
            reason,
        };
        let mut attributes = BTreeMap::new();
        for rdn in name.iter() {
            for atv in rdn.iter() {
                let oid = atv.attr_type().to_id_string();
                let Some((_, short)) = KNOWN_OIDS.iter().find(|(o, _)| *o == oid) else {
                    return Err(malformed(format!("attribute {oid} has no short name")));
                };
                let value = atv
                    .as_str()
                    .map_err(|_| malformed(format!("attribute {short} is not a string")))?;
                if attributes
                    .insert(short.to_string(), value.to_string())
                    .is_some()
                {
                    return Err(malformed(format!("attribute {short} is repeated")));
                }
            }
        }
        Self::require_mandatory(&rendered, attributes)
    }

    fn require_mandatory(dn: &str, attributes: BTreeMap<String, String>) -> Result<Self, DnError> {
        for attribute in MANDATORY {
            if attributes.get(attribute).is_none_or(|v| v.is_empty()) {
                return Err(DnError::MissingMandatory {
                    dn: dn.to_string(),
                    attribute,
                });
            }
        }
        Ok(Self { attributes })
    }

    /// Whether every attribute of `self` appears in `other` with the same value.
    pub fn is_subset_of(&self, other: &DistinguishedName) -> bool {
        self.attributes
            .iter()
            .all(|(k, v)| other.attributes.get(k) == Some(v))
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Render a name as Go's `pkix.Name.String()` does, which is how notation names certificates in
/// its messages: the standard attributes in Go's fixed order (C, ST, L, STREET, POSTALCODE, O, OU,
/// CN, SERIALNUMBER) with several values of one type as one multi-valued RDN, other attributes as
/// `oid=#hex`, the whole sequence reversed and joined without spaces.
pub fn go_style(name: &X509Name<'_>) -> String {
    const ORDER: [&str; 9] = [
        "2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17", "2.5.4.10", "2.5.4.11", "2.5.4.3",
        "2.5.4.5",
    ];
    let atvs: Vec<_> = name.iter_attributes().collect();
    // Non-standard attributes come first in the sequence, so last in the string.
    let mut rdns: Vec<String> = atvs
        .iter()
        .filter(|a| !ORDER.contains(&a.attr_type().to_id_string().as_str()))
        .map(|a| {
            format!(
                "{}=#{}",
                a.attr_type().to_id_string(),
                hex::encode(a.as_slice())
            )
        })
        .collect();
    for oid in ORDER {
        let Some((_, short)) = KNOWN_OIDS.iter().find(|(o, _)| *o == oid) else {
            continue;
        };
        let mut values: Vec<String> = atvs
            .iter()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .map(|a| {
                format!(
                    "{short}={}",
                    escape_value(a.as_str().unwrap_or("<non-string>"))
                )
            })
            .collect();
        // Go keeps a single CommonName and SerialNumber (the last one).
        if matches!(oid, "2.5.4.3" | "2.5.4.5") && values.len() > 1 {
            values = values.split_off(values.len() - 1);
        }
        if !values.is_empty() {
            rdns.push(values.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let needs = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if needs {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 4514 split into RDNs of (type, value) pairs, with `\` escapes resolved and surrounding
/// spaces trimmed, as go-ldap's `ParseDN` does.
fn split_rdns(dn: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let mut rdns = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    let mut ty = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut pending_bytes: Vec<u8> = Vec::new();
    let bytes = dn.as_bytes();
    let mut i = 0;
    let flush_bytes = |value: &mut String, pending: &mut Vec<u8>| -> Result<(), String> {
        if !pending.is_empty() {
            let s = String::from_utf8(std::mem::take(pending))
                .map_err(|_| "escaped bytes are not UTF-8".to_string())?;
            value.push_str(&s);
        }
        Ok(())
    };
    let finish_atv = |ty: &mut String, value: &mut String, current: &mut Vec<(String, String)>| {
        let t = ty.trim().to_string();
        let v = value.trim().to_string();
        ty.clear();
        value.clear();
        if t.is_empty() {
            return Err("attribute type is empty".to_string());
        }
        if !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!("attribute type {t:?} is not valid"));
        }
        current.push((t, v));
        Ok(())
    };
    while i < bytes.len() {
        let c = bytes[i];
        if !in_value {
            match c {
                b'=' => in_value = true,
                b',' | b';' | b'+' => return Err("attribute without a value".into()),
                _ => {
                    let ch = dn[i..].chars().next().ok_or("bad character")?;
                    ty.push(ch);
                    i += ch.len_utf8();
                    continue;
                }
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                let next = bytes.get(i + 1).ok_or("dangling escape")?;
                if next.is_ascii_hexdigit()
                    && bytes.get(i + 2).is_some_and(|b| b.is_ascii_hexdigit())
                {
                    let hex = &dn[i + 1..i + 3];
                    pending_bytes.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                    i += 3;
                } else {
                    flush_bytes(&mut value, &mut pending_bytes)?;
                    let ch = dn[i + 1..].chars().next().ok_or("dangling escape")?;
                    // An escaped space must survive trimming; mark it with a private char.
                    value.push(if ch == ' ' { '\u{E000}' } else { ch });
                    i += 1 + ch.len_utf8();
                }
            }
            b',' | b';' | b'+' => {
                flush_bytes(&mut value, &mut pending_bytes)?;
                finish_atv(&mut ty, &mut value, &mut current)?;
                in_value = false;
                if c != b'+' {
                    rdns.push(std::mem::take(&mut current));
                }
                i += 1;
            }
            _ => {
                flush_bytes(&mut value, &mut pending_bytes)?;
                let ch = dn[i..].chars().next().ok_or("bad character")?;
                value.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if in_value {
        flush_bytes(&mut value, &mut pending_bytes)?;
        finish_atv(&mut ty, &mut value, &mut current)?;
        rdns.push(current);
    } else if !ty.trim().is_empty() {
        return Err(format!("attribute {:?} has no value", ty.trim()));
    } else if !rdns.is_empty() || !current.is_empty() {
        return Err("trailing separator".into());
    }
    for rdn in &mut rdns {
        for (_, v) in rdn.iter_mut() {
            *v = v.replace('\u{E000}', " ");
        }
    }
    Ok(rdns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_any_order_with_alias_and_spaces() {
        let a = DistinguishedName::parse("C=US, ST=WA, O=Notary").unwrap();
        let b = DistinguishedName::parse("O=Notary;S=WA ,C=US").unwrap();
        assert_eq!(a, b);
        let leaf = DistinguishedName::parse("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US").unwrap();
        assert!(a.is_subset_of(&leaf));
        assert!(!leaf.is_subset_of(&a));
    }

    #[test]
    fn values_and_type_names_are_case_sensitive() {
        let leaf = DistinguishedName::parse("CN=e2e,O=Notary,ST=WA,C=US").unwrap();
        let lower = DistinguishedName::parse("C=US, ST=WA, O=notary").unwrap();
        assert!(!lower.is_subset_of(&leaf));
        let err = DistinguishedName::parse("c=US, ST=WA, O=Notary").unwrap_err();
        assert!(matches!(
            err,
            DnError::MissingMandatory { attribute: "C", .. }
        ));
    }

    #[test]
    fn escapes_are_resolved() {
        let dn = DistinguishedName::parse(r"C=US, ST=WA, O=Acme\, Inc.").unwrap();
        let other = DistinguishedName::parse(r"C=US, ST=WA, O=Acme\2C Inc.").unwrap();
        assert_eq!(dn, other);
        assert_eq!(dn.attributes["O"], "Acme, Inc.");
    }

    #[test]
    fn rejects_what_notation_rejects() {
        for bad in [
            "C=US+ST=WA, O=Notary",
            "C=US, ST=WA, O=Notary, O=Other",
            "C=US, ST=WA, O=#0403414243",
            "C=US, ST=WA, O",
            "C=US,, ST=WA, O=N",
        ] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
        let err = DistinguishedName::parse(" CN=e2e,L=Seattle,ST=WA,C=US").unwrap_err();
        assert_eq!(
            err.to_string(),
            "distinguished name (DN) \" CN=e2e,L=Seattle,ST=WA,C=US\" has no mandatory RDN attribute for \"O\", it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
        );
    }
}
