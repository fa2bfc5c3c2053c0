//! Lawyers' digests: at fixed times, each lawyer with a contact address is
//! mailed how many cases they newly hold and how many files and messages
//! submitters stored in their cases since their last digest, and nothing
//! else. The times are the multiples of the interval since the Unix epoch,
//! whatever happens in between, and a digest goes out even when every
//! count is zero, so neither its timing nor its size tells anyone when a
//! case arrived (SecureDrop's daily digest, by mail).
//!
//! This file holds the schedule and the counting; `message` the fixed
//! template, `mailer` the relay. The task runs beside the API, never on a
//! request's path; what it logs names no lawyer, address or case.

mod mailer;
pub mod message;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use mailer::{Mailer, MailerError, SendFailure, SmtpCredentials, SMTP_TIMEOUT};
pub use message::Counts;

use crate::store::{DigestState, Store, StoreError};
use crate::vault::Vault;
use custos_core::custody::{Action, Event};
use custos_core::identity::contact::EmailAddress;
use custos_core::identity::KeyId;
use custos_core::wire::CreateCase;

/// The digest's schedule and the relay it goes through.
#[derive(Debug)]
pub struct Digests {
    /// Seconds between digests (at least 1; at least an hour unless the
    /// relay is this machine, see `config::mail::check`).
    pub interval_secs: u64,
    /// Where they are handed over.
    pub mailer: Mailer,
}

impl Digests {
    /// The digests the settings describe, or `None` when they are off;
    /// reads the relay's credentials file.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Option<Arc<Digests>>, MailerError> {
        Ok(Mailer::from_settings(settings)?.map(|mailer| {
            Arc::new(Digests {
                interval_secs: settings.digest_interval_secs,
                mailer,
            })
        }))
    }
}

/// The first slot strictly after `now`: the next multiple of `interval`
/// seconds since the Unix epoch.
pub fn next_slot(now: i64, interval: u64) -> i64 {
    let interval = i64::try_from(interval.max(1)).unwrap_or(i64::MAX);
    (now.div_euclid(interval) + 1) * interval
}

/// Sleep until the wall clock reads `slot` (Unix seconds), however the
/// runtime's timer drifts from it.
async fn sleep_until(slot: i64) {
    let target = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(slot).unwrap_or(0));
    while let Ok(left) = target.duration_since(SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left).await;
    }
}

/// Send the digests at every slot, for as long as the server runs;
/// `vault` is anything that holds the vault (the server's state).
pub async fn run<V>(vault: Arc<V>, digests: Arc<Digests>)
where
    V: AsRef<Vault> + Send + Sync + 'static,
{
    loop {
        let slot = next_slot(custos_core::custody::unix_now(), digests.interval_secs);
        sleep_until(slot).await;
        match send_all(&vault, &digests, slot).await {
            Ok((0, 0)) => {}
            Ok((sent, 0)) => tracing::info!(sent, "digests sent"),
            Ok((sent, failed)) => {
                tracing::warn!(
                    sent,
                    failed,
                    "some digests were not sent; they are tried again at the next slot"
                )
            }
            Err(e) => tracing::warn!(error = %e, "could not count for the digests; tried again at the next slot"),
        }
    }
}

/// One slot: count for every lawyer with an address, send, and record
/// each digest that reached the relay. Returns how many were sent and how
/// many failed.
async fn send_all<V>(vault: &Arc<V>, digests: &Digests, slot: i64) -> Result<(usize, usize), StoreError>
where
    V: AsRef<Vault> + Send + Sync + 'static,
{
    let store = &(**vault).as_ref().store;
    // Only what is durable: a crash must not un-happen something counted.
    store.flush().await?;
    let counting = vault.clone();
    let tallies = tokio::task::spawn_blocking(move || tally(&(*counting).as_ref().store))
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("the digest's count stopped: {e}"))))??;
    let (mut sent, mut failed) = (0, 0);
    for Tally {
        lawyer,
        address,
        counts,
        counted_to,
    } in tallies
    {
        let message = match message::compose(&digests.mailer.from, &address, slot, counts) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "a digest was not sent");
                failed += 1;
                continue;
            }
        };
        match digests.mailer.send(message).await {
            Ok(()) => {
                store
                    .record_digest_sent(
                        &lawyer,
                        DigestState {
                            counted_to,
                            sent_slot: slot,
                        },
                    )
                    .await?;
                sent += 1;
            }
            Err(why) => {
                tracing::warn!(reason = %why, "a digest was not sent");
                failed += 1;
            }
        }
    }
    Ok((sent, failed))
}

/// One lawyer's digest, counted.
struct Tally {
    lawyer: KeyId,
    address: EmailAddress,
    counts: Counts,
    /// The log's size it counted up to.
    counted_to: u64,
}

/// Count, for each lawyer with an address, from where their last digest
/// left off to the log's size now: one pass over the entries in between.
fn tally(store: &Store) -> Result<Vec<Tally>, StoreError> {
    let size = store.log_size()?;
    let mut lawyers: BTreeMap<KeyId, (EmailAddress, u64, Counts)> = BTreeMap::new();
    for (key, address) in store.lawyer_contacts()? {
        let from = store.digest_state(key.as_str())?.map_or(size, |s| s.counted_to);
        lawyers.insert(key, (address, from, Counts::default()));
    }
    let start = lawyers.values().map(|(_, from, _)| *from).min().unwrap_or(size);
    for index in start..size {
        let bytes = store
            .entry(index)?
            .ok_or_else(|| StoreError::Integrity(format!("log entry {index} is missing")))?;
        let event: Event =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Integrity(format!("entry {index}: {e}")))?;
        let mut count = |who: &KeyId, case: bool| {
            if let Some((_, from, counts)) = lawyers.get_mut(who) {
                if index >= *from {
                    if case {
                        counts.cases += 1;
                    } else {
                        counts.objects += 1;
                    }
                }
            }
        };
        match event.action {
            // A new case, wrapped to the intake lawyers.
            Action::CaseCreated => {
                for env in event
                    .signed_body::<CreateCase>()
                    .map(|b| b.envelopes)
                    .unwrap_or_default()
                {
                    count(&env.key_id, true);
                }
            }
            Action::EnvelopeGranted => {
                if let Ok(key) = serde_json::from_value::<KeyId>(event.details["key_id"].clone()) {
                    count(&key, true);
                }
            }
            // A file or message from the submitter, counted for whoever
            // holds the case now.
            Action::ObjectStored if store.submitter_case(&event.actor)?.is_some() => {
                for holder in store.holders(&event.case)? {
                    count(&holder, false);
                }
            }
            _ => {}
        }
    }
    Ok(lawyers
        .into_iter()
        .map(|(lawyer, (address, _, counts))| Tally {
            lawyer,
            address,
            counts,
            counted_to: size,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_multiples_of_the_interval_since_the_epoch() {
        assert_eq!(next_slot(0, 86_400), 86_400);
        assert_eq!(next_slot(86_399, 86_400), 86_400);
        assert_eq!(next_slot(86_400, 86_400), 172_800, "strictly after now");
        assert_eq!(next_slot(1_790_000_001, 2), 1_790_000_002);
        assert_eq!(next_slot(1_790_000_000, 3600), 1_790_002_800);
        assert_eq!(next_slot(5, 0), 6, "an interval of 0 never divides by zero");
    }
}
