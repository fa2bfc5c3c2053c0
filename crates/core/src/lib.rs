//! custos-core: everything a verifier of a custos vault needs, and nothing
//! that does I/O beyond reading a file it is given.
//!
//! - [`bundle`]: export bundles (one case's events, proofs and ciphertext)
//!   and their offline verification against a pinned log key: what
//!   `custos verify` runs for a court.
//! - [`custody`]: events, per-case hash chains, the RFC 6962 Merkle tree,
//!   signed checkpoints (C2SP signed notes), witness cosignatures, proofs.
//! - [`audit`]: the offline log auditor, which replays every event and
//!   reads logged requests with the [`wire`] types.
//! - [`httpsig`]: the RFC 9421 request-signature profile every signed
//!   request and every logged action carries.
//! - [`identity`]: principal identity files and cards, key ids, roles,
//!   submitter codenames.
//! - [`envelope`]: age encryption of content, labels and case keys.
//! - [`protocol`]: the limits and versions both sides of the API agree on.
//! - [`stamp`]: the proof-of-work stamp that prices opening a case.
//! - [`wire`]: the JSON bodies of the HTTP API, which clients send, the
//!   server parses and the auditor reads back out of logged requests.
//!
//! The server (store, api) and the client (HTTP, trust pins, resume) live
//! in the `custos` crate and build on this one; nothing here knows them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod bundle;
pub mod custody;
pub mod envelope;
pub mod httpsig;
pub mod identity;
pub mod protocol;
pub mod stamp;
pub mod wire;
