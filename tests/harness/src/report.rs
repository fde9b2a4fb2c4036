//! What a `zt-audit` JSON report (verify, reconcile) says, read the same way by every test.

use serde_json::Value;

/// The report's findings (none when it has no `findings` array).
pub fn findings(report: &Value) -> &[Value] {
    report["findings"].as_array().map_or(&[], Vec::as_slice)
}

/// The kinds of the report's findings, in order.
pub fn kinds(report: &Value) -> Vec<&str> {
    findings(report)
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

/// (index, kind) of the first finding.
pub fn first_finding(report: &Value) -> Option<(u64, String)> {
    let f = findings(report).first()?;
    Some((f["index"].as_u64()?, f["kind"].as_str()?.to_owned()))
}

/// The names of the report's chains, in order.
pub fn chain_names(report: &Value) -> Vec<&str> {
    report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chain"].as_str().unwrap())
        .collect()
}
