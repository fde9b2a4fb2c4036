//! `zt-audit keygen`: a P-256 key pair for a v1 producer, and its keyring entry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use zt_core::crypto::SigningKey;
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::Hash32;

/// Create a P-256 key pair: private.pem (PKCS#8, mode 0600), public.pem (SPKI), keyring.json.
///
/// Existing files are never overwritten.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key id recorded in envelopes; default `zt-` and the first 16 hex digits of the
    /// SHA-256 of the public key (SPKI DER).
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let private = args.out.join("private.pem");
    let public = args.out.join("public.pem");
    let ring_path = args.out.join("keyring.json");
    for p in [&private, &public, &ring_path] {
        if p.exists() {
            bail!(
                "{} exists; refusing to overwrite a key (choose another --out)",
                p.display()
            );
        }
    }
    let key = SigningKey::generate();
    let pk = key.public_key();
    let key_id = match args.key_id {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => bail!("--key-id is empty"),
        None => {
            let fp = Hash32::digest(&pk.sec1_uncompressed());
            format!("zt-{}", &fp.to_hex()[..16])
        }
    };
    write_private(
        &private,
        &key.to_pkcs8_pem().context("encoding the private key")?,
    )?;
    std::fs::write(&public, pk.to_pem())
        .with_context(|| format!("writing {}", public.display()))?;
    let mut ring = Keyring::new();
    ring.insert(KeyEntry::new(key_id.clone(), pk))
        .context("keyring")?;
    let doc = serde_json::to_string_pretty(&ring.to_json()).context("keyring")?;
    std::fs::write(&ring_path, doc + "\n")
        .with_context(|| format!("writing {}", ring_path.display()))?;
    // A key id with a control character in it goes into every record it signs: show it
    // escaped now, as every report will.
    println!("key_id   {}", zt_core::text::escape(&key_id));
    println!(
        "private  {}  (mode 0600: keep it secret)",
        crate::style::path(&private)
    );
    println!("public   {}", crate::style::path(&public));
    println!("keyring  {}", crate::style::path(&ring_path));
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &Path, pem: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}
