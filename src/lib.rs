//! vouch keeps unproven container images out of Kubernetes clusters.
//!
//! For every image it resolves the tag to a digest, fetches the image's Notary Project
//! (Notation) signatures through the OCI referrers API, judges them against a Notation trust
//! policy and answers: as an admission webhook (`vouch serve`), as an audit report
//! (`vouch audit`) and as a CI gate (`vouch verify`). All three call one function,
//! [`gate::Gate::judge`].

pub mod admission;
pub mod audit;
pub mod cache;
pub mod certs;
pub mod config;
pub mod cosign;
pub mod demo;
pub mod escape;
pub mod files;
pub mod gate;
pub mod metrics;
pub mod notation;
pub mod platforms;
pub mod quarantine;
pub mod reference;
pub mod registry;
pub mod report;
pub mod server;
pub mod tenancy;
pub mod verdict;
pub mod yaml;
