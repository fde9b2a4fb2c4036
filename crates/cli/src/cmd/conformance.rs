//! `zt-audit conformance`: does a control plane (or a guarded client) keep the contract?

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_conformance::{target, Report};

/// Run the contract's cases against a control plane (`--target`), or against a guarded
/// client (`client -- CMD`). Exit 0: every case passed; 1: a case failed; 2: could not run.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    client: Option<Sub>,
    /// The control plane's base URL.
    #[arg(long, value_name = "URL", required = false)]
    target: Option<String>,
    /// Its admin token (omit for an open-mode control plane).
    #[arg(
        long,
        value_name = "T",
        env = "ZT_CP_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The keyring its decisions must verify under (the trust root you give; the target's
    /// own /keyring.json is never taken). Without it `envelopes_verify` fails.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// `text` or `json` (`{ok, cases: [{name, ok, message}]}`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Run a guarded client against a scripted, misbehaving control plane: CMD runs once per
    /// case with ZT_CONFORMANCE_URL, _KEYRING, _ACTOR, _ACTION, _RESOURCE, _TIMEOUT_MS and
    /// _MARKER in its environment, and must create the marker file only on a verified allow.
    Client {
        /// `text` or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// The client command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
}

fn print(report: &Report, format: &str, root: &str) -> Result<ExitCode> {
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.to_text());
        println!("{}", zt_core::text::escape(root));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    let rt = crate::common::runtime()?;
    match args.client {
        Some(Sub::Client { format, command }) => {
            let report = rt.block_on(zt_conformance::client::run_command(&command))?;
            print(
                &report,
                &format,
                "trust root: the scripted control plane's own key (the client under test pins it)",
            )
        }
        None => {
            let Some(url) = args.target else {
                anyhow::bail!("--target URL is required (or `conformance client -- CMD`)");
            };
            let keyring = match &args.keyring {
                Some(p) => Some(
                    std::fs::read(p)
                        .with_context(|| format!("cannot read keyring {}", p.display()))?,
                ),
                None => None,
            };
            let root = match &args.keyring {
                Some(p) => format!("trust root: keyring {} (given with --keyring)", p.display()),
                None => "trust root: none given (--keyring): no signature was checked".to_owned(),
            };
            let t = target::Target {
                url,
                admin_token: args.admin_token,
                keyring,
            };
            let report = rt.block_on(target::run(&t))?;
            print(&report, &args.format, &root)
        }
    }
}
