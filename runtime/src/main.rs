//! `runtime`: run Prism's ONNX models (and other image classifiers) on ONNX Runtime or tract.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
#[cfg(feature = "serve")]
mod serve;

#[derive(Parser)]
#[command(name = "runtime", version, about = "Run ONNX models on ONNX Runtime (TensorRT, CUDA, CPU) or tract")]
#[command(after_help = "Run `runtime <command> --help` for each command's options and examples.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Infer(Box<cli::infer::Args>),
    Info(cli::info::Args),
    Bench(cli::bench::Args),
    #[cfg(feature = "serve")]
    Serve(Box<serve::Args>),
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::clap_error(e),
    };
    let result = match cli.command {
        Command::Infer(args) => cli::infer::run(*args),
        Command::Info(args) => cli::info::run(args),
        Command::Bench(args) => cli::bench::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
