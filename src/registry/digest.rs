//! A content digest held compactly: `sha256:<hex>` as its 32 bytes, anything else as written.
//!
//! Digests are the most repeated text in memory (every cached verdict has the image's and its
//! signature's), so they are stored as bytes and shown as the registry wrote them.
//!
//! Every digest that comes from the network is [`check`]ed first: it becomes part of request
//! URLs, cache keys and reports, so `sha256:../../x?` must never get that far.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An OCI content digest (`algorithm:encoded`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Digest {
    /// `sha256:` with 64 lower-case hex digits.
    Sha256([u8; 32]),
    /// Any other digest string, kept as written.
    Other(Box<str>),
}

impl Digest {
    /// The digest written as `s`. Never fails: a string that is not a canonical sha256 digest
    /// is kept as it is, so it shows (and compares) exactly as written.
    pub fn new(s: &str) -> Self {
        let mut bytes = [0u8; 32];
        match s.strip_prefix("sha256:") {
            // Upper-case hex is a different (non-canonical) string; keep it as written.
            Some(h)
                if !h.bytes().any(|b| b.is_ascii_uppercase())
                    && hex::decode_to_slice(h, &mut bytes).is_ok() =>
            {
                Digest::Sha256(bytes)
            }
            _ => Digest::Other(s.into()),
        }
    }
}

/// A digest string that is not one vouch can check and use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown} is not a valid digest: {reason}")]
pub struct DigestError {
    /// The string, escaped and shortened for a message.
    pub shown: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Check that `s` is `sha256:`, `sha384:` or `sha512:` followed by exactly the right number of
/// lower-case hex digits — the digests the OCI image spec registers and vouch can verify.
pub fn check(s: &str) -> Result<(), DigestError> {
    let fail = |reason| {
        let mut end = s.len().min(100);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        DigestError {
            shown: format!("{:?}", &s[..end]),
            reason,
        }
    };
    let (alg, hex) = s.split_once(':').ok_or_else(|| fail("no algorithm"))?;
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(fail("the algorithm is not sha256, sha384 or sha512")),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(fail(
            "the encoded part is not lower-case hex of the algorithm's length",
        ));
    }
    Ok(())
}

/// A digest cut to its algorithm and 12 characters (`sha256:0123456789ab`), for messages: the
/// whole string when it has no `:` (or is shorter).
pub fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(digest.len(), |i| i + 13);
    digest.get(..end).unwrap_or(digest)
}

/// serde: a digest string from the network, refused unless it passes [`check`].
pub fn checked<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Sha256(b) => {
                f.write_str("sha256:")?;
                let mut hex = [0u8; 64];
                // Cannot fail: the buffer is exactly twice the input.
                if hex::encode_to_slice(b, &mut hex).is_err() {
                    return Err(fmt::Error);
                }
                f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
            }
            Digest::Other(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl From<&str> for Digest {
    fn from(s: &str) -> Self {
        Digest::new(s)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        *self == Digest::new(other)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Digest::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_digests_are_stored_as_bytes_and_shown_as_written() {
        let text = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        let d = Digest::new(text);
        assert!(matches!(d, Digest::Sha256(_)));
        assert_eq!(d.to_string(), text);
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{text}\""));
        let back: Digest = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn only_well_formed_digests_pass_the_check() {
        let good = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        assert!(check(good).is_ok());
        assert!(check(&format!("sha512:{}", "ab".repeat(64))).is_ok());
        for bad in [
            "sha256:../../../../evil?x=#",
            "sha256:B8479DE3F88FB259A0A9EA82A5B2A052A1EF3C4EBBCFC61482D5AE4C831F8AF9",
            "sha256:b8479de3",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            "",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        let e = check("sha256:../x\u{1b}").unwrap_err();
        assert!(e.to_string().contains("is not a valid digest"), "{e}");
        // A descriptor from the network with a bad digest does not parse.
        let d: Result<crate::registry::Descriptor, _> = serde_json::from_str(
            r#"{"mediaType":"x","digest":"sha256:../../v2/other/blobs/x","size":1}"#,
        );
        assert!(d.unwrap_err().to_string().contains("not a valid digest"));
    }

    #[test]
    fn other_digests_are_kept_as_written() {
        for text in [
            "sha512:abcd",
            "sha256:B8479DE3F88FB259A0A9EA82A5B2A052A1EF3C4EBBCFC61482D5AE4C831F8AF9",
            "sha256:short",
            "",
        ] {
            let d = Digest::new(text);
            assert!(matches!(d, Digest::Other(_)), "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_ne!(
            Digest::new("sha256:B8479DE3F88FB259A0A9EA82A5B2A052A1EF3C4EBBCFC61482D5AE4C831F8AF9"),
            Digest::new("sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9")
        );
    }
}
