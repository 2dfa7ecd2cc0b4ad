//! The verification-level matrix as data, as notation-go writes it
//! (`verifier/trustpolicy/trustpolicy.go`: `LevelStrict` … `LevelSkip`).
//!
//! A level maps each of the five validations to an action. The verifier runs the checks and
//! asks this table what each outcome means; no other code branches on level names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The five validations of the Notation trust-policy specification, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    /// The envelope is well formed and its signature verifies with the leaf key.
    Integrity,
    /// The chain ends in a trust-store certificate and the leaf matches a trusted identity.
    Authenticity,
    /// The signing certificates were valid at signing time (now, without a timestamp).
    AuthenticTimestamp,
    /// The signature's own expiry has not passed.
    Expiry,
    /// No certificate of the signing chain is revoked.
    Revocation,
}

impl Check {
    /// All checks in evaluation order.
    pub const ALL: [Check; 5] = [
        Check::Integrity,
        Check::Authenticity,
        Check::AuthenticTimestamp,
        Check::Expiry,
        Check::Revocation,
    ];

    /// The name used in trust policies and in notation's messages.
    pub fn name(self) -> &'static str {
        match self {
            Check::Integrity => "integrity",
            Check::Authenticity => "authenticity",
            Check::AuthenticTimestamp => "authenticTimestamp",
            Check::Expiry => "expiry",
            Check::Revocation => "revocation",
        }
    }

    /// Parse a check name as written in an `override` block.
    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a failed check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A failure fails the signature.
    Enforce,
    /// A failure is recorded as a warning; verification goes on.
    Log,
    /// The check is not run.
    Skip,
}

impl Action {
    /// Parse an action as written in an `override` block.
    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "enforce" => Some(Action::Enforce),
            "log" => Some(Action::Log),
            "skip" => Some(Action::Skip),
            _ => None,
        }
    }
}

/// The four named levels of a trust-policy statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelName {
    /// Every validation enforced.
    Strict,
    /// Integrity and authenticity enforced; the rest logged.
    Permissive,
    /// Integrity enforced; the rest logged.
    Audit,
    /// Nothing verified; no signature is even fetched.
    Skip,
}

impl LevelName {
    /// Parse a level as written in `signatureVerification.level`.
    pub fn from_name(name: &str) -> Option<LevelName> {
        match name {
            "strict" => Some(LevelName::Strict),
            "permissive" => Some(LevelName::Permissive),
            "audit" => Some(LevelName::Audit),
            "skip" => Some(LevelName::Skip),
            _ => None,
        }
    }

    /// The name as written in trust policies.
    pub fn name(self) -> &'static str {
        match self {
            LevelName::Strict => "strict",
            LevelName::Permissive => "permissive",
            LevelName::Audit => "audit",
            LevelName::Skip => "skip",
        }
    }
}

impl fmt::Display for LevelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use Action::{Enforce as E, Log as L, Skip as S};

/// The specification's table: integrity, authenticity, authenticTimestamp, expiry, revocation.
const MATRIX: [(LevelName, [Action; 5]); 4] = [
    (LevelName::Strict, [E, E, E, E, E]),
    (LevelName::Permissive, [E, E, L, L, L]),
    (LevelName::Audit, [E, L, L, L, L]),
    (LevelName::Skip, [S, S, S, S, S]),
];

/// A statement's effective level: its named level with `override` entries applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationLevel {
    name: LevelName,
    actions: [Action; 5],
    overridden: bool,
}

impl VerificationLevel {
    /// The level as the matrix defines it.
    pub fn new(name: LevelName) -> Self {
        let actions = MATRIX
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .unwrap_or([E; 5]);
        Self {
            name,
            actions,
            overridden: false,
        }
    }

    /// Replace the action of one check (validated by the trust-policy loader).
    pub fn with_override(mut self, check: Check, action: Action) -> Self {
        self.actions[check.index()] = action;
        self.overridden = true;
        self
    }

    /// What a failure of `check` means at this level.
    pub fn action(&self, check: Check) -> Action {
        self.actions[check.index()]
    }

    /// The named level this one started from.
    pub fn name(&self) -> LevelName {
        self.name
    }

    /// Whether nothing is verified (no signatures are fetched).
    pub fn is_skip(&self) -> bool {
        self.name == LevelName::Skip
    }

    /// The level as reported: the name, or `custom` once overridden (as notation-go names it).
    pub fn label(&self) -> &'static str {
        if self.overridden {
            "custom"
        } else {
            self.name.name()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_specification() {
        let strict = VerificationLevel::new(LevelName::Strict);
        assert!(Check::ALL
            .iter()
            .all(|c| strict.action(*c) == Action::Enforce));
        let permissive = VerificationLevel::new(LevelName::Permissive);
        assert_eq!(permissive.action(Check::Authenticity), Action::Enforce);
        assert_eq!(permissive.action(Check::Expiry), Action::Log);
        let audit = VerificationLevel::new(LevelName::Audit);
        assert_eq!(audit.action(Check::Integrity), Action::Enforce);
        assert_eq!(audit.action(Check::Authenticity), Action::Log);
        let skip = VerificationLevel::new(LevelName::Skip);
        assert!(skip.is_skip());
        assert_eq!(skip.action(Check::Integrity), Action::Skip);
    }

    #[test]
    fn overrides_replace_single_entries_and_rename_the_level() {
        let l = VerificationLevel::new(LevelName::Strict).with_override(Check::Expiry, Action::Log);
        assert_eq!(l.action(Check::Expiry), Action::Log);
        assert_eq!(l.action(Check::Authenticity), Action::Enforce);
        assert_eq!(l.label(), "custom");
        assert_eq!(l.name(), LevelName::Strict);
    }
}
