//! How a target shows its input in a panic message.

/// The input as text for a panic message (lossy, at most 2,000 bytes shown).
pub(crate) fn shown(data: &[u8]) -> String {
    let cut = &data[..data.len().min(2000)];
    format!("{:?}", String::from_utf8_lossy(cut))
}
