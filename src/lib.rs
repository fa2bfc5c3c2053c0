//! custos: an encrypted intake and evidence vault with a verifiable custody log.
//!
//! The verifier's parts live in the core crate, `custos-core` (custody
//! log, proofs, auditor, bundles, signatures, identities, envelopes, wire
//! types, stamps), re-exported here under the same names; this crate is the
//! server, the client and the CLI. ARCHITECTURE.md is the longer map.
//!
//! Map of the crate, in the order a request flows through it:
//!
//! - [`envelope`]: the client encrypts content, labels and the per-case key
//!   with age before anything leaves the device.
//! - [`client`]: the typed HTTP client the CLI, tests and benches use; it signs
//!   every request with [`httpsig`] and verifies every receipt it gets back.
//! - [`api`]: the axum server. It checks the request signature (RFC 9421),
//!   asks [`policy`] whether the actor may do this, and then writes.
//! - [`store`]: sled trees holding ciphertext chunks, manifests, cases,
//!   envelopes, the registry and the log; atomic, flushed before any reply.
//! - [`custody`] and [`audit`] (core): events, per-case hash chains, the
//!   RFC 6962 Merkle tree, signed checkpoints, proofs and the offline
//!   auditor. Pure logic.
//! - [`identity`]: principal identity files and cards, key ids, roles and
//!   submitter codenames.
//! - [`web`]: the submitter's page at `/`, which encrypts in the browser and
//!   then talks to [`api`] as any other client does.
//! - [`cli`]: the `custos` command, one file per role; `main.rs` only calls it.
//! - [`accept`]: the accept loop every server here runs on, with its
//!   header timer, connection cap and graceful stop.
//! - [`config`]: the server's settings, from `custos.toml`, `CUSTOS_*`
//!   variables and flags; [`metrics`]: what `/metrics` reports, with no
//!   label that could name a case or a person; [`durable`]: small files
//!   written so that a power cut leaves the old or the new one;
//!   [`backup`], [`witness`], [`bundle`]: snapshots and restores, the C2SP
//!   witness, packing and decrypting export bundles.
//!
//! The server never holds a key that decrypts case content; its access checks
//! are a second layer behind the cryptography.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The verifier core, under the paths the rest of the crate and its users
// have always named.
pub use custos_core::{audit, custody, envelope, httpsig, identity, protocol, stamp, wire};

pub mod accept;
pub mod api;
pub mod backup;
pub mod bundle;
pub mod cli;
pub mod client;
pub mod config;
pub mod durable;
pub mod metrics;
pub mod policy;
pub mod store;
pub mod vault;
pub mod web;
pub mod witness;
