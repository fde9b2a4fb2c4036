//! SPIFFE trust bundles and IDs (`zt_tls::bundle`, `zt_tls::spiffe`): the files an operator
//! gives with `--trust-bundle spiffe://TD=FILE` and `--client-ca FILE`, often fetched from
//! another organization's bundle endpoint (federation), and the IDs in a certificate's SAN.

use std::path::PathBuf;

use zt_tls::bundle::{parse, spiffe_bundle, BundleSource};
use zt_tls::spiffe::{SpiffeId, TrustDomain};

use crate::shown::shown;

/// `spiffe_bundle`: the input as a bundle file of trust domain `fuzz.test` (a SPIFFE bundle
/// when it starts with `{`, PEM otherwise), as a `--client-ca` PEM file, and as text (a
/// `--trust-bundle` argument, a SPIFFE ID).
///
/// - What loads holds at least one CA, and every CA of the named domain's file is in that
///   domain; a JWK Set that loads has exactly the CAs `spiffe_bundle` found in it.
/// - A SPIFFE ID that parses prints as itself, and its trust domain parses back to the same.
pub fn bundle(data: &[u8]) {
    let td = TrustDomain::new("fuzz.test").unwrap_or_else(|e| panic!("fuzz.test: {e}"));
    let named = BundleSource::Domain {
        trust_domain: td.clone(),
        path: PathBuf::from("fuzz.json"),
    };
    if let Ok(loaded) = parse(&named, data) {
        assert!(
            !loaded.cas.is_empty(),
            "a bundle with no CA loaded: {}",
            shown(data)
        );
        for ca in &loaded.cas {
            assert_eq!(ca.trust_domain, td, "{}", shown(data));
        }
        if data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let (ders, sequence) = spiffe_bundle(data)
                .unwrap_or_else(|e| panic!("loaded, yet not a SPIFFE bundle: {e}"));
            assert_eq!(ders.len(), loaded.cas.len());
            assert_eq!(sequence, loaded.sequence);
        }
    }
    if let Ok(loaded) = parse(&BundleSource::SelfNamed(PathBuf::from("fuzz.pem")), data) {
        assert!(!loaded.cas.is_empty());
        assert_eq!(loaded.sequence, None, "PEM has no sequence");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(BundleSource::Domain { path, .. }) = text.parse::<BundleSource>() {
        assert!(!path.as_os_str().is_empty());
    }
    if let Ok(id) = SpiffeId::parse(text) {
        assert_eq!(id.as_str(), text, "an ID that parses is kept as given");
        assert_eq!(id.to_string(), text);
        let domain = TrustDomain::new(id.trust_domain())
            .unwrap_or_else(|e| panic!("{text:?}: its trust domain does not parse: {e}"));
        assert_eq!(domain.as_str(), id.trust_domain());
        let again = TrustDomain::from_id(&format!("spiffe://{domain}"))
            .unwrap_or_else(|e| panic!("{text:?}: spiffe://{domain} does not parse: {e}"));
        assert_eq!(again, domain);
    }
}
