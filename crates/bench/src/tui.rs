//! `zt-bench tui`: how fast the browser is on a big store.
//!
//! Builds a store of `--records` decisions (100 interleaved chains, one second apart, unsigned:
//! signatures do not matter to browsing), then measures, `--runs` times, the time from opening
//! the store to the first drawn screen (120x40), and the time each keystroke takes to handle and
//! redraw, by kind of key. Drawing goes to ratatui's TestBackend: the terminal's own output time
//! is not included.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use rayon::prelude::*;
use zt_core::envelope::V1Draft;
use zt_core::keyring::Keyring;
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_store::Store;
use zt_tui::app::{App, Key};
use zt_tui::ui::{draw, Theme};

#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    /// Records in the store.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Timed runs (medians reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const CHAINS: usize = 100;

fn build(db: &Path, n: usize) -> Result<()> {
    let mut store = Store::open(db)?;
    store.set_synchronous(false)?;
    // The records are unsigned (signing 100k of them would time the set-up, not the browser);
    // a store that lets them count places them on main lines, as signed ones would be, so the
    // browser pages what a real store holds rather than one branch per record.
    store.set_trust(zt_core::chain::TrustPolicy {
        allow_unsigned: zt_core::chain::AllowUnsigned::Everywhere,
    });
    let per = n.div_ceil(CHAINS);
    let mut prev = vec![Hash32::ZERO; CHAINS];
    let ring = Keyring::new();
    let actions = crate::data::ACTIONS;
    for seq in (0..per).step_by(100) {
        let upto = (seq + 100).min(per);
        // One batch: 100 positions of every chain, sealed in parallel per chain.
        let sealed: Vec<Vec<(Vec<u8>, Hash32)>> = (0..CHAINS)
            .into_par_iter()
            .map(|c| {
                let mut p = prev[c];
                (seq..upto)
                    .map(|s| {
                        let i = s * CHAINS + c;
                        let action = actions[i % actions.len()];
                        let deny = action.starts_with("aws.") || action.starts_with("shell.");
                        let d = V1Draft {
                            chain_id: format!("bench-{c:03}"),
                            seq: s as u64,
                            actor: format!("agent-{}", i % 37),
                            action: action.into(),
                            resource: format!("bench/{i}"),
                            decision: if deny { "deny" } else { "allow" }.into(),
                            reason: if deny {
                                "dangerous action denied by default"
                            } else {
                                "allowed by policy"
                            }
                            .into(),
                            timestamp: Timestamp::from_unix_nanos(
                                1_790_000_000_000_000_000
                                    + i128::try_from(i).unwrap_or(0) * 1_000_000_000,
                            )
                            .to_rfc3339_millis(),
                            previous_hash: p,
                            context: None,
                        }
                        .seal(None);
                        p = d.current_hash;
                        (d.json.into_bytes(), d.current_hash)
                    })
                    .collect()
            })
            .collect();
        let mut batch = Vec::with_capacity(CHAINS * 100);
        for (c, recs) in sealed.into_iter().enumerate() {
            if let Some(last) = recs.last() {
                prev[c] = last.1;
            }
            batch.extend(recs.into_iter().map(|r| r.0));
        }
        zt_ingest::Pipeline::new(&ring).ingest(&mut store, &batch, "bench")?;
    }
    Ok(())
}

fn typed(s: &str) -> Vec<Key> {
    s.chars().map(Key::Char).collect()
}

/// Presses keys and times each key's handling and redraw.
struct Keys<'a> {
    term: &'a mut Terminal<TestBackend>,
    per_key: &'a mut BTreeMap<&'static str, Vec<f64>>,
    theme: Theme,
}

impl Keys<'_> {
    fn press(&mut self, label: &'static str, keys: &[Key], app: &mut App) -> Result<()> {
        let theme = self.theme;
        for key in keys {
            let t = Instant::now();
            app.key(*key)?;
            self.term.draw(|f| draw(f, app, "tui.db", theme))?;
            self.per_key.entry(label).or_default().push(ms(t.elapsed()));
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(a: TuiArgs) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("tui.db");
    let t = Instant::now();
    build(&db, a.records).context("building the store")?;
    let n = Store::open(&db)?.count_records()?;
    eprintln!("built {n} records in {:.1} s", t.elapsed().as_secs_f64());
    let theme = Theme { color: true };
    let mut open = Vec::new();
    let mut per_key: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut whole_scan = Vec::new();
    for _ in 0..a.runs.max(1) {
        let mut term = Terminal::new(TestBackend::new(120, 40))?;
        let t = Instant::now();
        let mut app = App::new(Store::open(&db)?)?;
        term.draw(|f| draw(f, &mut app, "tui.db", theme))?;
        open.push(ms(t.elapsed()));
        let mut k = Keys {
            term: &mut term,
            per_key: &mut per_key,
            theme,
        };
        k.press("down (j), 2,000 times", &[Key::Down; 2000], &mut app)?;
        k.press("page down, 300 times", &[Key::PageDown; 300], &mut app)?;
        k.press("page up, 100 times", &[Key::PageUp; 100], &mut app)?;
        k.press("end (oldest)", &[Key::End], &mut app)?;
        k.press("home (newest)", &[Key::Home], &mut app)?;
        k.press("typing a filter", &typed("/terminate_instances"), &mut app)?;
        k.press("apply filter (20% match)", &[Key::Enter], &mut app)?;
        k.press("page down, filtered", &[Key::PageDown; 50], &mut app)?;
        k.press("clear filter", &[Key::Esc], &mut app)?;
        k.press(
            "deny only on/off",
            &[Key::Char('d'), Key::Char('d')],
            &mut app,
        )?;
        k.press("typing a filter", &typed("/no-such-actor"), &mut app)?;
        k.press("apply filter (no match yet)", &[Key::Enter], &mut app)?;
        // The rest of that scan happens in idle steps; each is a frame the user waits for.
        let t_all = Instant::now();
        loop {
            let t = Instant::now();
            let busy = app.pump()?;
            k.term.draw(|f| draw(f, &mut app, "tui.db", theme))?;
            k.per_key
                .entry("idle scan step + redraw")
                .or_default()
                .push(ms(t.elapsed()));
            if !busy {
                break;
            }
        }
        whole_scan.push(t_all.elapsed().as_secs_f64());
        k.press("clear filter", &[Key::Esc], &mut app)?;
        k.press("open detail", &[Key::Enter], &mut app)?;
        k.press("close detail", &[Key::Esc], &mut app)?;
        k.press("open chains view", &[Key::Char('c')], &mut app)?;
        k.press("open anchors view", &[Key::Char('a')], &mut app)?;
    }
    println!(
        "terminal browser on a {n}-record store (100 chains), 120x40, {} runs",
        a.runs.max(1)
    );
    println!("{:<36} {:>9} {:>9} {:>9}", "", "p50 ms", "p99 ms", "max ms");
    let o = crate::stats::median(open.iter().copied());
    println!(
        "a filter matching nothing: all {n} records scanned in {:.2} s (median), in idle steps",
        crate::stats::median(whole_scan.iter().copied())
    );
    println!(
        "{:<36} {:>9.1} {:>9} {:>9}",
        "open store to first screen (median)", o, "", ""
    );
    for (label, mut v) in per_key {
        v.sort_by(f64::total_cmp);
        let p = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into a short vector"
            )]
            let i = (((v.len() - 1) as f64) * q).round() as usize;
            v[i]
        };
        println!(
            "{label:<36} {:>9.2} {:>9.2} {:>9.2}",
            p(0.5),
            p(0.99),
            v[v.len() - 1]
        );
    }
    Ok(ExitCode::SUCCESS)
}
