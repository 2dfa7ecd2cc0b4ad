//! The Notary Project (Notation) verification rules: envelopes, certificates, trust stores,
//! trust policies and the verification-level matrix.
//!
//! This module knows nothing of registries or Kubernetes: it judges bytes it is given. The
//! registry side lives in [`crate::registry`]; the path from image to verdict in [`crate::gate`].

pub mod dn;
pub mod envelope;
pub mod level;
pub mod revocation;
pub mod signer;
pub mod timestamp;
pub mod trust_policy;
pub mod trust_store;
pub mod verifier;
pub mod x509;

/// The artifact type of Notation signatures in the referrers API.
pub const ARTIFACT_TYPE_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
