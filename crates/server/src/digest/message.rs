//! The digest's one message: a fixed subject and a fixed template, counts
//! written to a fixed width, and headers of fixed length (the sender and
//! the lawyer's own address aside), so that every digest a lawyer gets has
//! the same size whatever it counts, and none names a case or a time of
//! arrival. Pure: it only formats.

use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;

use custos_core::identity::contact::EmailAddress;

/// Digits each count is written with, zero-padded. A count beyond them is
/// written as the largest one they hold, so no count can lengthen the
/// message.
pub const COUNT_WIDTH: usize = 6;

/// The largest count written; more is written as this.
pub const MAX_COUNT: u64 = 999_999;

/// The subject of every digest.
pub const SUBJECT: &str = "custos: your digest";

/// What one digest counts for one lawyer, since the last one sent: the
/// vault cannot tell files from messages (their labels are sealed), so it
/// counts what it can know.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Cases newly held: opened with the case key wrapped to this lawyer
    /// (an intake lawyer), or granted to them.
    pub cases: u64,
    /// Objects (files and messages) a submitter stored in a case this
    /// lawyer holds.
    pub objects: u64,
}

/// `n` zero-padded to [`COUNT_WIDTH`] digits, at most [`MAX_COUNT`].
fn fixed(n: u64) -> String {
    format!("{:0width$}", n.min(MAX_COUNT), width = COUNT_WIDTH)
}

/// The text of a digest, lines ending CRLF as SMTP carries them. Every
/// line is fixed but for the counts, which are of fixed width.
pub fn body(counts: Counts) -> String {
    [
        "New in the cases you hold at this vault since your last digest:",
        "",
        &format!("  cases opened or granted to you:          {}", fixed(counts.cases)),
        &format!("  files and messages from submitters:      {}", fixed(counts.objects)),
        "",
        "This digest comes at fixed times, the same size each time, even",
        "when nothing is new. It names no case and no time of arrival.",
        "To see what is new: custos cases --new, or custos watch.",
        "",
    ]
    .join("\r\n")
}

/// Why a message could not be made: an address lettre reads otherwise than
/// the vault's check (which is stricter), never expected.
#[derive(Debug, thiserror::Error)]
#[error("the digest could not be composed: {0}")]
pub struct ComposeError(String);

/// The digest for `to` at `slot` (Unix time; the message is dated then,
/// not when it leaves), with a random Message-ID of fixed length under the
/// sender's domain.
pub fn compose(from: &EmailAddress, to: &EmailAddress, slot: i64, counts: Counts) -> Result<Message, ComposeError> {
    let mailbox = |a: &EmailAddress| -> Result<Mailbox, ComposeError> {
        let address = a.as_str().parse().map_err(|e| ComposeError(format!("{e}")))?;
        Ok(Mailbox::new(None, address))
    };
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(slot).unwrap_or(0));
    let id = format!("<{}@{}>", hex::encode(rand::random::<[u8; 16]>()), from.domain());
    Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(to)?)
        .subject(SUBJECT)
        .date(date)
        .message_id(Some(id))
        .header(ContentType::TEXT_PLAIN)
        .body(body(counts))
        .map_err(|e| ComposeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(counts: Counts, slot: i64) -> Vec<u8> {
        let from: EmailAddress = "vault@example.org".parse().unwrap();
        let to: EmailAddress = "lawyer@example.org".parse().unwrap();
        compose(&from, &to, slot, counts).unwrap().formatted()
    }

    /// Whatever it counts and whenever it is sent, a lawyer's digest has
    /// one length, and it is plain 7-bit text.
    #[test]
    fn every_digest_has_one_length() {
        let none = bytes(Counts::default(), 1_790_000_000);
        let text = String::from_utf8(none.clone()).unwrap();
        assert!(text.contains("\r\nSubject: custos: your digest\r\n"), "{text}");
        assert!(text.contains("Date: Mon, 21 Sep 2026 14:13:20 +0000\r\n"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: 7bit\r\n"), "{text}");
        assert!(
            text.contains("cases opened or granted to you:          000000\r\n"),
            "{text}"
        );
        for (counts, slot) in [
            (Counts { cases: 57, objects: 3 }, 1_790_000_060),
            (
                Counts {
                    cases: 999_999,
                    objects: 1,
                },
                4_102_444_800,
            ),
            (
                Counts {
                    cases: 5_000_000,
                    objects: u64::MAX,
                },
                1,
            ),
        ] {
            let other = bytes(counts, slot);
            assert_eq!(other.len(), none.len(), "{}", String::from_utf8_lossy(&other));
        }
        let many = String::from_utf8(bytes(
            Counts {
                cases: 5_000_000,
                objects: 0,
            },
            1,
        ))
        .unwrap();
        assert!(many.contains("999999\r\n"), "a count beyond the width is capped");
        assert!(none.iter().all(|b| b.is_ascii()), "7-bit text only");
    }
}
