//! Why a token or a grant was refused.

use super::kinds::{Access, SandboxKind};
use crate::keyring::WindowViolation;

/// Why a token or a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// Not a token of this format, or a member is missing or of the wrong type.
    #[error("malformed capability: {0}")]
    Malformed(String),
    /// A grant path that cannot be reasoned about.
    #[error("grant `{access}` path {path:?}: {why}")]
    BadPath {
        /// The list.
        access: Access,
        /// The path (shortened).
        path: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Link 0 names a key the verifier's keyring does not hold.
    #[error("issued under key {key_id}, which the keyring does not hold")]
    UnknownIssuer {
        /// The key id.
        key_id: String,
    },
    /// The issuer key was not valid when the capability was issued.
    #[error("issuer key {key_id} was not valid at issuance: {violation}")]
    IssuerKeyNotValid {
        /// The key id.
        key_id: String,
        /// How.
        violation: WindowViolation,
    },
    /// A link's signature does not verify (a forged or edited token).
    #[error("link {link}: signature does not verify")]
    BadSignature {
        /// 0 = the issuance.
        link: usize,
    },
    /// A link does not follow the one before it.
    #[error("link {link}: `prev` is not the hash of link {}", link - 1)]
    BrokenLink {
        /// The link.
        link: usize,
    },
    /// The proof key is not the last link's `next_key`.
    #[error("proof does not match the last link's key")]
    BadProof,
    /// An attenuation names a path its predecessor does not grant.
    #[error(
        "link {link} widens the capability: `{access}` {path:?} is not within the grants before it"
    )]
    Widened {
        /// The link.
        link: usize,
        /// The list.
        access: Access,
        /// The path.
        path: String,
    },
    /// An attenuation turns the network on.
    #[error("link {link} widens the capability: network access that was not granted")]
    NetWidened {
        /// The link.
        link: usize,
    },
    /// An attenuation asks for a weaker sandbox than the link before it.
    #[error("link {link} widens the capability: sandbox `{to}` where `{from}` was required")]
    SandboxWidened {
        /// The link.
        link: usize,
        /// The sandbox before.
        from: SandboxKind,
        /// The one asked for.
        to: SandboxKind,
    },
    /// An exec grant overlaps a write grant.
    #[error("grant `exec` {exec:?} overlaps `write` {write:?}: what a command may write it may never run (write and exec grants must be disjoint)")]
    WriteExec {
        /// The exec path.
        exec: String,
        /// The write path.
        write: String,
    },
    /// An attenuation extends the expiry.
    #[error("link {link} extends the expiry to {to}, past {from}")]
    Extended {
        /// The link.
        link: usize,
        /// The earlier expiry.
        from: String,
        /// The later one.
        to: String,
    },
    /// Past its expiry.
    #[error("capability {id} expired at {at}")]
    Expired {
        /// The capability id.
        id: String,
        /// `not_after`.
        at: String,
    },
}

pub(super) fn bad(what: impl Into<String>) -> CapabilityError {
    CapabilityError::Malformed(what.into())
}
