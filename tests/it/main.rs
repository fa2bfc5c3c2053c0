//! The integration tests, in one binary so that they link once: each
//! module is one concern and starts real servers on 127.0.0.1:0 with real
//! sled stores in temporary folders, real age and real signatures.
//! `cargo test --test it MODULE::` runs one module (e.g. `crash::`).

mod browser;
mod proxy;
mod util;

mod abuse;
mod audit_state;
mod backup;
mod bundle;
mod case_log_vector;
mod cli;
mod crash;
mod desk;
mod digest;
mod disclose;
mod disclose_clean;
mod disk_faults;
mod downloads;
mod full_flow;
mod garage;
pub(crate) mod hostile_vault;
mod integrity;
mod limits;
mod metadata;
mod openapi;
mod operations;
mod pinned_checkpoint;
mod powercut;
mod resume_lock;
mod rfc6962_vectors;
mod s3;
mod s3_backup;
mod signatures;
mod submitter;
mod tor;
mod trust_server;
mod uploads;
mod web;
mod web_client_vectors;
mod web_metadata;
mod witness;
mod workflow;
