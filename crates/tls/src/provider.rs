//! The one crypto provider of every rustls configuration here: AWS-LC, already in the build
//! for the signatures.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

/// The one crypto provider: AWS-LC, already in the build for the signatures.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// Makes AWS-LC the process's default rustls provider, unless one is set already.
///
/// reqwest 0.12 is built with rustls but without a provider of its own (its only built-in one
/// would add ring): a client built without [`ClientTls::config`](crate::ClientTls::config)
/// (`reqwest::Client::new()`) asks for the process default and panics when there is none.
/// The servers, the guarded client and the exporter call this, so such clients work in any
/// process that uses them.
pub fn install_default_provider() {
    // Err: a provider is installed already (this one, or the application's own): keep it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
