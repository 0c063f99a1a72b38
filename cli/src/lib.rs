//! What Prism's three command-line programs (`trainer`, `exporter`, `runtime`) share: errors on
//! one line, usage errors with exit code 2, a quiet end on a closed pipe, and value parsers.
//! Libraries never depend on this crate, so embedders compile no clap.

use std::process::ExitCode;

/// An error chain on one line, `context: cause: root cause`; a cause that its parent's message
/// already ends with (`path: {source}`) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            line = text.to_string();
        } else if !line.ends_with(text) {
            line = format!("{line}: {text}");
        }
    }
    line
}

/// Output piped into a reader that stops early (`runtime info m.onnx | head -1`) ends the
/// program quietly, as other Unix tools end, instead of a panic in `println!`: Rust ignores
/// SIGPIPE, so a write to the closed pipe would fail. Call first thing in `main`.
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread is started; no
    // handler runs Rust code.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A clap value parser for counts that must be at least 1 (`--batch`, `--threads`...).
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Help and version go to stdout; usage errors are one line on stderr with exit code 2.
pub fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
    // The missing arguments are listed on the lines after the first, indented.
    let missing: Vec<&str> = rendered.lines().skip(1).take_while(|l| l.starts_with("  ")).map(str::trim).collect();
    if e.kind() == ErrorKind::MissingRequiredArgument && !missing.is_empty() {
        eprintln!("error: {first} {} (see --help)", missing.join(", "));
    } else {
        eprintln!("error: {first} (see --help)");
    }
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_cause_is_not_repeated() {
        let io = std::io::Error::other("Is a directory");
        let error = anyhow::Error::new(prism_data::Error::io("/tmp", io)).context("reading the model");
        assert_eq!(one_line(&error), "reading the model: /tmp: Is a directory");
        let chained = anyhow::anyhow!("root").context("middle\nsecond line").context("top");
        assert_eq!(one_line(&chained), "top: middle: root");
    }
}
