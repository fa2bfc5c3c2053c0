//! The terminal progress bar for transfers: one line on stderr, drawn by
//! `indicatif` (which redraws in place, a few times a second, and only on
//! a terminal), with the rate and the time remaining. The CLI uses it only
//! when stderr is a terminal and `--quiet` was not given.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::client::progress::{Meter, Progress};

/// Smaller transfers are over before a bar could tell anything.
pub const MIN_BYTES: u64 = 4 * 1024 * 1024;
/// Redraws a second: often enough to look alive, rarely enough that
/// drawing costs nothing next to the transfer.
const REDRAWS_PER_SECOND: u8 = 5;
/// The line: what, the bar, percent, bytes, rate and time left. The bar
/// has 20 cells so that the line stays under 79 columns, the width
/// `indicatif` assumes when it cannot tell: a longer line would wrap, and
/// redrawing a wrapped line moves the cursor up into earlier output.
const TEMPLATE: &str = "{prefix:<8} [{bar:20}] {share:>3}%  {done} of {total}  {rate}/s  {left}";

/// Draws a bar on stderr for each transfer of at least [`MIN_BYTES`].
#[derive(Debug, Default)]
pub struct TerminalBar;

impl Progress for TerminalBar {
    fn begin(&self, what: &str, total: u64) -> Box<dyn Meter> {
        if total < MIN_BYTES {
            return Box::new(Hidden);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND))
            .with_style(style())
            .with_prefix(what.to_owned());
        bar.tick();
        Box::new(Bar(bar))
    }
}

/// The bar's look: the share done is rounded down, so "100%" shows only
/// once everything moved; sizes and rates read as [`human`] writes them.
fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .expect("the template is valid")
        .progress_chars("#-")
        .with_key("share", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", share(s.pos(), s.len().unwrap_or(0)));
        })
        .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human(s.pos()));
        })
        .with_key("total", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human(s.len().unwrap_or(0)));
        })
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human(rate(s.pos(), s.elapsed()) as u64));
        })
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&time_left(s.pos(), s.len().unwrap_or(0), s.elapsed()));
        })
}

/// A transfer too small for a bar.
struct Hidden;

impl Meter for Hidden {
    fn advance(&mut self, _: u64) {}
}

/// A transfer on the terminal.
struct Bar(ProgressBar);

impl Meter for Bar {
    fn advance(&mut self, n: u64) {
        if self.0.is_finished() {
            return;
        }
        let done = self.0.position() + n;
        if self.0.length().is_some_and(|total| done >= total) {
            // Drawn once, at 100%, and left on the screen.
            self.0.finish();
        } else {
            self.0.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // A transfer that stopped short leaves its bar where it stopped.
        if !self.0.is_finished() {
            self.0.abandon();
        }
        // The bar's line stays; what is written next starts below it.
        let _ = writeln!(std::io::stderr());
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

/// Percent done, rounded down: 100 only when all of it moved.
pub fn share(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 100;
    }
    ((done as f64 / total as f64).min(1.0) * 100.0).floor() as u64
}

/// Average bytes a second since the start.
pub fn rate(done: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        done as f64 / secs
    } else {
        0.0
    }
}

/// "0:12 left" at the average rate so far; "done" at the end.
pub fn time_left(done: u64, total: u64, elapsed: Duration) -> String {
    let rate = rate(done, elapsed);
    if done >= total {
        "done".to_owned()
    } else if rate > 0.0 {
        let left = ((total - done) as f64 / rate).round() as u64;
        format!("{}:{:02} left", left / 60, left % 60)
    } else {
        "--:-- left".to_owned()
    }
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
        let (done, total, elapsed) = (256 << 20, 1 << 30, Duration::from_secs(4));
        assert_eq!(share(done, total), 25);
        assert_eq!(human(rate(done, elapsed) as u64), "64.0 MiB");
        assert_eq!(time_left(done, total, elapsed), "0:12 left");
        assert_eq!(share((1 << 30) - 1, 1 << 30), 99, "100% only at the end");
        assert_eq!(time_left(1 << 30, 1 << 30, Duration::from_secs(8)), "done");
        assert_eq!(time_left(0, 10 << 20, Duration::ZERO), "--:-- left");
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }
}
