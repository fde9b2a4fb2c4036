//! `zt-audit verify`: files in, verdict out.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zt_core::keyring::Keyring;
use zt_core::text::escape;
use zt_core::{Hash32, Profile};
use zt_verifier::{Options, Report, Verifier};

use crate::common::{print_report, Format};
use crate::style::Style;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    Auto,
    #[value(name = "zt-infra-full")]
    ZtInfraFull,
    Legacy,
    #[value(name = "hello-world")]
    HelloWorld,
    V1,
}

/// Verify audit evidence files: JSONL logs, JSON arrays, or saved HTTP responses.
///
/// Exit status: 0 every chain verifies; 1 at least one finding; 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evidence files (`-` for standard input).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Verify every chain in this store (made by `serve` or `import`), its waiting records and
    /// its quarantine: a SQLite file, or a PostgreSQL database (read-only: a streaming
    /// replica serves).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<zt_store::Location>,
    /// The keys signatures are checked with.
    #[command(flatten)]
    keys: crate::common::KeyArgs,
    /// Hashing profile; `auto` detects it per chain.
    #[arg(long, value_enum, default_value = "auto")]
    profile: ProfileArg,
    /// The hash the chain must reach (e.g. an anchored head); stopping earlier is `truncated`.
    #[arg(long, value_name = "HASH")]
    expect_head: Option<String>,
    /// Accept unsigned and mock-signed records (counted, never reported as verified).
    #[arg(long)]
    allow_unsigned: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let ring = args.keys.load()?;
    let opts = options(&args)?;
    let mut files = args.files.clone();
    if files.is_empty() && args.db.is_none() {
        if std::io::stdin().is_terminal() {
            bail!("no input: give evidence files, or `-` to read standard input (see --help)");
        }
        files.push(PathBuf::from("-"));
    }
    let mut v = Verifier::new(&ring, opts);
    read_files(&mut v, &files)?;
    if let Some(db) = &args.db {
        verify_store(&mut v, db)?;
    }
    let report = v.finish();

    print_report(args.format, &report, |out| {
        let style = Style::stdout();
        print_text(out, &report, style)?;
        let root = trust_root(&args, &ring, args.allow_unsigned);
        writeln!(out, "{}", style.dim(&root))?;
        Ok(())
    })?;
    Ok(ExitCode::from(if !report.io_errors.is_empty() {
        crate::common::EXIT_ERROR
    } else if report.ok {
        0
    } else {
        1
    }))
}

/// The verifier's options from the flags.
fn options(args: &Args) -> Result<Options> {
    let expect_head = match &args.expect_head {
        Some(h) => Some(
            Hash32::from_hex(&h.to_ascii_lowercase())
                .with_context(|| format!("--expect-head {h:?}: expected 64 hex digits"))?,
        ),
        None => None,
    };
    let profile = match args.profile {
        ProfileArg::Auto => None,
        ProfileArg::ZtInfraFull => Some(Profile::ZtInfraFull),
        ProfileArg::Legacy => Some(Profile::Legacy),
        ProfileArg::HelloWorld => Some(Profile::HelloWorld),
        ProfileArg::V1 => Some(Profile::V1),
    };
    Ok(Options {
        profile,
        expect_head,
        allow_unsigned: args.allow_unsigned,
        ..Options::default()
    })
}

/// Feeds the files (`-`: standard input) to the verifier, with a progress bar over them all.
fn read_files(v: &mut Verifier<'_>, files: &[PathBuf]) -> Result<()> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new(total);
    let mut done_before = 0u64;
    for f in files {
        let mut last = 0;
        let mut cb = |bytes: u64| {
            last = bytes;
            progress.set(done_before + bytes);
        };
        if f.as_os_str() == "-" {
            let stdin = std::io::stdin();
            if let Err(e) = v.verify_reader("<stdin>", stdin.lock(), &mut cb) {
                bail!("<stdin>: read failed: {e}");
            }
        } else {
            v.verify_path(f, &mut cb);
        }
        done_before += last;
    }
    progress.finish();
    Ok(())
}

/// The trust root this run was given, in words: a verdict means nothing without it.
pub fn trust_root(args: &Args, ring: &Keyring, allow_unsigned: bool) -> String {
    let mut from = Vec::new();
    if let Some(k) = &args.keys.keyring {
        from.push(crate::style::path(k));
    }
    if !args.keys.keys.is_empty() {
        from.push(format!("{} --key", args.keys.keys.len()));
    }
    let ids: Vec<String> = ring
        .entries()
        .iter()
        .map(|e| match &e.chains {
            Some(c) => format!("{} for {}", escape(&e.key_id), escape(&c.join(" and "))),
            None => escape(&e.key_id).into_owned(),
        })
        .collect();
    let keys = if ids.is_empty() {
        "trusted keys: none given, so no signature can verify".to_owned()
    } else {
        format!(
            "trusted keys: {} from {} ({}){}",
            ids.len(),
            from.join(" and "),
            ids.join(", "),
            if ring.binds_chains() {
                ""
            } else {
                "; the keyring binds no key to chains, so any of them may sign any chain"
            }
        )
    };
    format!(
        "{keys}; unsigned records {}",
        if allow_unsigned {
            "accepted (--allow-unsigned), never counted as verified"
        } else {
            "not accepted"
        }
    )
}

/// Verifies the store at `db` (see [`zt_ingest::verify_store`]).
fn verify_store(v: &mut Verifier<'_>, db: &zt_store::Location) -> Result<()> {
    let store = zt_store::Store::open_read_only(db)
        .with_context(|| format!("cannot open store {}", crate::style::store(db)))?;
    zt_ingest::verify_store(v, &store)
        .with_context(|| format!("reading store {}", crate::style::store(db)))
}

/// A bar on stderr for inputs that take more than a second; nothing when stderr is not a
/// terminal.
struct Progress {
    bar: ProgressBar,
    start: Instant,
    shown: std::cell::Cell<bool>,
    enabled: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} verifying {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            start: Instant::now(),
            shown: std::cell::Cell::new(false),
            enabled: std::io::stderr().is_terminal() && total > 0,
        }
    }

    fn set(&self, pos: u64) {
        if self.enabled && !self.shown.get() && self.start.elapsed() > Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
        self.bar.set_position(pos);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The report for people. Chain names, files, messages, expected and found values come from
/// the evidence, so each is shown through [`escape`]: a record cannot erase or reorder these
/// lines (`--format json` keeps the exact values).
fn print_text(out: &mut impl Write, r: &Report, s: Style) -> std::io::Result<()> {
    print_chains(out, r, s)?;
    print_findings(out, r, s)?;
    writeln!(out)?;
    print_executions(out, &r.executions, s)?;
    print_verdict(out, r, s)
}

/// One line per chain: verdict, name, records, profile, head, what was verified.
fn print_chains(out: &mut impl Write, r: &Report, s: Style) -> std::io::Result<()> {
    for c in &r.chains {
        let verdict = if c.ok { s.ok("ok  ") } else { s.bad("FAIL") };
        let head = c
            .head
            .as_deref()
            // Hex from the verifier; `get` so no other text could make this slice panic.
            .map(|h| h.get(..16).unwrap_or(h))
            .unwrap_or("-");
        let mut extra = Vec::new();
        if c.verified_signatures > 0 {
            extra.push(format!(
                "{} signatures verified ({} key{})",
                c.verified_signatures,
                c.keys.len(),
                if c.keys.len() == 1 { "" } else { "s" }
            ));
        }
        if c.unsigned_allowed > 0 {
            extra.push(s.warn(&format!(
                "{} unsigned, allowed, NOT verified",
                c.unsigned_allowed
            )));
        }
        if c.findings > 0 {
            extra.push(s.bad(&format!(
                "{} finding{}",
                c.findings,
                if c.findings == 1 { "" } else { "s" }
            )));
        }
        writeln!(
            out,
            "{verdict}  {}  {} records  {}  head {}  {}",
            s.bold(&escape(&c.chain)),
            c.records,
            escape(c.profile.as_deref().unwrap_or("?")),
            escape(head),
            extra.join(", ")
        )?;
    }
    Ok(())
}

/// Each finding with its place, kind, message, expected and found; then unreadable inputs.
fn print_findings(out: &mut impl Write, r: &Report, s: Style) -> std::io::Result<()> {
    if !r.findings.is_empty() {
        writeln!(out)?;
    }
    for f in &r.findings {
        writeln!(
            out,
            "{}  record {} (line {})  {}",
            s.bold(&escape(&f.file)),
            f.index,
            f.line,
            s.bad(f.kind.name())
        )?;
        writeln!(out, "    {}", escape(&f.message))?;
        if !f.expected.is_empty() || !f.found.is_empty() {
            writeln!(out, "    {} {}", s.dim("expected"), escape(&f.expected))?;
            writeln!(out, "    {}    {}", s.dim("found"), escape(&f.found))?;
        }
    }
    for e in &r.io_errors {
        writeln!(out, "{} {}", s.bad("error:"), escape(e))?;
    }
    Ok(())
}

/// What the execution records amount to: attested, vouched for, not accepted.
fn print_executions(
    out: &mut impl Write,
    x: &zt_verifier::Executions,
    s: Style,
) -> std::io::Result<()> {
    if x.attested + x.vouched + x.not_accepted > 0 {
        let mut parts = Vec::new();
        if x.attested > 0 {
            parts.push(format!(
                "{} attested by a broker (its signature checked here under the key its registration on the control plane's chain states: {})",
                x.attested,
                escape(&x.brokers.join(", "))
            ));
        }
        if x.vouched > 0 {
            parts.push(format!(
                "{} attested by a broker as the control plane checked at filing (no broker registration in what was read, so not checked again here)",
                x.vouched
            ));
        }
        if x.not_accepted > 0 {
            parts.push(format!(
                "{} report{} not accepted (an agent's own claim, or a broker's report that failed a check): evidence of an attempt, not of an execution",
                x.not_accepted,
                if x.not_accepted == 1 { "" } else { "s" }
            ));
        }
        writeln!(out, "{} {}", s.bold("executions:"), parts.join("; "))?;
    }
    Ok(())
}

/// The last line: OK, or FAILED with how much.
fn print_verdict(out: &mut impl Write, r: &Report, s: Style) -> std::io::Result<()> {
    let nchains = r.chains.len();
    let bad = r.chains.iter().filter(|c| !c.ok).count();
    if nchains == 0 && !r.ok {
        writeln!(
            out,
            "{} {} finding{}, no readable chain ({} records)",
            s.bad("FAILED:"),
            r.findings.len() + r.io_errors.len(),
            if r.findings.len() + r.io_errors.len() == 1 {
                ""
            } else {
                "s"
            },
            r.records
        )?;
    } else if r.ok {
        writeln!(
            out,
            "{} {} records in {nchains} chain{} verify",
            s.ok("OK:"),
            r.records,
            if nchains == 1 { "" } else { "s" }
        )?;
    } else {
        writeln!(
            out,
            "{} {} finding{} in {bad} of {nchains} chain{} ({} records){}",
            s.bad("FAILED:"),
            r.findings.len(),
            if r.findings.len() == 1 { "" } else { "s" },
            if nchains == 1 { "" } else { "s" },
            r.records,
            if r.io_errors.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable input(s)", r.io_errors.len())
            }
        )?;
    }
    Ok(())
}
