//! Signing and verifying keys: loaded from the settings (HMAC secrets or PEM
//! key pairs), generated at first start for HMAC, or generated on demand by
//! `tessera keys generate`. The only place that touches jsonwebtoken.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::ExposeSecret;

use crate::config::{JwtAlgorithm, KeyFilePermissions, PreviousKey, Settings};

mod files;
mod generate;
mod hygiene;
mod load;

pub use files::key_file_path;
use files::*;
pub use generate::{GeneratedKeys, generate};
use hygiene::*;
use load::*;

/// The smallest RSA modulus accepted (NIST: 2048 bits until 2030).
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}: {1}")]
    TooShort(String, String),
    #[error("{0}: not a usable {1} key: {2}")]
    Unfit(String, &'static str, String),
    #[error("{0}: an RSA key must have at least {MIN_RSA_BITS} bits; this one has {1}")]
    WeakRsa(String, usize),
    #[error("{0}: an RSA key must have at least {MIN_RSA_BITS} bits; this one has fewer")]
    WeakRsaPrivate(String),
    #[error(
        "jwt.signing_key or jwt.signing_key_file is required for {0} (make a key pair with `tessera keys generate --algorithm {0}`)"
    )]
    Missing(&'static str),
    #[error("jwt.signing_key and jwt.signing_key_file are both set; keep one")]
    Ambiguous,
    #[error("cannot read the key file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write the key file {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error(
        "{0} already exists: keep it, or pass --force to replace it (tokens signed with the old key then stop verifying unless it is listed in jwt.previous_keys)"
    )]
    Exists(PathBuf),
    #[error(
        "{0}: this is a public key; signing needs the private one (the -private.pem of the pair; the public key goes in jwt.verifying_key_file)"
    )]
    PublicAsPrivate(String),
    #[error("cannot get randomness for a key: {0}")]
    Random(String),
    #[error(
        "{0}: this is a published example key that anyone can sign with; use a random one (`tessera keys generate`, or 32 random bytes for HMAC)"
    )]
    Example(String),
    #[error("{0}: not a random secret ({1}); use 32 random bytes, e.g. `openssl rand -hex 32`")]
    NotRandom(String, &'static str),
    #[error(
        "the key file {0} can be read or written by other users (mode {1:04o}); a private key must be private to its owner: chmod 600 {0}, or mount it read-only and writable by its owner only (a Kubernetes secret volume, a Docker secret), or set jwt.key_file_permissions = \"warn\""
    )]
    Exposed(PathBuf, u32),
}

/// How the key was obtained, so start-up can tell the operator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    Generated(PathBuf),
    Reused(PathBuf),
    /// In-memory SQLite: the key lives as long as the process.
    Ephemeral,
}

/// aws-lc's HMAC for the HS algorithms, none for the others.
fn hmac_algorithm(alg: JwtAlgorithm) -> Option<hmac::Algorithm> {
    match alg {
        JwtAlgorithm::HS256 => Some(hmac::HMAC_SHA256),
        JwtAlgorithm::HS384 => Some(hmac::HMAC_SHA384),
        JwtAlgorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn algorithm(alg: JwtAlgorithm) -> Algorithm {
    match alg {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

/// A key that verifies tokens of one algorithm, with its public JWK (none
/// for HMAC: a shared secret is never published).
pub struct VerifyingKey {
    pub alg: JwtAlgorithm,
    pub kid: Option<String>,
    check: Check,
    jwk: Option<Jwk>,
}

/// What checks a signature.
enum Check {
    /// An HMAC secret as aws-lc keeps it, its inner and outer pads already
    /// hashed: jsonwebtoken's `crypto` functions would build it again (and a
    /// boxed verifier) for every token, a quarter of a Bearer request's
    /// instructions in process.
    Hmac(Box<hmac::Key>),
    /// A public key, through jsonwebtoken.
    Public(DecodingKey),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Whether `signature` (unpadded canonical base64url) signs `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        match &self.check {
            // The same decoding as jsonwebtoken's, and aws-lc's
            // constant-time comparison.
            Check::Hmac(key) => URL_SAFE_NO_PAD
                .decode(signature)
                .is_ok_and(|tag| hmac::verify(key, message, &tag).is_ok()),
            Check::Public(decoding) => {
                jsonwebtoken::crypto::verify(signature, message, decoding, algorithm(self.alg))
                    .unwrap_or(false)
            }
        }
    }

    /// The public JWK with `kid`, `alg` and `use: sig`, if the key is public.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }

    /// A public key from PEM (SPKI). `what` names the setting in errors.
    pub fn from_public_pem(
        alg: JwtAlgorithm,
        pem: &[u8],
        kid: Option<String>,
        what: &str,
    ) -> Result<Self, KeyError> {
        let unfit = |e: jsonwebtoken::errors::Error| {
            KeyError::Unfit(what.into(), alg.as_str(), e.to_string())
        };
        let decoding = match alg {
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512 => {
                return Self::hmac(alg, pem, kid, what);
            }
            JwtAlgorithm::ES256 | JwtAlgorithm::ES384 => {
                DecodingKey::from_ec_pem(pem).map_err(unfit)?
            }
            JwtAlgorithm::EdDSA => DecodingKey::from_ed_pem(pem).map_err(unfit)?,
            _ => DecodingKey::from_rsa_pem(pem).map_err(unfit)?,
        };
        let jwk = Jwk::from_decoding_key(&decoding, Some(algorithm(alg))).map_err(unfit)?;
        Self::public(alg, decoding, jwk, kid, what)
    }

    fn hmac(
        alg: JwtAlgorithm,
        secret: &[u8],
        kid: Option<String>,
        what: &str,
    ) -> Result<Self, KeyError> {
        if secret.len() < alg.min_hmac_key_bytes() {
            return Err(KeyError::TooShort(what.into(), alg.too_short(secret.len())));
        }
        refuse_pem_as_secret(secret, what)?;
        Ok(Self::hmac_unchecked(alg, secret, kid))
    }

    /// An HMAC key whose algorithm, length and form the caller has checked.
    fn hmac_unchecked(alg: JwtAlgorithm, secret: &[u8], kid: Option<String>) -> Self {
        let algorithm = hmac_algorithm(alg).expect("an HS algorithm");
        Self {
            alg,
            kid,
            check: Check::Hmac(Box::new(hmac::Key::new(algorithm, secret))),
            jwk: None,
        }
    }

    /// Completes a public key: checks RSA strength, names it (kid defaults
    /// to the RFC 7638 thumbprint) and marks its JWK for signatures.
    fn public(
        alg: JwtAlgorithm,
        decoding: DecodingKey,
        mut jwk: Jwk,
        kid: Option<String>,
        what: &str,
    ) -> Result<Self, KeyError> {
        if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .unwrap_or_default();
            let bits = n
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |i| (n.len() - i) * 8 - n[i].leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(KeyError::WeakRsa(what.into(), bits));
            }
        }
        let kid = match kid {
            Some(k) => k,
            None => jwk
                .thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| KeyError::Unfit(what.into(), alg.as_str(), e.to_string()))?,
        };
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            alg,
            kid: Some(kid),
            check: Check::Public(decoding),
            jwk: Some(jwk),
        })
    }
}

/// The current key: it signs, and verifies like any other.
pub struct SigningKey {
    /// The private key; none for HMAC, which signs with its verifying key.
    encoding: Option<EncodingKey>,
    pub verifying: VerifyingKey,
    /// A secret only this key's holders have, for what Django keys with
    /// `SECRET_KEY` (reset and activation tokens): an HMAC key itself (so a
    /// key carried over from Django keeps Django's links working), else a
    /// digest of the private key.
    derived_secret: secrecy::SecretBox<[u8]>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.verifying.alg)
            .field("kid", &self.verifying.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key from its bytes; the caller has checked the length (and
    /// that `alg` is an HS one).
    pub fn hmac(alg: JwtAlgorithm, secret: &[u8]) -> Self {
        Self {
            encoding: None,
            verifying: VerifyingKey::hmac_unchecked(alg, secret, None),
            derived_secret: Box::<[u8]>::from(secret).into(),
        }
    }

    /// A private key from PEM (PKCS#8, or PKCS#1 for RSA), with its public
    /// half from `public_pem` or derived from the private key. Refuses a key
    /// of the wrong kind, an RSA key under 2048 bits, and a pair whose halves
    /// do not match (checked by signing and verifying once).
    pub fn from_private_pem(
        alg: JwtAlgorithm,
        private_pem: &[u8],
        public_pem: Option<&[u8]>,
        kid: Option<String>,
    ) -> Result<Self, KeyError> {
        let what = "jwt.signing_key";
        let unfit = |e: jsonwebtoken::errors::Error| {
            // aws-lc refuses small RSA keys while parsing them.
            if e.to_string().contains("TooSmall") {
                KeyError::WeakRsaPrivate(what.into())
            } else {
                KeyError::Unfit(what.into(), alg.as_str(), e.to_string())
            }
        };
        let encoding = match alg {
            JwtAlgorithm::ES256 | JwtAlgorithm::ES384 => EncodingKey::from_ec_pem(private_pem),
            JwtAlgorithm::EdDSA => EncodingKey::from_ed_pem(private_pem),
            _ => EncodingKey::from_rsa_pem(private_pem),
        }
        .map_err(unfit)?;
        let verifying = match public_pem {
            Some(pem) => VerifyingKey::from_public_pem(alg, pem, kid, "jwt.verifying_key")?,
            None => {
                let jwk = Jwk::from_encoding_key(&encoding, algorithm(alg)).map_err(unfit)?;
                let decoding = DecodingKey::from_jwk(&jwk).map_err(unfit)?;
                VerifyingKey::public(alg, decoding, jwk, kid, what)?
            }
        };
        let digest = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"tessera users.token_secret\0");
            h.update(private_pem);
            hex::encode(h.finalize())
        };
        // A P-384 key under ES256, or a public key of another pair, would
        // otherwise only show at the first login.
        let probe = b"tessera key self-test";
        match jsonwebtoken::crypto::sign(probe, &encoding, algorithm(alg)) {
            Ok(sig) if verifying.verify(probe, &sig) => {}
            Ok(_) => {
                return Err(KeyError::Unfit(
                    what.into(),
                    alg.as_str(),
                    "its public key does not match it".into(),
                ));
            }
            Err(e) => return Err(unfit(e)),
        }
        Ok(Self {
            encoding: Some(encoding),
            verifying,
            derived_secret: digest.into_bytes().into_boxed_slice().into(),
        })
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.verifying.alg
    }

    pub fn algorithm_name(&self) -> &'static str {
        self.verifying.alg.as_str()
    }

    /// The secret that stands in for Django's `SECRET_KEY` when
    /// `users.token_secret` is not set.
    pub fn derived_secret(&self) -> &[u8] {
        secrecy::ExposeSecret::expose_secret(&self.derived_secret)
    }

    /// The base64url signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        match (&self.verifying.check, &self.encoding) {
            (Check::Hmac(key), _) => URL_SAFE_NO_PAD.encode(hmac::sign(key, message)),
            (Check::Public(_), Some(encoding)) => {
                jsonwebtoken::crypto::sign(message, encoding, algorithm(self.verifying.alg))
                    .expect("the key passed its self-test for its own algorithm")
            }
            (Check::Public(_), None) => unreachable!("a public key is built with its private key"),
        }
    }

    /// Whether `signature` (unpadded canonical base64url) signs `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        self.verifying.verify(message, signature)
    }
}

/// Every key in use: the current one, which signs, and retired ones that
/// still verify until the tokens they signed expire.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub previous: Vec<VerifyingKey>,
}

impl KeyRing {
    pub fn single(current: SigningKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// The keys that may have signed a token with this header `kid`.
    ///
    /// A known `kid` names its key. With asymmetric keys, a token without
    /// `kid` (as Simple JWT issues) is checked against the current key only,
    /// and an unknown `kid` is refused. HMAC tokens carry no `kid` (and Simple
    /// JWT passes any header through), so for them the current secret and
    /// then the retired HMAC secrets are tried: rotating a shared secret
    /// logs nobody out either.
    pub fn candidates(&self, kid: Option<&str>) -> Vec<&VerifyingKey> {
        let all = || std::iter::once(&self.current.verifying).chain(&self.previous);
        if let Some(k) = kid.and_then(|kid| all().find(|k| k.kid.as_deref() == Some(kid))) {
            return vec![k];
        }
        if kid.is_some() && !self.current.algorithm().is_hmac() {
            return Vec::new();
        }
        let mut keys = vec![&self.current.verifying];
        keys.extend(self.previous.iter().filter(|k| k.alg.is_hmac()));
        keys
    }

    /// The public keys to publish: current first, HMAC never.
    pub fn public_jwks(&self) -> Vec<&Jwk> {
        std::iter::once(&self.current.verifying)
            .chain(&self.previous)
            .filter_map(VerifyingKey::public_jwk)
            .collect()
    }

    /// The keys the settings describe, with how the signing key was found.
    pub fn from_settings(settings: &Settings) -> Result<(Self, KeySource), KeyError> {
        let (current, source) = signing_key_from_settings(settings)?;
        let previous = settings
            .jwt
            .previous_keys
            .iter()
            .enumerate()
            .map(|(i, p)| {
                previous_key(
                    settings.jwt.algorithm,
                    i,
                    p,
                    settings.jwt.key_file_permissions,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Self { current, previous }, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ed = generate(JwtAlgorithm::EdDSA, dir.path(), false).unwrap();
        let ed_private = fs::read(&ed.private).unwrap();
        let err =
            SigningKey::from_private_pem(JwtAlgorithm::RS256, &ed_private, None, None).unwrap_err();
        assert!(err.to_string().contains("not a usable RS256 key"), "{err}");
        let es = generate(JwtAlgorithm::ES256, dir.path(), false).unwrap();
        let es_private = fs::read(&es.private).unwrap();
        assert!(
            SigningKey::from_private_pem(JwtAlgorithm::ES384, &es_private, None, None).is_err()
        );
        // A public key of another pair.
        let other = tempfile::tempdir().unwrap();
        let ed2 = generate(JwtAlgorithm::EdDSA, other.path(), false).unwrap();
        let wrong_public = fs::read(ed2.public.unwrap()).unwrap();
        let err = SigningKey::from_private_pem(
            JwtAlgorithm::EdDSA,
            &ed_private,
            Some(&wrong_public),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    /// The prebuilt HMAC key signs and verifies as jsonwebtoken does, and
    /// refuses what it refuses.
    #[test]
    fn hmac_keys_agree_with_jsonwebtoken() {
        let secret = b"a-secret-of-sixty-four-bytes-for-hs512-0123456789abcdef012345678";
        let message = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0";
        for alg in [
            JwtAlgorithm::HS256,
            JwtAlgorithm::HS384,
            JwtAlgorithm::HS512,
        ] {
            let key = SigningKey::hmac(alg, secret);
            let ours = key.sign(message);
            let theirs = jsonwebtoken::crypto::sign(
                message,
                &EncodingKey::from_secret(secret),
                algorithm(alg),
            )
            .unwrap();
            assert_eq!(ours, theirs, "{alg:?}");
            assert!(key.verify(message, &ours));
            let ring = |s: &str| {
                jsonwebtoken::crypto::verify(
                    s,
                    message,
                    &DecodingKey::from_secret(secret),
                    algorithm(alg),
                )
                .unwrap_or(false)
            };
            assert!(ring(&ours));
            // Another message; a changed character; padding; the last
            // character's unused bits set (not canonical: HS256 and HS512
            // have some); truncated; empty.
            let mut changed = ours.clone().into_bytes();
            changed[3] = if changed[3] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let last = ALPHABET
                .iter()
                .position(|c| Some(c) == ours.as_bytes().last())
                .unwrap();
            let noncanonical = (!ours.len().is_multiple_of(4)).then(|| {
                assert_eq!(last % 4, 0, "canonical: the unused bits are zero");
                format!("{}{}", &ours[..ours.len() - 1], ALPHABET[last + 1] as char)
            });
            assert!(!key.verify(b"other", &ours));
            for refused in [
                Some(changed),
                Some(format!("{ours}=")),
                noncanonical,
                Some(ours[..ours.len() - 2].to_owned()),
                Some(String::new()),
            ]
            .into_iter()
            .flatten()
            {
                let refused = refused.as_str();
                assert!(!key.verify(message, refused), "{alg:?} {refused}");
                assert!(!ring(refused), "{alg:?} {refused}");
            }
        }
    }
}
