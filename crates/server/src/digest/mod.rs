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

/// Longest single sleep before the wall clock is read again: a clock
/// stepped forward (NTP after a suspend, say) is noticed within a minute.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Sleep until the wall clock reads `slot` (Unix seconds), however the
/// runtime's timer drifts from it or the clock is stepped.
async fn sleep_until(slot: i64) {
    let target = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(slot).unwrap_or(0));
    while let Ok(left) = target.duration_since(SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
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
    // The size first, then the flush: everything below it is then durable,
    // and only that is counted (a crash must not un-happen something a
    // digest counted). Entries logged after the size is read wait for
    // the next slot.
    let size = store.log_size()?;
    store.flush().await?;
    // A lawyer with an address but no count (left so by a crash or a
    // restore) would get zeros for ever: their count starts here.
    for (lawyer, _) in store.lawyer_contacts()? {
        if store.digest_state(lawyer.as_str())?.is_none() {
            store.start_digest_count(&lawyer, size).await?;
        }
    }
    let counting = vault.clone();
    let tallies = tokio::task::spawn_blocking(move || tally(&(*counting).as_ref().store, size))
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("the digest's count stopped: {e}"))))??;
    let (mut sent, mut failed) = (0, 0);
    for Tally {
        lawyer,
        counts,
        counted_to,
        sent_slot,
    } in tallies
    {
        // The clock stepped back: this slot's digest went already.
        if slot <= sent_slot {
            continue;
        }
        // The address as it is now: an admin may have changed or cleared
        // it while the slot was counted.
        let Some(address) = store.registry_record(lawyer.as_str())?.and_then(|r| r.contact) else {
            continue;
        };
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
                sent += 1;
                // One record that cannot be written must not cancel the
                // rest of the slot: that lawyer's next digest counts
                // these entries again (the README says a crash may).
                let state = DigestState {
                    counted_to,
                    sent_slot: slot,
                };
                if let Err(e) = store.record_digest_sent(&lawyer, state).await {
                    tracing::warn!(error = %e, "a digest was sent but could not be recorded; it may be counted again");
                }
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
    counts: Counts,
    /// The log's size it counted up to.
    counted_to: u64,
    /// The slot of the lawyer's last digest sent.
    sent_slot: i64,
}

/// Count, for each lawyer with an address, from where their last digest
/// left off up to `size` (read before the flush that made it durable):
/// one pass over the entries in between.
fn tally(store: &Store, size: u64) -> Result<Vec<Tally>, StoreError> {
    let mut lawyers: BTreeMap<KeyId, (i64, u64, Counts)> = BTreeMap::new();
    for (key, _) in store.lawyer_contacts()? {
        let state = store.digest_state(key.as_str())?;
        let from = state.map_or(size, |s| s.counted_to.min(size));
        lawyers.insert(key, (state.map_or(0, |s| s.sent_slot), from, Counts::default()));
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
        .map(|(lawyer, (sent_slot, _, counts))| Tally {
            lawyer,
            counts,
            counted_to: size,
            sent_slot,
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
