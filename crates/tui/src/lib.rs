//! zt-audit's terminal browser (ratatui): decisions newest first with a filter, one decision
//! with its verification and anchoring, the chains, the anchor epochs. It reads the store a
//! page at a time, so a million records open as fast as a hundred, and it shows records a
//! running ingest adds without a restart.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! zt_tui::run(&zt_store::Location::parse("audit.db"))
//! # }
//! ```

pub mod app;
pub mod ui;

use std::io;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use zt_store::Store;

use crate::app::{App, Key};
use crate::ui::Theme;

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Maps a terminal key to the browser's; `None` for keys it ignores.
pub fn map_key(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    if mods.contains(KeyModifiers::CONTROL) && code == KeyCode::Char('c') {
        return Some(Key::Char('q'));
    }
    Some(match code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Tab => Key::Tab,
        _ => return None,
    })
}

/// Whether colours may be used: `NO_COLOR` unset or empty.
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Opens the store at `db` and browses it until `q` (or Ctrl-C). The terminal is restored
/// on every exit, a panic included.
pub fn run(db: &zt_store::Location) -> io::Result<()> {
    let store = Store::open_read_only(db).map_err(io_err)?;
    let mut app = App::new(store).map_err(io_err)?;
    let theme = Theme {
        color: colour_allowed(),
    };
    let name = db.to_string();
    // ratatui::init installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> io::Result<()> {
        let mut last_tick = Instant::now();
        loop {
            terminal.draw(|f| ui::draw(f, &mut app, &name, theme))?;
            if app.quit {
                return Ok(());
            }
            // A text filter still scanning gets the idle time, a step at a time.
            let busy = match app.pump() {
                Ok(b) => b,
                Err(e) => {
                    app.message = Some(format!("store: {e}"));
                    false
                }
            };
            let wait = if busy {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(250)
            };
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
                        if let Some(key) = map_key(k.code, k.modifiers) {
                            if let Err(e) = app.key(key) {
                                app.message = Some(format!("store: {e}"));
                            }
                        }
                    }
                }
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                if let Err(e) = app.tick() {
                    app.message = Some(format!("store: {e}"));
                }
            }
        }
    })();
    ratatui::restore();
    result
}
