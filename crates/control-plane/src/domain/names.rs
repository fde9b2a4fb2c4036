//! The naming rules of actors, actions, request ids and resources: what
//! `docs/schema/action-request.schema.json` says (`maxLength` in characters, the `visible`
//! pattern), so a record shown to an auditor reads as what was asked.

use crate::error::NameError;

/// Longest actor, action or request id accepted, in characters (JSON Schema's maxLength).
pub(crate) const MAX_NAME: usize = 256;
/// Longest resource accepted, in characters.
pub(crate) const MAX_RESOURCE: usize = 2048;

/// Names (actors, actions, brokers) starting with this are the control plane's own.
pub(crate) const OWN_PREFIX: &str = "zt.";

/// A name: not empty, at most `max` characters, nothing invisible.
pub(crate) fn name_ok(field: &str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty {
            field: field.to_owned(),
        });
    }
    // Characters, as JSON Schema's maxLength counts them (docs/schema).
    if s.chars().count() > max {
        return Err(NameError::TooLong {
            field: field.to_owned(),
            max,
        });
    }
    invisible_free(field, s)
}

/// Names and resources hold no character a terminal acts on or that hides or reorders text
/// (`zt_core::text::needs_escape`: controls, bidi and other format characters, line and
/// paragraph separators), as the schema's `visible` says.
fn invisible_free(field: &str, s: &str) -> Result<(), NameError> {
    let field = field.to_owned();
    match s.chars().find(|c| zt_core::text::needs_escape(*c)) {
        Some(c) if c.is_control() => Err(NameError::Control {
            field,
            code: u32::from(c),
        }),
        Some(c) => Err(NameError::Invisible {
            field,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A resource (empty allowed): the rule of `/actions` and `/capabilities` alike.
pub(crate) fn resource_ok(resource: &str) -> Result<(), NameError> {
    if resource.chars().count() > MAX_RESOURCE {
        return Err(NameError::TooLong {
            field: "resource".into(),
            max: MAX_RESOURCE,
        });
    }
    invisible_free("resource", resource)
}
