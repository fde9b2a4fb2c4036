//! Drawing: one function per view, a header, a filter line and a footer of key hints. Colour
//! only when allowed (`NO_COLOR` unset and a terminal); every state also reads without colour
//! (marks, `>` for the cursor, upper-case DENY).
//!
//! Every string that comes from the store (actors, reasons, chain and log names, the envelope,
//! messages that quote them) is drawn through [`shown`]: controls, bidi and invisible
//! characters appear as `zt_core::text` escapes (`\u{202e}`), in their own colour when colour is
//! on. ratatui would drop control characters silently and pass zero-width ones (U+202E
//! included) to the terminal attached to the previous cell; neither may happen to evidence.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use zt_core::chain::SigStatus;

use zt_core::text::{pieces, Piece};

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

/// Text from the store as spans in `style`: what a terminal shows as it is stays plain, and
/// each character it would act on or hide is its `\u{…}` escape (see `zt_core::text`), in
/// magenta when colour is on.
pub fn shown(text: &str, style: Style, theme: Theme) -> Vec<Span<'static>> {
    let escape_style = style.patch(theme.fg(Color::Magenta));
    pieces(text)
        .map(|p| match p {
            Piece::Plain(s) => Span::styled(s.to_owned(), style),
            Piece::Escaped(_) => Span::styled(p.to_string(), escape_style),
        })
        .collect()
}

/// [`shown`] as a table cell.
fn cell(text: &str, style: Style, theme: Theme) -> Cell<'static> {
    Cell::from(Line::from(shown(text, style, theme)))
}

/// A line built from fixed words, drawn as they are, and store text, drawn through [`shown`].
struct Parts {
    spans: Vec<Span<'static>>,
    theme: Theme,
}

impl Parts {
    fn new(theme: Theme) -> Self {
        Self {
            spans: Vec::new(),
            theme,
        }
    }

    /// Words of this program's own.
    fn word(mut self, text: impl Into<String>, style: Style) -> Self {
        self.spans.push(Span::styled(text.into(), style));
        self
    }

    /// Text from the store.
    fn stored(mut self, text: &str, style: Style) -> Self {
        self.spans.extend(shown(text, style, self.theme));
        self
    }

    fn line(self) -> Line<'static> {
        Line::from(self.spans)
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
        SigStatus::UnknownKey | SigStatus::KeyNotValid | SigStatus::UnauthorizedSigner => "?",
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
        return t;
    }
    // `get`: a stored timestamp is whatever the record said, and byte 5 may not start a char.
    t.get(5..).map_or_else(|| t.clone(), str::to_owned)
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
        Span::raw("  "),
    ];
    spans.extend(shown(db, Style::default(), theme));
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
                Cell::from(Span::styled(
                    "DENY",
                    theme.fg(Color::Red).add_modifier(Modifier::BOLD),
                ))
            } else {
                cell(&r.decision, theme.fg(Color::Green), theme)
            };
            let plain = Style::default();
            let m = mark(r.status, r.fork);
            let mark_style = if m == "✓" {
                theme.fg(Color::Green)
            } else {
                theme.fg(Color::Red)
            };
            Row::new(vec![
                Cell::from(if i == app.cursor { ">" } else { " " }),
                cell(&short_time(&r.timestamp, wide), plain, theme),
                cell(&r.actor, plain, theme),
                cell(&r.action, plain, theme),
                cell(&r.resource, plain, theme),
                decision,
                cell(&r.reason, plain, theme),
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
    let plain = Style::default();
    let bold = plain.add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Parts::new(theme)
            .stored(&r.decision.to_uppercase(), bold)
            .word(" ", bold)
            .stored(&r.action, bold)
            .word(" by ", plain)
            .stored(&r.actor, plain)
            .word(" on ", plain)
            .stored(&r.resource, plain)
            .line(),
        Parts::new(theme)
            .word("chain ", plain)
            .stored(r.chain.as_deref().unwrap_or("(waiting)"), plain)
            .word(
                format!(
                    "  position {}  branch {}  profile ",
                    r.position.map_or("-".into(), |p| p.to_string()),
                    d.record.line.map_or("-".into(), |l| l.to_string()),
                ),
                plain,
            )
            .stored(&d.record.profile, plain)
            .word("  from ", plain)
            .stored(&d.record.source, plain)
            .line(),
    ];
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
        lines.push(
            Parts::new(theme)
                .word(format!("  {m} {what:<10}"), style)
                .stored(text, plain)
                .line(),
        );
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "anchoring",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for a in &d.anchoring {
        lines.push(Parts::new(theme).word("  ", plain).stored(a, plain).line());
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "envelope",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    // JSON escapes C0 controls only; DEL, C1, bidi and zero-width characters stay raw in it,
    // and a record that did not parse is shown as its bytes.
    for l in d.pretty.lines() {
        lines.push(Parts::new(theme).word("  ", plain).stored(l, plain).line());
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
            let findings = if c.off_main > 0 {
                Span::styled(format!("{} off main", c.off_main), theme.fg(Color::Red))
            } else {
                Span::raw("-")
            };
            Row::new(vec![
                cell(&c.chain, Style::default(), theme),
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
                cell(&e.log, Style::default(), theme),
                Cell::from(e.epoch.to_string()),
                Cell::from(Span::styled(e.state.name(), state_style)),
                Cell::from(e.leaf_count.to_string()),
                Cell::from(e.root.short()),
                cell(
                    &e.tx_hash
                        .as_deref()
                        .map_or("-".into(), |t| t.chars().take(12).collect::<String>()),
                    Style::default(),
                    theme,
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
    // The filter may hold a chain name picked in the chains view, and messages quote the store:
    // both through `shown`.
    let plain = Style::default();
    let line = if app.editing {
        Parts::new(theme)
            .word("/", theme.fg(Color::Yellow).add_modifier(Modifier::BOLD))
            .stored(&app.filter_text, plain)
            .word("_", plain.add_modifier(Modifier::SLOW_BLINK))
            .word(
                "   Enter apply, Esc clear; terms: decision:deny actor:NAME action: chain: status:",
                plain,
            )
            .line()
    } else if let Some(m) = &app.message {
        Parts::new(theme).stored(m, plain).line()
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
        Parts::new(theme)
            .word("filter: ", plain)
            .stored(&app.filter_text, plain)
            .word(format!("   (Esc clears){progress}"), plain)
            .line()
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
        Line::from("chains      c (or Tab): length, head, last anchored position, off main line"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_time_takes_any_text() {
        assert_eq!(
            short_time("2026-10-01T08:00:36.490Z", false),
            "10-01 08:00:36"
        );
        assert_eq!(
            short_time("2026-10-01T08:00:36.490Z", true),
            "2026-10-01 08:00:36"
        );
        // A hand-edited store: byte 5 inside a character must not panic.
        assert_eq!(
            short_time("2026éé-01T08:00:36Z", false),
            "2026éé-01 08:00:36"
        );
        assert_eq!(short_time("", false), "");
    }

    #[test]
    fn shown_styles_escapes_apart_and_keeps_plain_text_whole() {
        let theme = Theme { color: true };
        let spans = shown("a\u{202e}b", Style::default(), theme);
        let texts: Vec<&str> = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(texts, ["a", r"\u{202e}", "b"]);
        assert_eq!(spans[1].style.fg, Some(Color::Magenta));
        assert_eq!(spans[0].style.fg, None);
        assert_eq!(shown("plain", Style::default(), theme).len(), 1);
    }
}
