//! zt-audit's TLS, in one place for both servers (`zt-audit serve`, `zt-audit control-plane`)
//! and their clients: rustls with the AWS-LC provider, TLS 1.2 and 1.3, no other backend.
//!
//! - [`server`]: [`TlsServer`] (certificate and key from PEM files, **reloaded when the files
//!   change**; optional client CA bundle) and [`serve`], which serves an axum router over it
//!   (or over plain HTTP) with the house's graceful shutdown.
//! - [`connections`]: what a connection may hold on every listener, TLS or not: connections in
//!   all and per source address, header and idle timeouts, each refusal counted.
//! - [`bundle`]: trust bundles, PEM or SPIFFE bundles (JWK Sets), each for the trust domain
//!   the configuration names, or CAs that name their own (`spiffe://<td>` URI SAN).
//! - [`identity`]: SPIFFE X.509-SVIDs against [`TrustBundles`] (several trust domains, each
//!   SVID checked against its own domain's bundle, bundles reloaded when their files change);
//!   a verified client certificate becomes a [`PeerIdentity`] (an SVID's [`SpiffeId`],
//!   anonymous, or refused with the reason), a request extension that no header can forge.
//! - [`spiffe`]: SPIFFE IDs, checked as the SPIFFE ID specification says.
//! - [`reload`]: [`ReloadingKey`], the certificate resolver that follows its files (SPIRE
//!   rotates SVIDs about hourly).
//! - [`client`]: [`ClientTls`], a rustls client configuration (trusted CAs, an SVID for mTLS)
//!   for reqwest's `use_preconfigured_tls`. Verification cannot be turned off.
//! - `test_pki` (feature `test-pki`): certificates made on the fly for tests.
//!
//! ```no_run
//! use std::sync::Arc;
//! use zt_tls::{ServerFiles, TlsServer};
//! # async fn run(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsServer::load(&ServerFiles::new("svid.pem", "svid.key").client_ca("bundle.pem"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let connections = zt_tls::Connections::new(zt_tls::ConnectionLimits::default());
//! zt_tls::serve(listener, app, Some(Arc::new(tls)), connections, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! }).await?;
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod client;
pub mod connections;
pub mod error;
pub mod identity;
pub mod pem;
mod provider;
pub mod reload;
pub mod server;
pub mod spiffe;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;

pub use bundle::BundleSource;
pub use client::{ClientIdentity, ClientTls};
pub use connections::{ConnectionLimits, Connections};
pub use error::{BundleSourceError, CaProblem, IdentityRefused, SpiffeBundleError, TlsError};
pub use identity::{DomainSummary, PeerIdentity, TrustBundles};
pub use provider::{install_default_provider, provider};
pub use reload::ReloadingKey;
pub use rustls;
pub use server::{serve, ServerFiles, TlsServer};
pub use spiffe::{SpiffeId, SpiffeIdError, TrustDomain};
