//! `trainer`: train Prism's models with libtorch, evaluate them, describe them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

use prism_trainer::{data, fit, model, optim, report};

#[derive(Parser)]
#[command(name = "trainer", version, about = "Train Prism's models with libtorch (CUDA when present, CPU otherwise)")]
#[command(after_help = "Run `trainer <command> --help` for each command's options and examples.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Fit(Box<cli::fit::Args>),
    /// Print the device `--device auto` picks: `cuda:0` when libtorch sees a GPU, else `cpu`.
    Device,
    Fetch(cli::fetch::Args),
    Eval(cli::eval::Args),
    Summary(cli::summary::Args),
    Sweep(cli::sweep::Args),
    Bench(cli::bench::Args),
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::clap_error(e),
    };
    let result = match cli.command {
        Command::Fit(args) => {
            cli::fit::run(*args).map(|finished| if finished { ExitCode::SUCCESS } else { ExitCode::from(130) })
        }
        Command::Device => fit::resolve_device("auto").map(|d| {
            println!("{}", if d.is_cuda() { "cuda:0" } else { "cpu" });
            ExitCode::SUCCESS
        }),
        Command::Fetch(args) => cli::fetch::run(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => cli::eval::run(args).map(|()| ExitCode::SUCCESS),
        Command::Summary(args) => cli::summary::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => cli::bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Sweep(args) => {
            cli::sweep::run(args).map(|finished| if finished { ExitCode::SUCCESS } else { ExitCode::from(130) })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
