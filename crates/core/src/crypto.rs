//! ECDSA P-256 over a 32-byte SHA-256 digest, as AWS KMS signs with `MessageType=DIGEST`.
//!
//! Signatures are base64 of a DER `ECDSA-Sig-Value`. High-S signatures are valid: KMS and
//! OpenSSL produce them, and ECDSA itself does not require low S (only some blockchains do).
//!
//! Two verification backends, same results:
//! - `aws-lc` (default feature): AWS-LC through `aws-lc-rs`, ~4.5x faster here.
//! - pure Rust (`p256`/`ecdsa`), always compiled; it is the whole implementation when the
//!   `aws-lc` feature is off, and it parses keys and signatures in both builds so that both
//!   backends accept exactly the same encodings.

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::error::{KeyError, SignatureError};
use crate::hash::Hash32;

/// The signature algorithm label of the lineage (AWS KMS `SigningAlgorithm`).
pub const ALGORITHM: &str = "ECDSA_SHA_256";

/// Which verification backend this build uses.
pub fn backend_name() -> &'static str {
    if cfg!(feature = "aws-lc") {
        "aws-lc-rs (AWS-LC)"
    } else {
        "p256 (pure Rust)"
    }
}

/// A P-256 public key, ready to verify.
#[derive(Clone)]
pub struct PublicKey {
    inner: p256::ecdsa::VerifyingKey,
    #[cfg(feature = "aws-lc")]
    fast: std::sync::Arc<aws_lc_rs::signature::ParsedPublicKey>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.sec1_uncompressed()))
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl PublicKey {
    /// From an SPKI PEM (`-----BEGIN PUBLIC KEY-----`). Rejects other curves and points not on
    /// P-256.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pk = p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|e| {
            if pem.contains("-----BEGIN PUBLIC KEY-----") {
                KeyError::NotP256 {
                    reason: e.to_string(),
                }
            } else {
                KeyError::Pem {
                    expected: "PUBLIC KEY",
                    reason: e.to_string(),
                }
            }
        })?;
        Self::from_p256(pk)
    }

    /// From SPKI DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let pk = p256::PublicKey::from_public_key_der(der).map_err(|e| KeyError::NotP256 {
            reason: e.to_string(),
        })?;
        Self::from_p256(pk)
    }

    fn from_p256(pk: p256::PublicKey) -> Result<Self, KeyError> {
        let inner = p256::ecdsa::VerifyingKey::from(pk);
        #[cfg(feature = "aws-lc")]
        let fast = {
            let point = inner.to_encoded_point(false);
            let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
                point.as_bytes(),
            )
            .map_err(|e| KeyError::NotP256 {
                reason: e.to_string(),
            })?;
            std::sync::Arc::new(parsed)
        };
        Ok(Self {
            inner,
            #[cfg(feature = "aws-lc")]
            fast,
        })
    }

    /// From an uncompressed or compressed SEC1 point. Rejects points not on P-256.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        let pk = p256::PublicKey::from_sec1_bytes(bytes).map_err(|e| KeyError::NotP256 {
            reason: e.to_string(),
        })?;
        Self::from_p256(pk)
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The uncompressed SEC1 point (65 bytes).
    pub fn sec1_uncompressed(&self) -> Vec<u8> {
        self.inner.to_encoded_point(false).as_bytes().to_vec()
    }

    /// Verifies a DER signature over a 32-byte digest.
    pub fn verify_digest(&self, digest: &Hash32, der: &[u8]) -> Result<(), SignatureError> {
        // Parse with the RustCrypto types in both builds: one definition of "well-formed DER".
        let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::NotDer)?;
        #[cfg(feature = "aws-lc")]
        {
            let _ = sig;
            let d = aws_lc_rs::digest::Digest::import_less_safe(
                digest.as_bytes(),
                &aws_lc_rs::digest::SHA256,
            )
            .map_err(|_| SignatureError::Mismatch)?;
            self.fast
                .verify_digest_sig(&d, der)
                .map_err(|_| SignatureError::Mismatch)
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            self.inner
                .verify_prehash(digest.as_bytes(), &sig)
                .map_err(|_| SignatureError::Mismatch)
        }
    }

    /// Verifies with the pure-Rust backend whatever the build; for cross-checks and benches.
    pub fn verify_digest_pure(&self, digest: &Hash32, der: &[u8]) -> Result<(), SignatureError> {
        let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::NotDer)?;
        self.inner
            .verify_prehash(digest.as_bytes(), &sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Decodes the `signature` member: standard base64 (padding optional) of DER.
pub fn decode_signature(b64: &str) -> Result<Vec<u8>, SignatureError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(b64.trim())
        .map_err(|e| SignatureError::NotBase64 {
            reason: e.to_string(),
        })
}

/// Encodes DER bytes as the `signature` member.
pub fn encode_signature(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// A P-256 private key for producers of v1 envelopes (the control plane, tests, benches).
///
/// Signs through AWS-LC when the `aws-lc` feature is on (random nonce, ~10x the pure-Rust
/// signer here), else with RustCrypto's RFC 6979 deterministic nonce. Either signature
/// verifies the same way.
#[derive(Clone)]
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
    #[cfg(feature = "aws-lc")]
    fast: Option<std::sync::Arc<aws_lc_rs::signature::EcdsaKeyPair>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        Self::from_inner(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    fn from_inner(inner: p256::ecdsa::SigningKey) -> Self {
        #[cfg(feature = "aws-lc")]
        let fast = inner.to_pkcs8_der().ok().and_then(|der| {
            aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                der.as_bytes(),
            )
            .ok()
            .map(std::sync::Arc::new)
        });
        Self {
            inner,
            #[cfg(feature = "aws-lc")]
            fast,
        }
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_inner)
            .map_err(|e| KeyError::Pem {
                expected: "PRIVATE KEY",
                reason: e.to_string(),
            })
    }

    /// PKCS#8 PEM. The caller decides where it goes; it is secret.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| KeyError::Pem {
                expected: "PRIVATE KEY",
                reason: e.to_string(),
            })
    }

    /// From the 32-byte private scalar (big-endian). Rejects zero and values past the order.
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        p256::ecdsa::SigningKey::from_slice(bytes)
            .map(Self::from_inner)
            .map_err(|e| KeyError::NotP256 {
                reason: e.to_string(),
            })
    }

    /// The 32-byte private scalar (big-endian). Secret: the caller decides where it goes.
    pub fn to_scalar_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes().into()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        // A valid signing key always has a valid public point.
        PublicKey::from_p256(p256::PublicKey::from(self.inner.verifying_key()))
            .unwrap_or_else(|_| unreachable!("P-256 public key of a valid private key"))
    }

    /// Signs a 32-byte digest; DER bytes. AWS-LC (random nonce) when the feature is on, else
    /// RFC 6979 (deterministic nonce).
    pub fn sign_digest(&self, digest: &Hash32) -> Vec<u8> {
        #[cfg(feature = "aws-lc")]
        if let Some(fast) = &self.fast {
            let signed = aws_lc_rs::digest::Digest::import_less_safe(
                digest.as_bytes(),
                &aws_lc_rs::digest::SHA256,
            )
            .and_then(|d| fast.sign_digest(&d));
            if let Ok(sig) = signed {
                return sig.as_ref().to_vec();
            }
        }
        let sig: p256::ecdsa::Signature = self
            .inner
            .sign_prehash(digest.as_bytes())
            .unwrap_or_else(|_| unreachable!("a 32-byte prehash is always signable on P-256"));
        sig.to_der().as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_both_backends() {
        let k = SigningKey::generate();
        let pk = k.public_key();
        let d = Hash32::digest(b"record");
        let sig = k.sign_digest(&d);
        pk.verify_digest(&d, &sig).unwrap();
        pk.verify_digest_pure(&d, &sig).unwrap();
        let other = Hash32::digest(b"other");
        assert_eq!(
            pk.verify_digest(&other, &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            pk.verify_digest_pure(&other, &sig),
            Err(SignatureError::Mismatch)
        );
        // the AWS-LC signer is really in use where the feature is on, and survives a PEM trip
        #[cfg(feature = "aws-lc")]
        assert!(k.fast.is_some());
        let back = SigningKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
        pk.verify_digest(&d, &back.sign_digest(&d)).unwrap();
    }

    #[test]
    fn high_s_is_accepted() {
        let k = SigningKey::generate();
        let pk = k.public_key();
        let d = Hash32::digest(b"high-s");
        let sig = p256::ecdsa::Signature::from_der(&k.sign_digest(&d)).unwrap();
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let der = high.to_der().as_bytes().to_vec();
        // one of sig/high is high-S; both must verify
        pk.verify_digest(&d, &der).unwrap();
        pk.verify_digest_pure(&d, &der).unwrap();
    }

    #[test]
    fn malformed_signatures_and_keys() {
        let pk = SigningKey::generate().public_key();
        let d = Hash32::digest(b"x");
        assert_eq!(
            pk.verify_digest(&d, b"\x30\x00"),
            Err(SignatureError::NotDer)
        );
        assert_eq!(
            pk.verify_digest(&d, b"not der"),
            Err(SignatureError::NotDer)
        );
        assert!(matches!(
            decode_signature("%%%"),
            Err(SignatureError::NotBase64 { .. })
        ));
        assert!(PublicKey::from_pem("garbage").is_err());
        // a point not on the curve: flip the last byte of y
        let mut sec1 = pk.sec1_uncompressed();
        sec1[64] ^= 1;
        let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        spki.extend_from_slice(&sec1);
        assert!(matches!(
            PublicKey::from_spki_der(&spki),
            Err(KeyError::NotP256 { .. })
        ));
    }

    #[test]
    fn pem_round_trip() {
        let k = SigningKey::generate();
        let pem = k.to_pkcs8_pem().unwrap();
        let k2 = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(k.public_key(), k2.public_key());
        let pk = PublicKey::from_pem(&k.public_key().to_pem()).unwrap();
        assert_eq!(pk, k.public_key());
    }
}
