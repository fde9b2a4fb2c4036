//! The bodies of zt-audit's fuzz targets, as plain functions of the input bytes.
//!
//! Each function feeds one parser that takes outside input and asserts what must hold of
//! whatever it accepts (round trips, canonical re-parse, agreement between two readers of the
//! same thing, bounds), panicking when it does not. The cargo-fuzz binaries in `fuzz/` are
//! one line each around these; the replay test (`tests/replay`) runs the seeds and the saved
//! regressions through them under a stable `cargo test`, so every regression stays a test.
//! `fuzz/README.md` says what each one checks and how long each has run.
//!
//! ```no_run
//! // One input through every target, as the replay test does.
//! for (name, body) in zt_fuzz_bodies::TARGETS {
//!     body(br#"{"actor":"a"}"#);
//!     println!("{name}: ok");
//! }
//! ```

pub mod broker;
pub mod capability;
pub mod control_plane;
pub mod keyring;
pub mod note;
pub mod otlp;
pub mod proof;
pub mod record;
pub mod schema;
mod shown;
pub mod spiffe;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its cargo-fuzz name and its body.
pub const TARGETS: [(&str, Body); 14] = [
    ("parse_record", record::parse_record),
    ("split_records", record::split_records),
    ("verify_stream", record::verify_stream),
    ("otlp_protobuf", otlp::protobuf),
    ("otlp_json", otlp::json),
    ("capability_token", capability::token),
    ("keyring", keyring::keyring),
    ("proof_bundle", proof::bundle),
    ("broker_lines", broker::lines),
    ("json_schema", schema::schemas),
    ("control_plane_http", control_plane::http),
    ("capability_chain", capability::chain),
    ("spiffe_bundle", spiffe::bundle),
    ("signed_note", note::signed_note),
];
