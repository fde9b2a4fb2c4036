//! The contract's conformance suites, as code any implementation can be run against.
//!
//! - [`target`]: a control plane's suite (`zt-audit conformance --target URL`): registration,
//!   deny by default, the default forbid, a narrow policy, the answer's shape per the JSON
//!   Schema, every envelope verifying under the keyring the tester gives and the chain
//!   continuing across answers, actor spoofing, malformed requests, replayed request ids.
//! - [`client`]: a guarded client's suite (`zt-audit conformance client -- CMD`): a scripted
//!   control plane that misbehaves one way per case (deny, 4xx, 5xx, a timeout, nobody
//!   listening, a bad signature, an unknown key, a decision about something else, a replayed
//!   allow); the client must never run the action, and must run it on the one good allow.
//! - [`schema`]: the JSON Schemas (2020-12) of the wire objects, `docs/schema/`, compiled once.
//!
//! Each suite gives a [`Report`]: `{ok, cases: [{name, ok, message}]}`, the same for people
//! (text) and scripts (`--format json`). The project's own tests run the same code against
//! `zt-audit control-plane` and `zt_client`.
//!
//! ```no_run
//! # async fn run() {
//! let keyring = std::fs::read("cp-data/keyring.json").unwrap();
//! let report = zt_conformance::target::run(&zt_conformance::target::Target {
//!     url: "http://127.0.0.1:8080".into(),
//!     admin_token: None,
//!     keyring: Some(keyring),
//! })
//! .await
//! .unwrap();
//! println!("{}", report.to_text());
//! # }
//! ```

pub mod client;
mod error;
pub mod schema;
pub mod target;

use serde::Serialize;

pub use error::{Broken, RunError, SchemaError, Violation};

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// The case's fixed name (scripts match on it).
    pub name: String,
    /// Whether the implementation kept the contract here.
    pub ok: bool,
    /// What was seen: on failure, what broke the contract.
    pub message: String,
}

/// A suite's results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every case passed.
    pub ok: bool,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Adds a case's result: what was seen when the implementation kept the contract, or what
    /// broke it.
    pub fn push(&mut self, name: &str, result: Result<String, Broken>) {
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(broken) => (false, broken.to_string()),
        };
        self.cases.push(CaseResult {
            name: name.to_owned(),
            ok,
            message,
        });
        self.ok = self.cases.iter().all(|c| c.ok);
    }

    /// The first failed case, if any.
    pub fn failed(&self) -> Option<&CaseResult> {
        self.cases.iter().find(|c| !c.ok)
    }

    /// The result of the case named `name`.
    pub fn case(&self, name: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// One line a case, then the verdict; evidence text escaped for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.cases {
            out.push_str(&format!(
                "{} {:<28} {}\n",
                if c.ok { "PASS" } else { "FAIL" },
                c.name,
                zt_core::text::escape(&c.message)
            ));
        }
        let failed = self.cases.iter().filter(|c| !c.ok).count();
        if self.ok {
            out.push_str(&format!("OK: {} cases passed\n", self.cases.len()));
        } else {
            out.push_str(&format!(
                "FAILED: {failed} of {} cases broke the contract\n",
                self.cases.len()
            ));
        }
        out
    }
}
