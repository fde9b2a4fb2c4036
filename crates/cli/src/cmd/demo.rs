//! `zt-audit demo`: the five-minute quickstart (`zt_demo::run`), rendered for people.
//!
//! Everything shown that the control plane, the stores or the file system hand back (ids,
//! reasons, the envelope, paths) goes through `zt_core::text::escape`, as in every report:
//! a directory reused from an earlier run is evidence like any other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_core::text::escape;
use zt_demo::{Anchoring, Event, Step, Summary, AGENT, DANGEROUS, GREETING, HELLO, STEPS};

use crate::style::{path, Style};

/// The five-minute quickstart: a control plane and an ingest on loopback, an agent denied,
/// a narrow policy, an allowed action, its signed envelope, a verified store.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the stores go (default: a new directory, printed).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The local chain node for the anchoring steps (default: env ZT_ANVIL, else anvil on
    /// PATH, else node_modules/.bin/anvil here or in the source tree, which
    /// scripts/npm-tools.sh installs). Without one those steps are skipped, and said so.
    #[arg(long, value_name = "PATH")]
    anvil: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("zt-audit-demo-")
            .tempdir()
            .context("creating the demo directory")?
            .keep(),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut out = Render {
        style: Style::stdout(),
        step: 0,
    };
    println!(
        "{}",
        out.style
            .bold("zt-audit demo: the control point in five minutes, on loopback only")
    );
    println!("data directory: {}", path(&dir));
    let rt = crate::common::runtime()?;
    let summary = rt.block_on(zt_demo::run(&dir, args.anvil.as_deref(), &mut |e| {
        out.event(&e);
    }))?;
    next_steps(&out.style, &summary);
    std::io::stdout().flush()?;
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints events as they come: numbered steps, indented lines.
struct Render {
    style: Style,
    step: u32,
}

impl Render {
    fn step(&mut self, text: &str) {
        self.step += 1;
        println!(
            "\n{} {text}",
            self.style.bold(&format!("[{}/{STEPS}]", self.step))
        );
    }

    fn line(&self, text: &str) {
        println!("      {text}");
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Step(s) => self.step(&step_title(s)),
            Event::Started {
                control_plane,
                key_id,
                chain_id,
                ingest_url,
                ingest_db,
            } => {
                self.line(&format!(
                    "control plane  {control_plane}  (Cedar, deny by default; open mode: loopback, no tokens)"
                ));
                self.line(&format!(
                    "signing key    {}  chain {}",
                    escape(key_id),
                    escape(chain_id)
                ));
                self.line(&format!("ingest         {ingest_url}  -> {}", path(ingest_db)));
            }
            Event::Registered { chain_id, seq } => self.line(&format!(
                "POST /agents -> 201 Created; the registration is a signed record too, on the control plane's own chain {} (seq {})",
                escape(chain_id),
                seq.map_or_else(|| "null".to_owned(), |s| s.to_string())
            )),
            Event::AlreadyRegistered => {
                self.line("POST /agents -> 409: already registered by an earlier run in this directory");
            }
            Event::Denied { status, reason } => self.line(&format!(
                "{} (HTTP {status}): {}",
                self.style.bad("DENIED"),
                escape(reason)
            )),
            Event::Refused { error } => self.line(&format!("refused: {}", escape(error))),
            Event::ActionRan { output } => self.line(output),
            Event::ActionDidNotRun => self.line("the action did not run"),
            Event::PolicyApplied { version } => self.line(&format!(
                "POST /policies -> 201; policy set {}",
                escape(version)
            )),
            Event::PolicyAlreadyApplied => {
                self.line("POST /policies -> 409: already applied by an earlier run");
            }
            Event::Allowed { reason } => {
                self.line(&format!("{}: {}", self.style.ok("ALLOWED"), escape(reason)));
            }
            // JSON escapes C0 controls but not DEL, C1, bidi or zero-width characters: this
            // is text for people, so it is escaped like any other.
            Event::Envelope { pretty } => pretty.lines().for_each(|l| self.line(&escape(l))),
            _ => self.later(e),
        }
    }

    /// Step 7.
    fn later(&self, e: &Event) {
        match e {
            Event::StoresVerified {
                db,
                records,
                chains,
            } => self.line(&format!(
                "{}: {} ({records} records, {chains} chain{}, every hash, link and signature verified; same as the control plane's own store)",
                self.style.ok("OK"),
                path(db),
                if *chains == 1 { "" } else { "s" },
            )),
            Event::StoresFailed {
                ingest_records,
                ingest_findings,
                control_plane_records,
                control_plane_findings,
                errors,
            } => {
                self.line(&format!(
                    "{}: ingest {ingest_records} records ({ingest_findings} findings), control plane {control_plane_records} records ({control_plane_findings} findings)",
                    self.style.bad("FAILED"),
                ));
                errors.iter().for_each(|e| self.line(&escape(e)));
            }
            Event::ClientExportPending => self.line(
                "(the guarded client's own re-export had not finished; the control plane's did)",
            ),
            _ => self.anchoring(e),
        }
    }

    /// Steps 8 and 9.
    fn anchoring(&self, e: &Event) {
        match e {
            Event::AnvilStarted {
                binary,
                source,
                pid,
            } => self.line(&format!("anvil {} (from {source}), pid {pid}", path(binary))),
            Event::AnchorSkipped { reason } => {
                self.line(&format!("skipped: {}", escape(reason)));
                self.line("(Base Sepolia itself: see docs/anchoring.md)");
            }
            Event::Deployed { contract, gas, url } => {
                self.line(&format!("ZtAnchor deployed at {contract} ({gas} gas) on {url}"));
            }
            Event::Anchored {
                epoch,
                log,
                root,
                leaves,
                tx,
                block,
                state,
            } => {
                self.line(&format!(
                    "epoch {epoch} of log {log}: root {root} over {leaves} chain head(s)"
                ));
                self.line(&format!(
                    "tx {} in block {} ({state})",
                    escape(tx.as_deref().unwrap_or("-")),
                    block.unwrap_or(0)
                ));
            }
            Event::ReconcileFailed { findings } => self.line(&format!(
                "{}: {findings} finding(s)",
                self.style.bad("FAILED")
            )),
            Event::Reconciled { epochs, records } => self.line(&format!(
                "{}: {epochs} epoch(s) confirmed on chain, {records} record(s) checked against the anchored heads",
                self.style.ok("reconcile OK"),
            )),
            Event::Proven {
                record,
                links,
                block,
                signatures,
                path: proof,
            } => {
                self.line(&format!(
                    "{}: record {record} -> {links} link(s) -> head -> inclusion proof -> root -> tx in block {block} ({signatures} signature(s) verified under the keyring; contract and writer pinned)",
                    self.style.ok("proof VALID"),
                ));
                self.line(&format!(
                    "written to {} (`zt-audit verify-proof` checks it offline; this node stops with the demo)",
                    path(proof)
                ));
            }
            _ => {}
        }
    }
}

fn step_title(s: &Step) -> String {
    match s {
        Step::Start => "start a control plane and an ingest".into(),
        Step::Register => format!("register {AGENT}"),
        Step::AskDangerous => format!("{AGENT} asks to run {DANGEROUS} on i-0demo"),
        Step::Policy => format!("apply a narrow policy: allow {HELLO} on {GREETING}"),
        Step::AskHello => format!("{AGENT} asks to run {HELLO} on {GREETING}"),
        Step::Envelope { chain_id, seq } => format!(
            "the signed envelope of that decision (chain {}, seq {seq})",
            escape(chain_id)
        ),
        Step::Verify => "verify the ingest store".into(),
        Step::Anchor => {
            "anchor the ingest store's chain heads on a local chain (anvil, chain id 84532)".into()
        }
        Step::ReconcileProve => {
            "reconcile the store with the chain, and prove the allowed decision".into()
        }
        Step::ReconcileSkipped => "reconcile and prove: skipped (no local chain node)".into(),
    }
}

/// The commands to try next: only those whose inputs exist (the proof only when written).
fn next_steps(style: &Style, s: &Summary) {
    let rel = |p: &Path| path(p);
    println!(
        "\n{} in {:.1} s. Next:",
        style.bold("done"),
        s.elapsed.as_secs_f64()
    );
    println!(
        "  zt-audit verify --db {} --keyring {}",
        rel(&s.ingest_db),
        rel(&s.keyring)
    );
    println!(
        "  zt-audit verify --db {} --keyring {}   # the control plane's own copy",
        rel(&s.control_plane_db()),
        rel(&s.keyring)
    );
    if let Anchoring::Proven(proof) = &s.anchoring {
        // Offline: the demo's node stops with it, so no --rpc (and no --contract/--writer).
        println!(
            "  zt-audit verify-proof {} --keyring {}   # offline: the demo's node is gone",
            rel(proof),
            rel(&s.keyring)
        );
    }
    println!(
        "  zt-audit control-plane --dir {} --open      # the same control plane, to try your own agents",
        rel(&s.control_plane_dir)
    );
}
