//! Rebuild progress on the terminal: a progress bar with events/s and ETA when standard
//! error is a terminal, a plain line every two seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::rebuild::RebuildProgress;

/// Reports rebuild progress on standard error.
#[derive(Debug)]
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Reporter {
    pub(super) fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/~{len} events ({per_sec}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self { bar, last_line: None }
    }

    pub(super) fn update(&mut self, p: &RebuildProgress) {
        if let Some(bar) = &self.bar {
            bar.set_length(p.events + p.remaining_estimate());
            bar.set_position(p.events);
            return;
        }
        if self.last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            self.last_line = Some(Instant::now());
            eprintln!(
                "rebuild: {} events, at {}, ~{} left, {:.0} events/s",
                p.events,
                p.position,
                p.remaining_estimate(),
                p.rate()
            );
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
