//! The browser's state and what each key does; no terminal here, so every behaviour is
//! testable with a `TestBackend`.
//!
//! The decisions list keeps a window of rows around the cursor and fetches pages by keyset
//! (`(ts_ms, id)` before or after the window's ends) as the cursor moves: a million rows
//! scroll without ever being loaded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zt_core::{Envelope, Hash32};
use zt_store::{DecisionRow, EpochRow, Filter, Line, Page, RecordDetail, Store, StoreError};

/// Rows fetched per page.
pub const PAGE: usize = 200;
/// Most rows kept in the window.
const WINDOW: usize = 1000;
/// Rows a text filter looks at per step.
const SCAN_CHUNK: usize = 4000;
/// Time a text filter may take per keystroke or idle step, so the screen stays responsive.
const SCAN_BUDGET: Duration = Duration::from_millis(25);

/// A text filter's scan through the store, newest to oldest, a bounded step at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Where the next step starts (`None`: from the newest row).
    pub resume: Option<(i64, i64)>,
    /// Rows looked at so far.
    pub scanned: u64,
    /// Keep scanning to the oldest row (`G` was pressed).
    pub to_end: bool,
}

/// Which screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The decisions table.
    Decisions,
    /// One decision.
    Detail,
    /// Chains.
    Chains,
    /// Anchor epochs.
    Anchors,
}

/// Keys the browser understands (the terminal layer maps its events onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Tab.
    Tab,
}

/// A chain, for the chains view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// Name.
    pub chain: String,
    /// Records.
    pub records: u64,
    /// Head position and hash.
    pub head: Option<(u64, Hash32)>,
    /// Highest anchored position (any log).
    pub anchored: Option<u64>,
    /// Records off the main line (forks, unverified records, breaks, and what follows them).
    pub off_main: u64,
}

/// What the detail view shows.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The stored record.
    pub record: RecordDetail,
    /// The envelope pretty-printed (member order kept).
    pub pretty: String,
    /// Verification lines: (what, ok?, text).
    pub checks: Vec<(String, bool, String)>,
    /// Anchoring lines.
    pub anchoring: Vec<String>,
    /// Scroll offset.
    pub scroll: u16,
}

/// The whole state.
#[derive(Debug)]
pub struct App {
    store: Store,
    /// The current screen.
    pub view: View,
    /// Rows in the window, newest first.
    pub rows: Vec<DecisionRow>,
    /// Cursor in `rows`.
    pub cursor: usize,
    /// Whether the window starts at the newest row.
    pub at_top: bool,
    /// Whether the window ends at the oldest row.
    pub at_bottom: bool,
    /// The filter as typed.
    pub filter_text: String,
    /// The filter applied.
    pub filter: Filter,
    /// Typing a filter.
    pub editing: bool,
    /// `d`: deny only.
    pub deny_only: bool,
    /// `?`: help shown.
    pub help: bool,
    /// The detail view.
    pub detail: Option<Detail>,
    /// The chains view.
    pub chains: Vec<ChainInfo>,
    /// The anchors view.
    pub epochs: Vec<EpochRow>,
    /// Cursor in the chains or anchors view.
    pub list_cursor: usize,
    /// Highest row id seen (live updates).
    pub last_id: i64,
    /// New rows arrived while scrolled away from the top.
    pub new_rows: bool,
    /// Rows visible (set by the renderer; paging uses it).
    pub page_rows: usize,
    /// A message for the status line (errors, notes).
    pub message: Option<String>,
    /// The text filter's scan, while it has not reached the oldest row.
    pub scan: Option<Scan>,
    /// Rows the last text filter looked at (for the status line).
    pub scanned: u64,
    /// `q` was pressed.
    pub quit: bool,
}

impl App {
    /// Opens the browser on `store`: the newest page.
    pub fn new(store: Store) -> Result<Self, StoreError> {
        let mut app = App {
            store,
            view: View::Decisions,
            rows: Vec::new(),
            cursor: 0,
            at_top: true,
            at_bottom: false,
            filter_text: String::new(),
            filter: Filter::default(),
            editing: false,
            deny_only: false,
            help: false,
            detail: None,
            chains: Vec::new(),
            epochs: Vec::new(),
            list_cursor: 0,
            last_id: 0,
            new_rows: false,
            page_rows: 20,
            message: None,
            scan: None,
            scanned: 0,
            quit: false,
        };
        app.last_id = app.store.max_record_id()?;
        app.reload()?;
        Ok(app)
    }

    fn effective_filter(&self) -> Filter {
        let mut f = self.filter.clone();
        if self.deny_only {
            f.decision = Some("deny".into());
        }
        f
    }

    /// Reloads the newest page under the current filter.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.cursor = 0;
        self.at_top = true;
        self.new_rows = false;
        if self.text_mode() {
            self.rows.clear();
            self.at_bottom = false;
            self.scanned = 0;
            self.scan = Some(Scan::default());
            return self.scan_step(self.cursor + PAGE);
        }
        self.scan = None;
        self.rows = self
            .store
            .decisions(&self.effective_filter(), Page::Newest, PAGE)?;
        self.at_bottom = self.rows.len() < PAGE;
        Ok(())
    }

    /// Whether free-text terms are filtering: they cannot use an index, so the store is
    /// scanned a bounded step at a time.
    pub fn text_mode(&self) -> bool {
        !self.filter.text.is_empty()
    }

    /// Scans on, within the time budget, until more than `want` rows are found (or, after
    /// `G`, to the end) or the store ends.
    fn scan_step(&mut self, want: usize) -> Result<(), StoreError> {
        let start = Instant::now();
        let filter = self.effective_filter();
        while let Some(mut scan) = self.scan {
            if (self.rows.len() > want && !scan.to_end) || start.elapsed() >= SCAN_BUDGET {
                break;
            }
            let step = self
                .store
                .scan_decisions(&filter, scan.resume, SCAN_CHUNK)?;
            self.rows.extend(step.rows);
            scan.scanned += step.scanned;
            self.scanned = scan.scanned;
            scan.resume = step.resume;
            if scan.resume.is_none() {
                self.scan = None;
                self.at_bottom = true;
                if scan.to_end {
                    self.cursor = self.rows.len().saturating_sub(1);
                }
            } else {
                self.scan = Some(scan);
            }
        }
        Ok(())
    }

    /// Idle work: a text filter's scan goes on while the user reads. True while there is
    /// more to do right now.
    pub fn pump(&mut self) -> Result<bool, StoreError> {
        let want = self.cursor + self.page_rows.max(1) * 2;
        if self.scan.is_some() {
            self.scan_step(want)?;
        }
        Ok(self
            .scan
            .is_some_and(|s| s.to_end || self.rows.len() <= want))
    }

    /// The selected row.
    pub fn selected(&self) -> Option<&DecisionRow> {
        self.rows.get(self.cursor)
    }

    fn load_older(&mut self) -> Result<(), StoreError> {
        if self.text_mode() {
            let want = self.rows.len() + PAGE;
            return self.scan_step(want);
        }
        let Some(last) = self.rows.last() else {
            return Ok(());
        };
        let more = self.store.decisions(
            &self.effective_filter(),
            Page::Older(last.ts_ms, last.id),
            PAGE,
        )?;
        self.at_bottom = more.len() < PAGE;
        self.rows.extend(more);
        if self.rows.len() > WINDOW && !self.text_mode() {
            let cut = self.rows.len() - WINDOW;
            self.rows.drain(..cut);
            self.cursor = self.cursor.saturating_sub(cut);
            self.at_top = false;
        }
        Ok(())
    }

    fn load_newer(&mut self) -> Result<(), StoreError> {
        let Some(first) = self.rows.first() else {
            return Ok(());
        };
        let more = self.store.decisions(
            &self.effective_filter(),
            Page::Newer(first.ts_ms, first.id),
            PAGE,
        )?;
        self.at_top = more.len() < PAGE;
        let n = more.len();
        let mut rows = more;
        rows.append(&mut self.rows);
        self.rows = rows;
        self.cursor += n;
        if self.rows.len() > WINDOW {
            self.rows.truncate(WINDOW);
            self.at_bottom = false;
        }
        Ok(())
    }

    /// Moves the cursor by `delta` rows, fetching pages as needed.
    pub fn move_by(&mut self, delta: isize) -> Result<(), StoreError> {
        if delta > 0 {
            // Distance from the cursor: loading may trim the window's front and move it.
            let step = delta.unsigned_abs();
            while self.cursor + step >= self.rows.len() && !self.at_bottom {
                let before = (self.rows.len(), self.cursor);
                self.load_older()?;
                if self.scan.is_some() {
                    // One bounded step per key; the scan goes on while the user reads.
                    break;
                }
                if (self.rows.len(), self.cursor) == before {
                    self.at_bottom = true;
                }
            }
            self.cursor = (self.cursor + step).min(self.rows.len().saturating_sub(1));
        } else {
            let back = delta.unsigned_abs();
            while back > self.cursor && !self.at_top {
                self.load_newer()?;
            }
            self.cursor = self.cursor.saturating_sub(back);
        }
        Ok(())
    }

    /// To the oldest rows.
    pub fn to_end(&mut self) -> Result<(), StoreError> {
        if let Some(scan) = &mut self.scan {
            // Scan on to the end, a step per idle moment; the cursor follows when it is done.
            scan.to_end = true;
            return Ok(());
        }
        if self.text_mode() {
            self.cursor = self.rows.len().saturating_sub(1);
            return Ok(());
        }
        self.rows = self
            .store
            .decisions(&self.effective_filter(), Page::Oldest, PAGE)?;
        self.at_bottom = true;
        self.at_top = self.rows.len() < PAGE;
        self.cursor = self.rows.len().saturating_sub(1);
        Ok(())
    }

    /// Live updates: new rows appear at the top when the user is there.
    pub fn tick(&mut self) -> Result<(), StoreError> {
        let max = self.store.max_record_id()?;
        if max == self.last_id {
            return Ok(());
        }
        self.last_id = max;
        if self.view == View::Decisions && self.at_top && self.cursor == 0 && !self.editing {
            self.reload()?;
        } else {
            self.new_rows = true;
        }
        Ok(())
    }

    /// Handles one key.
    pub fn key(&mut self, k: Key) -> Result<(), StoreError> {
        self.message = None;
        if self.help {
            self.help = false;
            return Ok(());
        }
        if self.editing {
            match k {
                Key::Enter => {
                    self.editing = false;
                    self.filter = Filter::parse(&self.filter_text);
                    self.reload()?;
                }
                Key::Esc => {
                    self.editing = false;
                    self.filter_text.clear();
                    self.filter = Filter::default();
                    self.reload()?;
                }
                Key::Backspace => {
                    self.filter_text.pop();
                }
                Key::Char(c) => self.filter_text.push(c),
                _ => {}
            }
            return Ok(());
        }
        let page = isize::try_from(self.page_rows.max(1)).unwrap_or(20);
        match (self.view, k) {
            (_, Key::Char('q')) => self.quit = true,
            (_, Key::Char('?')) => self.help = true,
            (View::Decisions, Key::Char('/')) => {
                self.editing = true;
                self.filter_text.clear();
            }
            (View::Decisions, Key::Esc) if !self.filter.is_empty() => {
                self.filter_text.clear();
                self.filter = Filter::default();
                self.reload()?;
            }
            (View::Decisions, Key::Char('d')) => {
                self.deny_only = !self.deny_only;
                self.reload()?;
            }
            (View::Decisions, Key::Down | Key::Char('j')) => self.move_by(1)?,
            (View::Decisions, Key::Up | Key::Char('k')) => self.move_by(-1)?,
            (View::Decisions, Key::PageDown | Key::Char(' ')) => self.move_by(page)?,
            (View::Decisions, Key::PageUp) => self.move_by(-page)?,
            (View::Decisions, Key::Home | Key::Char('g')) => self.reload()?,
            (View::Decisions, Key::End | Key::Char('G')) => self.to_end()?,
            (View::Decisions, Key::Char('r')) => self.reload()?,
            (View::Decisions, Key::Enter) => {
                if let Some(id) = self.selected().map(|r| r.id) {
                    self.detail = self.build_detail(id)?;
                    if self.detail.is_some() {
                        self.view = View::Detail;
                    }
                }
            }
            (View::Detail, Key::Esc | Key::Backspace) => self.view = View::Decisions,
            (View::Detail, Key::Down | Key::Char('j')) => {
                if let Some(d) = &mut self.detail {
                    d.scroll = d.scroll.saturating_add(1);
                }
            }
            (View::Detail, Key::Up | Key::Char('k')) => {
                if let Some(d) = &mut self.detail {
                    d.scroll = d.scroll.saturating_sub(1);
                }
            }
            (View::Detail, Key::PageDown | Key::Char(' ')) => {
                if let Some(d) = &mut self.detail {
                    d.scroll = d.scroll.saturating_add(10);
                }
            }
            (View::Detail, Key::PageUp) => {
                if let Some(d) = &mut self.detail {
                    d.scroll = d.scroll.saturating_sub(10);
                }
            }
            (_, Key::Char('c')) => self.open_chains()?,
            (_, Key::Char('a')) => self.open_anchors()?,
            (View::Chains | View::Anchors, Key::Char('v') | Key::Esc) => {
                self.view = View::Decisions;
            }
            (_, Key::Tab) => match self.view {
                View::Decisions | View::Detail => self.open_chains()?,
                View::Chains => self.open_anchors()?,
                View::Anchors => self.view = View::Decisions,
            },
            (View::Chains | View::Anchors, Key::Down | Key::Char('j')) => {
                let n = if self.view == View::Chains {
                    self.chains.len()
                } else {
                    self.epochs.len()
                };
                self.list_cursor = (self.list_cursor + 1).min(n.saturating_sub(1));
            }
            (View::Chains | View::Anchors, Key::Up | Key::Char('k')) => {
                self.list_cursor = self.list_cursor.saturating_sub(1);
            }
            (View::Chains, Key::Enter) => {
                if let Some(c) = self.chains.get(self.list_cursor) {
                    self.filter_text = format!("chain:{}", c.chain);
                    self.filter = Filter::parse(&self.filter_text);
                    self.view = View::Decisions;
                    self.reload()?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn open_chains(&mut self) -> Result<(), StoreError> {
        let mut anchored: HashMap<String, u64> = HashMap::new();
        for log in self.store.anchor_logs()? {
            for (c, p) in self.store.anchored_positions(&log)? {
                let e = anchored.entry(c).or_insert(p);
                *e = (*e).max(p);
            }
        }
        self.chains = self
            .store
            .chain_overview()?
            .into_iter()
            .map(|c| {
                let head = u64::try_from(c.head_position).ok().map(|p| {
                    let mut h = [0u8; 32];
                    if c.head.len() == 32 {
                        h.copy_from_slice(&c.head);
                    }
                    (p, Hash32(h))
                });
                ChainInfo {
                    records: head.map_or(0, |(p, _)| p + 1) + c.off_main_records,
                    head,
                    anchored: anchored.get(&c.chain).copied(),
                    off_main: c.off_main_records,
                    chain: c.chain,
                }
            })
            .collect();
        self.list_cursor = 0;
        self.view = View::Chains;
        Ok(())
    }

    fn open_anchors(&mut self) -> Result<(), StoreError> {
        let mut e = self.store.epochs(None)?;
        e.reverse();
        self.epochs = e;
        self.list_cursor = 0;
        self.view = View::Anchors;
        Ok(())
    }

    fn build_detail(&self, id: i64) -> Result<Option<Detail>, StoreError> {
        let Some(record) = self.store.record_detail(id)? else {
            return Ok(None);
        };
        let mut checks = Vec::new();
        let pretty = match zt_core::json::parse(&record.raw) {
            Ok(v) => zt_core::json::to_pretty(&v),
            Err(_) => String::from_utf8_lossy(&record.raw).into_owned(),
        };
        match Envelope::from_json(&record.raw) {
            Ok(env) => {
                let profile = env.detect_profile();
                checks.push((
                    "hash".into(),
                    profile.is_some(),
                    match profile {
                        Some(p) => format!("recomputes under profile {p}: {}", env.current_hash),
                        None => format!(
                            "does NOT recompute: {} is not this content's hash",
                            env.current_hash
                        ),
                    },
                ));
                let link = if env.previous_hash == Hash32::ZERO {
                    (true, "genesis (previous_hash is zero)".to_owned())
                } else {
                    match record.predecessor {
                        Some(Some(p)) => (true, format!("links to the record at position {p}")),
                        Some(None) => (true, "links to a stored record that is waiting".into()),
                        None => (
                            false,
                            format!(
                                "predecessor {} is not in the store",
                                env.previous_hash.short()
                            ),
                        ),
                    }
                };
                checks.push(("link".into(), link.0, link.1));
            }
            Err(e) => checks.push(("envelope".into(), false, e.to_string())),
        }
        checks.push((
            "signature".into(),
            record.row.status.is_verified(),
            format!("{} (checked at ingest)", record.row.status),
        ));
        // Where the chain model put it: only the main line is the chain's truth.
        checks.push(match record.line {
            Some(Line::Main) => (
                "counts".into(),
                true,
                "yes: on the chain's main line (trusted, linked, unbroken)".into(),
            ),
            Some(Line::Branch(_)) => (
                "counts".into(),
                false,
                "no: kept as evidence off the main line (an unverified record, a fork, a break, or after one)".into(),
            ),
            None => (
                "counts".into(),
                false,
                "no: waiting for its predecessor".into(),
            ),
        });
        checks.push((
            "key".into(),
            !record.key_id.is_empty(),
            record.key_id.clone(),
        ));
        if record.row.fork {
            checks.push((
                "fork".into(),
                false,
                "another record claims the same predecessor or position".into(),
            ));
        }
        let mut anchoring = Vec::new();
        if matches!(record.line, Some(Line::Branch(_))) {
            // An anchor covers a main line; a record beside it is covered by nothing, even at
            // an anchored position.
            anchoring.push("off the main line: no anchor covers it".into());
        } else if let (Some(chain), Some(pos), Some(_)) =
            (&record.row.chain, record.row.position, record.line)
        {
            let pos = u64::try_from(pos).unwrap_or(0);
            for log in self.store.anchor_logs()? {
                if let Some((epoch, idx, leaf)) = self.store.covering_epoch(&log, chain, pos)? {
                    if let Some(e) = self.store.epoch(&log, epoch)? {
                        anchoring.push(format!(
                            "log {log}, epoch {epoch} ({}), root {}",
                            e.state,
                            e.root.short()
                        ));
                        anchoring.push(format!(
                            "tx {} in block {}",
                            e.tx_hash.as_deref().unwrap_or("-"),
                            e.block_number.map_or("-".into(), |b| b.to_string())
                        ));
                        let leaves = self.store.leaves(&log, epoch)?;
                        let hashes: Vec<Hash32> = leaves
                            .iter()
                            .map(|l| {
                                zt_core::merkle::leaf_hash(&zt_core::merkle::head_leaf_bytes(
                                    &l.chain, l.position, &l.head,
                                ))
                            })
                            .collect();
                        let path = zt_core::merkle::inclusion_proof(
                            &hashes,
                            usize::try_from(idx).unwrap_or(0),
                        )
                        .unwrap_or_default();
                        anchoring.push(format!(
                            "path: {} link(s) to head {} at position {}, leaf {} of {}, proof [{}]",
                            leaf.position - pos,
                            leaf.head.short(),
                            leaf.position,
                            idx,
                            leaves.len(),
                            path.iter().map(Hash32::short).collect::<Vec<_>>().join(" ")
                        ));
                    }
                }
            }
            if anchoring.is_empty() {
                anchoring.push("not anchored yet".into());
            }
        } else {
            anchoring.push("waiting for its predecessor: not on a chain yet".into());
        }
        Ok(Some(Detail {
            record,
            pretty,
            checks,
            anchoring,
            scroll: 0,
        }))
    }
}
