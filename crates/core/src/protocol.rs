//! Constants of the protocol that clients, the server and the page agree
//! on: the limits a request must keep, and the tus version spoken. The
//! server's own tunable limits (timeouts, quotas) are its settings, in the
//! server's `config`.

/// The tus protocol version every upload request and answer carries.
pub const TUS_VERSION: &str = "1.0.0";

/// Largest JSON request body: case creation with a few dozen envelopes and a
/// note fits in a few KiB; 256 KiB leaves room without inviting abuse.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// Largest tus PATCH body. Clients send 4 MiB (one chunk); the server buffers
/// one PATCH to check its digest before storing it, so this bounds memory
/// per upload request.
pub const MAX_PATCH_BODY: usize = 8 * 1024 * 1024;

/// Largest object. Set high: evidence can be hours of video.
pub const MAX_UPLOAD_LENGTH: u64 = 64 * 1024 * 1024 * 1024;

/// Most log entries returned by one `entries` request.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;
