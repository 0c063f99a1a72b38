//! Progress bars on a terminal; plain lines in logs (CI, pipes), where bars would be invisible.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with position, rate and ETA; hidden when stderr is not a terminal.
pub fn bar(len: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

/// Prints a line above the bar (or plainly when the bar is hidden).
pub fn line(bar: &ProgressBar, text: &str) {
    if bar.is_hidden() {
        eprintln!("{text}");
    } else {
        bar.println(text);
    }
}
