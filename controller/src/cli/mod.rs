//! The command line. Each subcommand lives in its own file and only translates between the
//! terminal/filesystem and the pure core.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

pub mod alert;
pub mod corpus;
pub mod crd;
pub mod evaluate_forecast;
pub mod evaluate_nab;
pub mod install;
pub mod recommend;
pub mod replay;
pub mod rules;
pub mod run;

/// homeostat keeps a service mesh healthy on its own.
#[derive(Debug, Parser)]
#[command(name = "homeostat", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Alert-triggered remediation: `alert test` shows what an alert would trigger.
    #[command(subcommand)]
    Alert(alert::Command),
    /// Labelled anomaly corpora: `corpus export DIR` writes simulated incidents in NAB's layout.
    #[command(subcommand)]
    Corpus(corpus::Command),
    /// Score the models against benchmarks nobody here wrote.
    #[command(subcommand)]
    Evaluate(Evaluate),
    /// Replay traffic through the simulated mesh with the real Governor, against baselines.
    Replay(replay::Args),
    /// Print the shipped Prometheus rules (recording rules, SLO burn-rate alerts, homeostat's
    /// own health alerts) as a PrometheusRule, or as a plain rule file with --plain.
    Rules(rules::Args),
    /// Print the AdaptivePolicy CustomResourceDefinition.
    Crd(crd::Args),
    /// Print the manifests that install the controller (CRD, RBAC, Deployment, metrics).
    Install(install::Args),
    /// Run the controller against the current Kubernetes cluster (or a bundled mesh).
    /// Boxed: its arguments are ten times the other commands'.
    Run(Box<run::Args>),
    /// Print what the Governor would change for a policy, judged on a Prometheus (dry run).
    Recommend(recommend::Args),
}

#[derive(Debug, Subcommand)]
pub enum Evaluate {
    /// Run a detector (or score another detector's results) on a NAB-format corpus.
    Nab(evaluate_nab::Args),
    /// Backtest every forecaster and the PromQL baselines on a corpus.
    Forecast(evaluate_forecast::Args),
}

/// Output format shared by the subcommands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Alert(cmd) => alert::run(cmd),
        Command::Corpus(cmd) => corpus::run(cmd),
        Command::Evaluate(Evaluate::Nab(args)) => evaluate_nab::run(args),
        Command::Evaluate(Evaluate::Forecast(args)) => evaluate_forecast::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Install(args) => install::run(args),
        Command::Run(args) => run::run(*args),
        Command::Recommend(args) => recommend::run(args),
    }
}
