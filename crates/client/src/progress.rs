//! Progress of long transfers. The client reports bytes moved to a
//! [`Progress`] it is given; the CLI gives it a terminal bar (`cli::bar`),
//! tests and library users give it none. Owns no output itself.

use std::sync::Arc;

/// Something that shows transfers as they go.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes, described by `what`, begins.
    fn begin(&self, what: &str, total: u64) -> Box<dyn Meter>;
}

/// One transfer under way; dropping it ends the transfer (done or failed).
pub trait Meter: Send {
    /// `n` more bytes have moved.
    fn advance(&mut self, n: u64);
}

/// The client's optional progress sink.
#[derive(Clone, Default)]
pub struct Sink(pub Option<Arc<dyn Progress>>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Sink(on)" } else { "Sink(off)" })
    }
}

/// A meter that shows nothing.
struct Silent;

impl Meter for Silent {
    fn advance(&mut self, _: u64) {}
}

impl Sink {
    /// Begin a transfer: a real meter when progress is on.
    pub fn begin(&self, what: &str, total: u64) -> Box<dyn Meter> {
        match &self.0 {
            Some(p) => p.begin(what, total),
            None => Box::new(Silent),
        }
    }
}
