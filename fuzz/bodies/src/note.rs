//! Signed notes, verifier keys and checkpoints (`zt_core::note`): what a log, a witness or a
//! mirror hands over, read before anything is trusted.

use zt_core::note::{open, Checkpoint, Note, NoteSigner, VerifierKey, MAX_SIGNATURES};

use crate::shown::shown;

/// `signed_note`: the input as a note, as a verifier key and as a checkpoint's text.
///
/// - A note that parses has a text ending in a newline, at most `MAX_SIGNATURES` signatures,
///   and writes back to bytes that parse to the same note.
/// - Opened under a key that signed nothing here, no note verifies; a note this key signed
///   verifies, and the same note with its text changed does not.
/// - A verifier key that parses writes back to a key that parses to the same key.
/// - A checkpoint that parses writes back to exactly its text.
pub fn signed_note(data: &[u8]) {
    // The seeds' log key is [7; 32]: this one shares its name, not its key, and signed no
    // seed.
    let signer = NoteSigner::from_seed("fuzz.test/log", &[11; 32])
        .unwrap_or_else(|e| panic!("the fuzz key: {e}"));
    let known = [signer.verifier().clone()];
    if let Ok(note) = Note::parse(data) {
        assert!(note.text.ends_with('\n'), "{}", shown(data));
        assert!(note.signatures.len() <= MAX_SIGNATURES, "{}", shown(data));
        let again = Note::parse(note.to_text().as_bytes())
            .unwrap_or_else(|e| panic!("written back, it does not parse ({e}): {}", shown(data)));
        assert_eq!(again, note, "{}", shown(data));
        // Forging a signature by the known key needs its private half: nothing from the
        // input verifies unless this key signed it, which it did not.
        if let Ok(opened) = open(data, &known) {
            panic!(
                "a note no known key signed verified ({:?}): {}",
                opened.verified_by,
                shown(data)
            );
        }
        let signed = zt_core::note::sign(&note.text, &[&signer])
            .unwrap_or_else(|e| panic!("its text cannot be signed ({e}): {}", shown(data)));
        assert!(open(signed.as_bytes(), &known).is_ok(), "{}", shown(data));
        let edited = signed.replacen('\n', "\n\n", 1);
        if edited != signed && Note::parse(edited.as_bytes()).is_ok() {
            assert!(open(edited.as_bytes(), &known).is_err(), "{}", shown(data));
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(vkey) = text.parse::<VerifierKey>() {
        let back: VerifierKey = vkey
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("written back, it does not parse ({e}): {}", shown(data)));
        assert_eq!(back, vkey, "{}", shown(data));
    }
    if let Ok(cp) = Checkpoint::parse(text) {
        assert_eq!(cp.to_text(), text, "{}", shown(data));
    }
}
