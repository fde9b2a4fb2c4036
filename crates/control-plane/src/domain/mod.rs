//! The domain: who may do what, and the records that say so. No HTTP here: the routes
//! (`crate::http`) read requests into these types and turn their outcomes into answers; the
//! shared state (`crate::shared`) holds the registries across requests.
//!
//! - [`agents`]: the agent registry (tokens, expiry, retired tokens, SPIFFE IDs) and the
//!   records of an agent's lifecycle.
//! - [`brokers`]: registered execution brokers, their keys and tokens, their records.
//! - [`capabilities`]: issuance under Cedar, the checks at use, revocation, standing, and
//!   brokers' execution reports (attested, linked, once per allow).
//! - [`asker`]: who is asking (an SVID outranks a token; open mode).
//! - [`decision`]: the decision of `POST /actions` and its record.
//! - [`limits`]: rate limits and the sealed summaries of what they refused.
//! - [`names`]: the naming rules of actors, actions and resources.
//! - [`record`]: what every sealed record's context starts with.

pub(crate) mod agents;
pub(crate) mod asker;
pub(crate) mod brokers;
pub(crate) mod capabilities;
pub(crate) mod decision;
pub(crate) mod limits;
pub(crate) mod names;
pub(crate) mod record;
