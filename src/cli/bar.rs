//! The terminal progress bar for transfers: one line on stderr, redrawn a
//! few times a second, with the rate and the time remaining. The CLI uses it
//! only when stderr is a terminal and `--quiet` was not given.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::client::progress::{Meter, Progress};

/// Smaller transfers are over before a bar could tell anything.
pub const MIN_BYTES: u64 = 4 * 1024 * 1024;
/// Redraw at most this often: often enough to look alive, rarely enough
/// that drawing costs nothing next to the transfer.
const REDRAW: Duration = Duration::from_millis(200);
/// Cells of the bar itself; the whole line stays under 80 columns.
const WIDTH: usize = 24;

/// Draws a bar on stderr for each transfer of at least [`MIN_BYTES`].
#[derive(Debug, Default)]
pub struct TerminalBar;

impl Progress for TerminalBar {
    fn begin(&self, what: &str, total: u64) -> Box<dyn Meter> {
        Box::new(Bar {
            what: what.to_owned(),
            total,
            done: 0,
            start: Instant::now(),
            drawn: None,
            shown: total >= MIN_BYTES,
        })
    }
}

struct Bar {
    what: String,
    total: u64,
    done: u64,
    start: Instant,
    drawn: Option<Instant>,
    shown: bool,
}

impl Bar {
    fn draw(&mut self) {
        let line = render(&self.what, self.done, self.total, self.start.elapsed());
        // \r and "erase line": redraw in place.
        let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        self.drawn = Some(Instant::now());
    }
}

impl Meter for Bar {
    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.shown && self.drawn.is_none_or(|t| t.elapsed() >= REDRAW) {
            self.draw();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.shown {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Bytes as people read them: "812 KiB", "12.3 MiB", "4.00 GiB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {}", UNITS[unit])
}

/// One line of the bar: what, the bar, percent, bytes, rate and time left.
pub fn render(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (frac * WIDTH as f64).round() as usize;
    let bar: String = "#".repeat(filled) + &"-".repeat(WIDTH - filled);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = if done >= total {
        "done".to_owned()
    } else if rate > 0.0 {
        let left = ((total - done) as f64 / rate).round() as u64;
        format!("{}:{:02} left", left / 60, left % 60)
    } else {
        "--:-- left".to_owned()
    };
    format!(
        "{what:<8} [{bar}] {:>3}%  {} of {}  {}/s  {eta}",
        (frac * 100.0).floor() as u64,
        human(done),
        human(total),
        human(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.50 KiB");
        assert_eq!(human(12_900_000), "12.3 MiB");
        assert_eq!(human(4 << 30), "4.00 GiB");
        assert_eq!(human(300 << 30), "300 GiB");
    }

    #[test]
    fn the_line_shows_share_rate_and_time_left() {
        let line = render("upload", 256 << 20, 1 << 30, Duration::from_secs(4));
        assert_eq!(
            line,
            "upload   [######------------------]  25%  256 MiB of 1.00 GiB  64.0 MiB/s  0:12 left"
        );
        let done = render("download", 1 << 30, 1 << 30, Duration::from_secs(8));
        assert!(done.contains("100%") && done.ends_with("done"), "{done}");
        let start = render("upload", 0, 10 << 20, Duration::ZERO);
        assert!(start.contains("  0%") && start.ends_with("--:-- left"), "{start}");
        assert!(line.chars().count() < 100);
    }
}
