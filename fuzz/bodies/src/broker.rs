//! The broker's lines: an agent's request on the broker's socket (`Request::from_line`), the
//! broker's answer (`Answer::from_line`), and the control plane's capability status the
//! broker's watch reads (`Standing::from_status`).

use zt_broker::serve::{Answer, Request};
use zt_core::capability::standing::Standing;
use zt_core::json;

use crate::shown::shown;

/// `broker_lines`: one line read as each of the three.
///
/// - A request that reads writes a line (`to_line`) that reads as the same request and
///   writes the same line again.
/// - An answer likewise.
/// - A status that reads is written (`status_value`) as a status that reads back to the same
///   written form.
pub fn lines(data: &[u8]) {
    if let Ok(r) = Request::from_line(data) {
        let line = r.to_line();
        let back = Request::from_line(&line).unwrap_or_else(|e| {
            panic!(
                "a request does not read from its own line: {e}\ninput: {}\nline: {}",
                shown(data),
                shown(&line)
            )
        });
        assert_eq!(
            back.to_line(),
            line,
            "a request's line is not a fixed point"
        );
        assert_eq!(back.capability.expose(), r.capability.expose());
        assert_eq!(
            back.token.as_ref().map(|t| t.expose().to_owned()),
            r.token.as_ref().map(|t| t.expose().to_owned())
        );
        assert_eq!(
            (&back.command, &back.env, back.stdin),
            (&r.command, &r.env, r.stdin)
        );
    }
    if let Ok(a) = Answer::from_line(data) {
        let line = a.to_line();
        let back = Answer::from_line(&line)
            .unwrap_or_else(|e| panic!("an answer does not read from its own line: {e}"));
        assert_eq!(
            back,
            a,
            "an answer changed through its line\ninput: {}",
            shown(data)
        );
    }
    if let Ok(s) = Standing::from_status("cap-1", data) {
        let v = s
            .status_value("cap-1")
            .unwrap_or_else(|| panic!("a status that reads has no written form: {s:?}"));
        let text = json::canonicalize(&v);
        let back = Standing::from_status("cap-1", &text).unwrap_or_else(|e| {
            panic!(
                "a status does not read from its own form: {e}\ninput: {}\nwritten: {}",
                shown(data),
                shown(&text)
            )
        });
        let again = back
            .status_value("cap-1")
            .map(|v| json::canonicalize(&v))
            .unwrap_or_default();
        assert_eq!(again, text, "a status's written form is not a fixed point");
    }
}
