//! `pullCredentials: pod-only`: proof that a pod's own credentials can read an image before a
//! verdict obtained with anyone's is used for it. The proof is a manifest HEAD by digest (GET
//! when HEAD is refused) with the pod's credentials, kept briefly per (credential identity,
//! registry, repository, digest): the kubelet could not pull what the pod cannot read.

use std::time::{Duration, Instant};

use crate::reference::ImageReference;
use crate::registry::{RegistryClient, RegistryError};

/// How long a successful read proof stands (a revoked credential stops counting after this).
pub const PROOF_TTL: Duration = Duration::from_secs(60);
/// Most proofs kept.
pub const MAX_PROOFS: u64 = 100_000;

/// (credential identity, registry, repository, digest).
type ProofKey = (String, String, String, String);

/// Recent read proofs.
pub struct ReadProofs {
    proven: moka::future::Cache<ProofKey, ()>,
}

impl Default for ReadProofs {
    fn default() -> Self {
        Self {
            proven: moka::future::Cache::builder()
                .max_capacity(MAX_PROOFS)
                .time_to_live(PROOF_TTL)
                .build(),
        }
    }
}

impl ReadProofs {
    /// Prove that `registry` (a client carrying the pod's credentials, no fallback) can read
    /// `image`'s manifest `digest`, by `due`. A refusal, a missing manifest and an unreachable
    /// registry are all errors; only success is remembered.
    pub async fn prove(
        &self,
        registry: &RegistryClient,
        image: &ImageReference,
        digest: &str,
        due: Instant,
    ) -> Result<(), RegistryError> {
        let key = (
            registry.credential_identity(image),
            image.registry().to_string(),
            image.repository().to_string(),
            digest.to_string(),
        );
        if self.proven.contains_key(&key) {
            return Ok(());
        }
        let pinned = ImageReference::parse(&format!(
            "{}/{}@{digest}",
            image.registry(),
            image.repository()
        ))
        .map_err(|e| RegistryError::Malformed {
            host: image.registry().to_string(),
            what: "image reference".into(),
            reason: e.to_string(),
        })?;
        match tokio::time::timeout_at(due.into(), registry.resolve_digest(&pinned)).await {
            Ok(Ok(_)) => {
                self.proven.insert(key, ()).await;
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RegistryError::Unreachable {
                host: image.registry_endpoint().to_string(),
                reason: "reading the manifest with the pod's credentials did not finish in time"
                    .into(),
            }),
        }
    }
}
