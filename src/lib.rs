//! custos: an encrypted intake and evidence vault with a verifiable custody
//! log. This package is the `custos` command; the work is done by four
//! crates, each of which may use only the ones before it:
//!
//! - `custos-core` (`crates/core`): what a verifier needs and no I/O
//!   dependency: the custody log, proofs, checkpoints, the offline
//!   auditor, export bundles and their verification, request signatures,
//!   identities, envelopes, stamps and the API's wire types.
//! - `custos-durable` (`crates/durable`): small files written so that a
//!   power cut leaves the old one or the new one.
//! - `custos-server` (`crates/server`): the vault: store, api, policy,
//!   backup, witness, config, metrics and the submitter's page.
//! - `custos-client` (`crates/client`): the typed HTTP client, trust pins,
//!   resume journals, the workflows, and bundles packed and decrypted.
//!
//! [`cli`] is the command itself, one file per role; `main.rs` only calls
//! it. The other modules below are those crates' modules, re-exported under
//! the paths the integration tests, benches and fuzz targets name
//! (`custos::store`, `custos::client`, ...). ARCHITECTURE.md is the longer
//! map.
//!
//! The server never holds a key that decrypts case content; its access
//! checks are a second layer behind the cryptography.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use custos_client as client;
pub use custos_client::bundle;
pub use custos_core::{audit, custody, envelope, httpsig, identity, protocol, stamp, wire};
pub use custos_desk as desk;
pub use custos_durable as durable;
pub use custos_meta as meta;
pub use custos_server::{accept, api, backup, config, digest, metrics, policy, store, vault, web, witness};

pub mod cli;
