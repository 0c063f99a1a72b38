//! How Prism's three command-line programs end: errors on one line, usage errors with exit
//! code 2 (feature `cli`).

use std::process::ExitCode;

/// An error chain on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

/// Help and version go to stdout; usage errors are one line on stderr with exit code 2.
pub fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
    eprintln!("error: {first} (see --help)");
    ExitCode::from(2)
}
