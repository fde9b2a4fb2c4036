//! `zt-audit capability`: attenuate a capability token offline, or show what one grants.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_core::capability::{self, Access};
use zt_core::time::Timestamp;

/// Capability tokens (from `POST /capabilities`), without the control plane.
#[derive(Debug, clap::Subcommand)]
pub enum Capability {
    /// Narrow a token: fewer paths, no network, an earlier expiry. Prints the new token; the
    /// old one keeps working until revoked or expired (keep only what you hand on).
    Attenuate(AttenuateArgs),
    /// Show what a token grants; with --keyring, verify it (signatures, every attenuation
    /// narrowing, expiry) under those keys.
    Show(ShowArgs),
}

/// `capability attenuate`.
#[derive(Debug, clap::Args)]
pub struct AttenuateArgs {
    /// The token, or `-` to read it from standard input (a token on the command line is
    /// visible to other users in the process list).
    #[arg(value_name = "TOKEN")]
    token: String,
    /// Keep reading only below these paths (repeatable; replaces the read list). Each must be
    /// within the token's read grants.
    #[arg(long, value_name = "PATH")]
    read: Vec<String>,
    /// Keep writing only below these paths (repeatable; replaces the write list).
    #[arg(long, value_name = "PATH")]
    write: Vec<String>,
    /// Keep executing only these files or folders (repeatable; replaces the exec list).
    #[arg(long, value_name = "PATH")]
    exec: Vec<String>,
    /// Drop a kind of access entirely: read, write or exec (repeatable).
    #[arg(long, value_name = "KIND", value_parser = ["read", "write", "exec"])]
    drop: Vec<String>,
    /// Turn network access off.
    #[arg(long)]
    no_net: bool,
    /// Require the `nono` sandbox (a token that allows `process` may be narrowed to `nono`,
    /// never back).
    #[arg(long)]
    require_nono: bool,
    /// Expire this many seconds from now (never later than the token already does).
    #[arg(long, value_name = "SECONDS")]
    ttl_s: Option<u64>,
}

/// `capability show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The token, or `-` for standard input.
    #[arg(value_name = "TOKEN")]
    token: String,
    /// Verify under the keys of this keyring (the control plane's `keyring.json`).
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

fn token_arg(t: &str) -> Result<String> {
    if t == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(capability::MAX_TOKEN as u64 + 1)
            .read_to_string(&mut s)
            .context("reading the token from standard input")?;
        return Ok(s.trim().to_owned());
    }
    Ok(t.trim().to_owned())
}

pub fn run(cmd: Capability) -> Result<ExitCode> {
    match cmd {
        Capability::Attenuate(a) => attenuate(a),
        Capability::Show(a) => show(a),
    }
}

fn attenuate(a: AttenuateArgs) -> Result<ExitCode> {
    let token = token_arg(&a.token)?;
    // The current grants, as the token's last link states them (the verifier checks them).
    let current = capability::claims(&token).context("the token")?;
    let drop = a
        .drop
        .iter()
        .map(|d| d.parse::<Access>())
        .collect::<Result<_, _>>()?;
    let grants = current.grants.narrowed(&capability::Narrowing {
        read: a.read,
        write: a.write,
        exec: a.exec,
        drop,
        no_net: a.no_net,
        require_nono: a.require_nono,
    })?;
    // Grants are files: every path's text must be what it resolves to on this host (a link,
    // `/proc/self/root` say, would widen what the text seems to narrow).
    zt_broker::paths::check_on_host(&grants)?;
    let not_after = a.ttl_s.map(|s| {
        let t = Timestamp::from_unix_nanos(
            Timestamp::now().unix_nanos() + i128::from(s) * 1_000_000_000,
        );
        t.min(current.not_after)
    });
    let narrowed = capability::attenuate(&token, Some(&grants), not_after)?;
    println!("{narrowed}");
    Ok(ExitCode::SUCCESS)
}

fn show(a: ShowArgs) -> Result<ExitCode> {
    let token = token_arg(&a.token)?;
    let (cap, verified) = match &a.keyring {
        Some(path) => {
            let ring = crate::common::load_keyring(Some(path), &[])?;
            match capability::verify(&token, &ring, Timestamp::now()) {
                Ok(c) => (c, Ok(path.display().to_string())),
                Err(e) => (capability::claims(&token)?, Err(e.to_string())),
            }
        }
        None => (
            capability::claims(&token)?,
            Err("not verified (no --keyring)".to_owned()),
        ),
    };
    if a.format == "json" {
        let v = serde_json::json!({
            "id": cap.id,
            "actor": cap.actor,
            "action": cap.action,
            "resource": cap.resource,
            "grants": serde_json::from_slice::<serde_json::Value>(&zt_core::json::canonicalize(&cap.grants.to_value())).unwrap_or_default(),
            "issued_at": cap.issued_at.to_rfc3339_millis(),
            "not_after": cap.not_after.to_rfc3339_millis(),
            "issuer_key_id": cap.issuer_key_id,
            "attenuations": cap.attenuations,
            "verified": verified.is_ok(),
            "problem": verified.as_ref().err(),
        });
        println!("{v:#}");
    } else {
        let e = |s: &str| zt_core::text::escape(s).into_owned();
        println!("capability {}", e(&cap.id));
        println!("  agent     {}", e(&cap.actor));
        println!("  action    {} on {:?}", e(&cap.action), e(&cap.resource));
        println!("  grants    {}", cap.grants);
        println!(
            "  valid     {} .. {}",
            cap.issued_at.to_rfc3339_millis(),
            cap.not_after.to_rfc3339_millis()
        );
        println!(
            "  issuer    {} ({} attenuation{})",
            e(&cap.issuer_key_id),
            cap.attenuations,
            if cap.attenuations == 1 { "" } else { "s" }
        );
        match &verified {
            Ok(ring) => println!("VALID under keyring {}", e(ring)),
            Err(why) => println!("NOT VERIFIED: {}", e(why)),
        }
    }
    Ok(if verified.is_ok() || a.keyring.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
