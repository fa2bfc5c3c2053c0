//! The SMTP side of the digest: the relay's credentials, read once at
//! start from a file only its owner may read, and the transport that
//! hands each message to the relay (STARTTLS or TLS with the Mozilla
//! roots, or plain to a relay on this machine). What a failure reports
//! names neither the lawyer's address nor what the relay answered, which
//! could quote it.

use std::error::Error as _;
use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::{Settings, SmtpSecurity};
use custos_core::identity::contact::EmailAddress;

/// Longest a conversation with the relay may take, each step: a relay
/// that hangs must not hold the next slot's digests for long.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the mailer could not be set up (the server then does not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailerError {
    /// The credentials file was refused.
    #[error(transparent)]
    Credentials(#[from] crate::secret_file::SecretFileError),
    /// TLS could not be set up for the relay's name.
    #[error("TLS for the SMTP relay: {0}")]
    Tls(String),
}

/// The relay's user name and password. The password is zeroized when
/// this is dropped; `Debug` shows the user name only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpCredentials {
    username: String,
    password: Zeroizing<String>,
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpCredentials({}, password hidden)", self.username)
    }
}

impl SmtpCredentials {
    /// Read `path`: refused if group or others may read it (as identity
    /// files are), if it is large, or if it holds anything but the two
    /// keys. The text read is zeroized.
    pub fn read(path: &Path) -> Result<Self, MailerError> {
        Ok(crate::secret_file::read(
            "smtp_credentials_file",
            path,
            "username = \"...\" and password = \"...\"",
            |c: &SmtpCredentials| !c.username.is_empty() && !c.password.is_empty(),
        )?)
    }
}

/// Hands digests to the relay. `Debug` names the relay only (the
/// transport inside holds the password).
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
    /// The sender of every digest.
    pub from: EmailAddress,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.relay)
    }
}

/// Why one digest did not reach the relay, in words that name no one:
/// never the relay's own text, which may quote the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The relay could not be reached, or the connection broke.
    Connection,
    /// TLS failed (STARTTLS not offered, a certificate not trusted, ...).
    Tls,
    /// The relay took too long.
    Timeout,
    /// The relay refused, for now (4xx), with this code.
    Transient(u16),
    /// The relay refused (5xx), with this code.
    Permanent(u16),
    /// The mail library gave up on this side, saying why in its own
    /// fixed words: the relay offers no STARTTLS, or no way to
    /// authenticate, say.
    Client(String),
    /// The relay's answer did not parse.
    Response,
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendFailure::Connection => f.write_str("the relay could not be reached"),
            SendFailure::Tls => f.write_str("TLS with the relay failed"),
            SendFailure::Timeout => f.write_str("the relay timed out"),
            SendFailure::Transient(code) => write!(f, "the relay refused for now ({code})"),
            SendFailure::Permanent(code) => write!(f, "the relay refused ({code})"),
            SendFailure::Client(why) => write!(f, "the mail could not be handed over ({why})"),
            SendFailure::Response => f.write_str("the relay's answer did not parse"),
        }
    }
}

fn code_of(e: &lettre::transport::smtp::Error) -> u16 {
    e.status().map_or(0, |c| c.to_string().parse().unwrap_or(0))
}

impl SendFailure {
    fn of(e: &lettre::transport::smtp::Error) -> Self {
        if e.is_timeout() {
            SendFailure::Timeout
        } else if e.is_tls() {
            SendFailure::Tls
        } else if e.is_transient() {
            SendFailure::Transient(code_of(e))
        } else if e.is_permanent() {
            SendFailure::Permanent(code_of(e))
        } else if e.is_client() {
            // lettre's own fixed messages, never the relay's words.
            SendFailure::Client(e.source().map_or_else(String::new, ToString::to_string))
        } else if e.is_response() {
            SendFailure::Response
        } else {
            SendFailure::Connection
        }
    }
}

impl Mailer {
    /// The mailer the settings describe, when digests are on: the
    /// credentials file read now, the transport built (it connects only
    /// when a digest is sent).
    pub fn from_settings(settings: &Settings) -> Result<Option<Mailer>, MailerError> {
        let (Some(relay), Some(from)) = (&settings.smtp_relay, &settings.smtp_from) else {
            return Ok(None);
        };
        if settings.digest_interval_secs == 0 {
            return Ok(None);
        }
        let credentials = settings
            .smtp_credentials_file
            .as_deref()
            .map(SmtpCredentials::read)
            .transpose()?;
        let tls = || TlsParameters::new(relay.clone()).map_err(|e| MailerError::Tls(e.to_string()));
        let tls = match settings.smtp_security {
            SmtpSecurity::StartTls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::Plain => Tls::None,
        };
        // The sender's domain greets the relay: the machine's own name
        // (an onion service's host, say) is nobody's business.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.as_str())
            .port(settings.smtp_port)
            .tls(tls)
            .hello_name(ClientId::Domain(from.domain().to_owned()))
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(c) = &credentials {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.as_str().to_owned()));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            relay: relay.clone(),
            from: from.clone(),
        }))
    }

    /// Hand one message to the relay.
    pub async fn send(&self, message: Message) -> Result<(), SendFailure> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendFailure::of(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::SecretFileError;

    #[test]
    fn credentials_are_two_keys_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp");
        std::fs::write(&path, "username = \"vault\"\npassword = \"s3cret pass\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = SmtpCredentials::read(&path).unwrap_err();
            assert!(
                matches!(e, MailerError::Credentials(SecretFileError::NotPrivate { .. })),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"), "{e}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let c = SmtpCredentials::read(&path).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("vault", "s3cret pass"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        for bad in [
            "username = \"vault\"\n",
            "username = \"vault\"\npassword = \"\"\n",
            "username = \"vault\"\npassword = \"p\"\nrelay = \"x\"\n",
            "vault:password\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = SmtpCredentials::read(&path).unwrap_err();
            assert!(
                matches!(e, MailerError::Credentials(SecretFileError::Malformed { .. })),
                "{bad}: {e}"
            );
            assert!(!e.to_string().contains("password\n"), "{e}");
        }
        let e = SmtpCredentials::read(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(e, MailerError::Credentials(SecretFileError::Read { .. })),
            "{e}"
        );
    }
}
