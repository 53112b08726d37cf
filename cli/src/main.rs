//! `tower-mesh`: checks Istio routing rules the way the tower-mesh crate loads them, and
//! explains how a request would be routed. Run `tower-mesh --help`.

mod args;
mod check;
mod explain;
mod json;

use std::process::ExitCode;

use args::{Command, Parsed};

const HELP: &str = "\
tower-mesh: Istio routing rules, checked and explained offline, as the tower-mesh crate reads them

Usage:
  tower-mesh check [-n NAMESPACE] [--format text|json] [--deny-warnings] FILE...
  tower-mesh explain FILE... --target HOST [-H 'name: value']... [--seed N]
                     [--gateway NAME] [--port N] [--source-label KEY=VALUE]... METHOD URI
  tower-mesh --help | --version

check    Loads the files as one rule set (Istio's RouteRule, VirtualService, DestinationRule;
         the Gateway API's HTTPRoute and GRPCRoute; YAML or JSON) and prints every error and
         warning with its file, document, line and field. -n NS gives documents without a
         namespace the namespace NS.
         Exit status: 0 when the rules load, 1 when they do not (or, with --deny-warnings,
         when there is a warning), 2 for a usage error.
         --format json prints one JSON object per line for each finding.

explain  Loads the files, evaluates one request for the service HOST, and prints the
         decision with the evaluation rule by rule: the conditions tested, the fault draws,
         and for weighted routes the number drawn and each destination's range of the
         cumulative weights. --seed N makes the draws repeatable.
         Exit status: 0 when it explains, 1 when the rules do not load, 2 for a usage error.

Run `tower-mesh check --help` or `tower-mesh explain --help` for one command.
";

fn main() -> ExitCode {
    // Read as the system gives them, so that an argument that is not UTF-8 is a usage error,
    // not a panic.
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(bad) => {
                let shown = bad.to_string_lossy().escape_debug().to_string();
                eprintln!(
                    "tower-mesh: the argument \"{shown}\" is not valid UTF-8\nRun `tower-mesh --help` for the usage."
                );
                return ExitCode::from(2);
            }
        }
    }
    match args::parse(args.into_iter()) {
        Ok(Parsed::Help(text)) => {
            print!("{}", text.unwrap_or(HELP));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Version) => {
            println!("tower-mesh {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(Command::Check(c))) => check::run(&c),
        Ok(Parsed::Run(Command::Explain(e))) => explain::run(&e),
        Err(problem) => {
            eprintln!("tower-mesh: {problem}\nRun `tower-mesh --help` for the usage.");
            ExitCode::from(2)
        }
    }
}
