//! `trainer`: train Prism's models with libtorch, evaluate them, describe them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "trainer", version, about = "Train Prism's models with libtorch (CUDA when present, CPU otherwise)")]
#[command(after_help = "Run `trainer <command> --help` for each command's options and examples.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Summary(cli::summary::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::clap_error(e),
    };
    let result = match cli.command {
        Command::Summary(args) => cli::summary::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
