//! Drawing: one function per view, a header, a filter line and a footer of key hints. Colour
//! only when allowed (`NO_COLOR` unset and a terminal); every state also reads without colour
//! (marks, `>` for the cursor, upper-case DENY).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use zt_core::chain::SigStatus;

use crate::app::{App, View};

/// Colours on or off.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Use colours.
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
}

/// The signature status as one character.
pub fn mark(status: SigStatus, fork: bool) -> &'static str {
    if fork {
        return "!";
    }
    match status {
        SigStatus::Verified => "✓",
        SigStatus::BadSignature => "✗",
        SigStatus::UnknownKey | SigStatus::KeyNotValid => "?",
        SigStatus::Unsigned | SigStatus::Mock => "~",
    }
}

fn short_time(ts: &str, wide: bool) -> String {
    // 2026-10-01T08:00:36.490Z -> 2026-10-01 08:00:36 (wide) or 10-01 08:00:36
    let t = ts.replace('T', " ");
    let t = t
        .split('.')
        .next()
        .unwrap_or(&t)
        .trim_end_matches('Z')
        .to_owned();
    if wide || t.len() < 19 {
        t
    } else {
        t[5..].to_owned()
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &mut App, db: &str, theme: Theme) {
    let [header, body, filter, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app, db, theme);
    match app.view {
        View::Decisions => draw_decisions(f, body, app, theme),
        View::Detail => draw_detail(f, body, app, theme),
        View::Chains => draw_chains(f, body, app, theme),
        View::Anchors => draw_anchors(f, body, app, theme),
    }
    draw_filter(f, filter, app, theme);
    draw_footer(f, footer, app);
    if app.help {
        draw_help(f, f.area());
    }
}

fn draw_header(f: &mut Frame<'_>, area: Rect, app: &App, db: &str, theme: Theme) {
    let tab = |name: &str, v: View| {
        if app.view == v || (v == View::Decisions && app.view == View::Detail) {
            Span::styled(
                format!("[{name}]"),
                Style::default().add_modifier(Modifier::BOLD),
            )
        } else {
            Span::raw(format!(" {name} "))
        }
    };
    let mut spans = vec![
        Span::styled(
            "zt-audit ",
            theme.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        tab("decisions", View::Decisions),
        tab("chains", View::Chains),
        tab("anchors", View::Anchors),
        Span::raw(format!("  {db}")),
    ];
    if app.new_rows {
        spans.push(Span::styled("  new records (r)", theme.fg(Color::Yellow)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_decisions(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) {
    let wide = area.width >= 120;
    app.page_rows = usize::from(area.height.saturating_sub(3)).max(1);
    let header = Row::new([
        "", "time", "actor", "action", "resource", "decision", "reason", "sig",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row<'_>> = app
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let deny = r.decision == "deny";
            let decision = if deny {
                Span::styled("DENY", theme.fg(Color::Red).add_modifier(Modifier::BOLD))
            } else {
                Span::styled(r.decision.clone(), theme.fg(Color::Green))
            };
            let m = mark(r.status, r.fork);
            let mark_style = if m == "✓" {
                theme.fg(Color::Green)
            } else {
                theme.fg(Color::Red)
            };
            Row::new(vec![
                Cell::from(if i == app.cursor { ">" } else { " " }),
                Cell::from(short_time(&r.timestamp, wide)),
                Cell::from(r.actor.clone()),
                Cell::from(r.action.clone()),
                Cell::from(r.resource.clone()),
                Cell::from(decision),
                Cell::from(r.reason.clone()),
                Cell::from(Span::styled(m, mark_style)),
            ])
        })
        .collect();
    let time_w = if wide { 19 } else { 14 };
    let widths = [
        Constraint::Length(1),
        Constraint::Length(time_w),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Fill(3),
        Constraint::Length(3),
    ];
    let title = format!(
        " decisions, newest first{}{} ",
        if app.deny_only { ", deny only" } else { "" },
        if app.rows.is_empty() {
            ": none match"
        } else {
            ""
        }
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(title))
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(app.cursor));
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_detail(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(d) = &app.detail else { return };
    let r = &d.record.row;
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{} {} ", r.decision.to_uppercase(), r.action),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("by {} on {}", r.actor, r.resource)),
    ])];
    lines.push(Line::from(format!(
        "chain {}  position {}  branch {}  profile {}  from {}",
        r.chain.as_deref().unwrap_or("(waiting)"),
        r.position.map_or("-".into(), |p| p.to_string()),
        d.record.branch.map_or("-".into(), |b| b.to_string()),
        d.record.profile,
        d.record.source
    )));
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "verification",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for (what, ok, text) in &d.checks {
        let (m, style) = if *ok {
            ("✓", theme.fg(Color::Green))
        } else {
            ("✗", theme.fg(Color::Red))
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {m} {what:<10}"), style),
            Span::raw(text.clone()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "anchoring",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for a in &d.anchoring {
        lines.push(Line::from(format!("  {a}")));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "envelope",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for l in d.pretty.lines() {
        lines.push(Line::from(format!("  {l}")));
    }
    let p = Paragraph::new(lines)
        .block(Block::default().borders(Borders::TOP).title(" decision "))
        .wrap(Wrap { trim: false })
        .scroll((d.scroll, 0));
    f.render_widget(p, area);
}

fn list_table<'a>(
    rows: Vec<Row<'a>>,
    header: Row<'a>,
    widths: &'a [Constraint],
    title: String,
) -> Table<'a> {
    Table::new(rows, widths.to_vec())
        .header(header.style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::TOP).title(title))
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
}

fn draw_chains(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let rows: Vec<Row<'_>> = app
        .chains
        .iter()
        .map(|c| {
            let behind = match (c.head, c.anchored) {
                (Some((h, _)), Some(a)) => h.saturating_sub(a),
                (Some((h, _)), None) => h + 1,
                _ => 0,
            };
            let findings = if c.forks > 0 {
                Span::styled(format!("{} fork(s)", c.forks), theme.fg(Color::Red))
            } else {
                Span::raw("-")
            };
            Row::new(vec![
                Cell::from(c.chain.clone()),
                Cell::from(c.records.to_string()),
                Cell::from(c.head.map_or("-".into(), |(p, _)| p.to_string())),
                Cell::from(c.head.map_or("-".into(), |(_, h)| h.short())),
                Cell::from(c.anchored.map_or("-".into(), |a| a.to_string())),
                Cell::from(behind.to_string()),
                Cell::from(findings),
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(3),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Fill(2),
    ];
    let t = list_table(
        rows,
        Row::new([
            "chain",
            "records",
            "head",
            "head hash",
            "anchored",
            "unanch.",
            "findings",
        ]),
        &widths,
        format!(
            " {} chain(s); Enter lists a chain's decisions ",
            app.chains.len()
        ),
    );
    let mut state = TableState::default().with_selected(Some(app.list_cursor));
    f.render_stateful_widget(t, area, &mut state);
}

fn draw_anchors(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let rows: Vec<Row<'_>> = app
        .epochs
        .iter()
        .map(|e| {
            let state_style = if e.state.on_chain() {
                theme.fg(Color::Green)
            } else {
                theme.fg(Color::Yellow)
            };
            Row::new(vec![
                Cell::from(e.log.clone()),
                Cell::from(e.epoch.to_string()),
                Cell::from(Span::styled(e.state.name(), state_style)),
                Cell::from(e.leaf_count.to_string()),
                Cell::from(e.root.short()),
                Cell::from(
                    e.tx_hash
                        .as_deref()
                        .map_or("-".into(), |t| t.chars().take(12).collect::<String>()),
                ),
                Cell::from(e.block_number.map_or("-".into(), |b| b.to_string())),
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(2),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(17),
        Constraint::Length(13),
        Constraint::Length(9),
    ];
    let title = if app.epochs.is_empty() {
        " no anchors yet: zt-audit anchor run ".to_owned()
    } else {
        format!(" {} epoch(s), newest first ", app.epochs.len())
    };
    let t = list_table(
        rows,
        Row::new(["log", "epoch", "state", "leaves", "root", "tx", "block"]),
        &widths,
        title,
    );
    let mut state = TableState::default().with_selected(Some(app.list_cursor));
    f.render_stateful_widget(t, area, &mut state);
}

fn draw_filter(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let line = if app.editing {
        Line::from(vec![
            Span::styled("/", theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)),
            Span::raw(app.filter_text.clone()),
            Span::styled("_", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw(
                "   Enter apply, Esc clear; terms: decision:deny actor:NAME action: chain: status:",
            ),
        ])
    } else if let Some(m) = &app.message {
        Line::from(m.clone())
    } else if !app.filter.is_empty() {
        let progress = if app.scan.is_some() {
            format!(
                "   searching: {} records looked at, {} found",
                app.scanned,
                app.rows.len()
            )
        } else if app.text_mode() {
            format!("   {} match(es) in {} records", app.rows.len(), app.scanned)
        } else {
            String::new()
        };
        Line::from(format!(
            "filter: {}   (Esc clears){progress}",
            app.filter_text
        ))
    } else {
        Line::from("")
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_footer(f: &mut Frame<'_>, area: Rect, app: &App) {
    let hints = match app.view {
        View::Decisions => "q quit  ? help  / filter  Enter detail  d deny-only  c chains  a anchors  ↑↓ PgUp/PgDn g/G",
        View::Detail => "q quit  ? help  Esc back  ↑↓ PgUp/PgDn scroll  c chains  a anchors",
        View::Chains => "q quit  ? help  Enter its decisions  Esc decisions  a anchors  ↑↓ move",
        View::Anchors => "q quit  ? help  Esc decisions  c chains  ↑↓ move",
    };
    f.render_widget(
        Paragraph::new(Line::styled(
            hints,
            Style::default().add_modifier(Modifier::DIM),
        )),
        area,
    );
}

fn draw_help(f: &mut Frame<'_>, area: Rect) {
    let w = area.width.min(64);
    let h = area.height.min(18);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let text = vec![
        Line::from("decisions   ↑/k ↓/j move, PgUp/PgDn page, g newest, G oldest"),
        Line::from("            Enter: the decision, its verification and anchoring"),
        Line::from("            / filter: words match actor, action, resource, reason;"),
        Line::from("              decision:deny actor:NAME action:X chain:X status:X"),
        Line::from("              Enter applies, Esc clears"),
        Line::from("            d deny only, r reload (new records appear live at the top)"),
        Line::from("chains      c (or Tab): length, head, last anchored position, forks"),
        Line::from("anchors     a: epochs with root, transaction and state"),
        Line::from("marks       ✓ signature verified  ✗ bad  ? unknown key  ~ unsigned"),
        Line::from("            ! fork"),
        Line::from("            q quits; any key closes this help"),
    ];
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" help ")),
        r,
    );
}
