//! custos-server: the vault. It stores ciphertext and the custody log,
//! authenticates every signed request, decides who may act, and answers
//! with receipts; it never holds a key that opens content.
//!
//! Map of the crate, in the order a request flows through it:
//!
//! - [`accept`]: the accept loop every server here runs on, with its
//!   header timer, connection cap and graceful stop.
//! - [`api`]: the axum router. It checks the request signature (RFC 9421),
//!   asks [`policy`] whether the actor may do this, and then writes.
//! - [`policy`]: who may do what, as pure functions.
//! - [`store`]: sled, behind domain methods: ciphertext chunks, manifests,
//!   cases, envelopes, the registry and the log; atomic, flushed before
//!   any reply. [`vault`] is a data directory: the store, the log key and
//!   the vault's description.
//! - [`web`]: the submitter's page at `/`, which encrypts in the browser and
//!   then talks to [`api`] as any other client does.
//! - [`backup`]: snapshots of a running vault and their restore.
//! - [`digest`]: lawyers' digests, counts only, mailed at fixed times.
//! - [`witness`]: the C2SP witness service, and the vault's push of new
//!   checkpoints to witnesses.
//! - [`config`]: the server's settings, from `custos.toml`, `CUSTOS_*`
//!   variables and flags; [`metrics`]: what `/metrics` reports, with no
//!   label that could name a case or a person.
//!
//! The custody log, proofs, signatures and wire types are the core's
//! (`custos-core`); the client is `custos-client`, which this crate never
//! uses.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accept;
pub mod api;
pub mod backup;
pub mod config;
pub mod digest;
pub mod metrics;
pub mod policy;
pub mod secret_file;
pub mod store;
pub mod vault;
pub mod web;
pub mod witness;
