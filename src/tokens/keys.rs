//! Signing and verifying keys: loaded from the settings (HMAC secrets or PEM
//! key pairs), generated at first start for HMAC, or generated on demand by
//! `tessera keys generate`. The only place that touches jsonwebtoken.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::ExposeSecret;

use crate::config::{JwtAlgorithm, PreviousKey, Settings};

/// Bytes of randomness in a generated HMAC key (256 bits).
/// The shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size).
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
        "the key file {0} can be read or written by other users (mode {1:04o}); a private key must be private to its owner: chmod 600 {0}"
    )]
    Exposed(PathBuf, u32),
}

/// Secrets from documentation, tutorials and starter kits (lower case):
/// a key containing one of these is known to more people than its owner.
const EXAMPLE_SECRET_MARKERS: &[&str] = &[
    // Django's startproject development keys.
    "django-insecure-",
    // jwt.io's HS256/384/512 examples.
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    // Supabase's local and self-hosting defaults.
    "super-secret-jwt-token-with-at-least-32-characters-long",
    // Placeholders meant to be replaced.
    "changeme",
    "change-me",
    "change_me",
    "change-this",
    "change_this",
    "replace-me",
    "replace_me",
    "your-secret",
    "your_secret",
    "yoursecret",
];

/// Public halves (JWK `x`) of example private keys published in RFCs: RFC
/// 8037 A.1's Ed25519 key.
const EXAMPLE_ED25519_X: &[&str] = &["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"];

/// Refuses an HMAC secret that is a known example or obviously not random.
fn refuse_weak_secret(secret: &[u8], what: &str) -> Result<(), KeyError> {
    let lower = String::from_utf8_lossy(secret).to_lowercase();
    if EXAMPLE_SECRET_MARKERS.iter().any(|m| lower.contains(m)) {
        return Err(KeyError::Example(what.into()));
    }
    let mut seen = [false; 256];
    for &b in secret {
        seen[usize::from(b)] = true;
    }
    if seen.iter().filter(|s| **s).count() < 8 {
        return Err(KeyError::NotRandom(
            what.into(),
            "fewer than 8 distinct characters",
        ));
    }
    Ok(())
}

/// Refuses a key whose public half is a published example.
fn refuse_example_key(key: &VerifyingKey, what: &str) -> Result<(), KeyError> {
    let x = key
        .jwk
        .as_ref()
        .and_then(|jwk| serde_json::to_value(jwk).ok())
        .and_then(|v| v.get("x").and_then(|x| x.as_str()).map(str::to_owned));
    if x.is_some_and(|x| EXAMPLE_ED25519_X.contains(&x.as_str())) {
        return Err(KeyError::Example(what.into()));
    }
    Ok(())
}

/// Reads a file holding a private key or secret, refusing one that other
/// users can read or change (as ssh does).
fn read_private_file(path: &str) -> Result<Vec<u8>, KeyError> {
    let material = read_file(path)?;
    // Said before the mode check: a public key needs no chmod, it is the
    // wrong file.
    refuse_public_as_private(&material, "jwt.signing_key_file")?;
    check_private_mode(path)?;
    Ok(material)
}

/// A public key where the private one belongs (the `-public.pem` of a pair
/// given as the signing key).
fn refuse_public_as_private(material: &[u8], what: &str) -> Result<(), KeyError> {
    let public = [
        b"-----BEGIN PUBLIC KEY".as_slice(),
        b"-----BEGIN RSA PUBLIC KEY",
        b"ssh-",
    ];
    let text = material.trim_ascii_start();
    if public.iter().any(|m| text.starts_with(m)) {
        return Err(KeyError::PublicAsPrivate(what.into()));
    }
    Ok(())
}

/// Refuses a file that other users can read or change.
fn check_private_mode(path: &str) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| KeyError::Read(PathBuf::from(path), e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed(PathBuf::from(path), mode & 0o7777));
        }
    }
    Ok(())
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
    decoding: DecodingKey,
    jwk: Option<Jwk>,
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
        jsonwebtoken::crypto::verify(signature, message, &self.decoding, algorithm(self.alg))
            .unwrap_or(false)
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
        Ok(Self {
            alg,
            kid,
            decoding: DecodingKey::from_secret(secret),
            jwk: None,
        })
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
            decoding,
            jwk: Some(jwk),
        })
    }
}

/// The current key: it signs, and verifies like any other.
pub struct SigningKey {
    encoding: EncodingKey,
    pub verifying: VerifyingKey,
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
    /// An HMAC key from its bytes; the caller has checked the length.
    pub fn hmac(alg: JwtAlgorithm, secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            verifying: VerifyingKey {
                alg,
                kid: None,
                decoding: DecodingKey::from_secret(secret),
                jwk: None,
            },
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
        let key = Self {
            encoding,
            verifying,
        };
        // A P-384 key under ES256, or a public key of another pair, would
        // otherwise only show at the first login.
        let probe = b"tessera key self-test";
        match jsonwebtoken::crypto::sign(probe, &key.encoding, algorithm(alg)) {
            Ok(sig) if key.verifying.verify(probe, &sig) => Ok(key),
            Ok(_) => Err(KeyError::Unfit(
                what.into(),
                alg.as_str(),
                "its public key does not match it".into(),
            )),
            Err(e) => Err(unfit(e)),
        }
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.verifying.alg
    }

    pub fn algorithm_name(&self) -> &'static str {
        self.verifying.alg.as_str()
    }

    /// The base64url signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        jsonwebtoken::crypto::sign(message, &self.encoding, algorithm(self.verifying.alg))
            .expect("the key passed its self-test for its own algorithm")
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
            .map(|(i, p)| previous_key(settings.jwt.algorithm, i, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Self { current, previous }, source))
    }
}

fn read_file(path: &str) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|e| KeyError::Read(PathBuf::from(path), e))
}

fn previous_key(
    default_alg: JwtAlgorithm,
    i: usize,
    p: &PreviousKey,
) -> Result<VerifyingKey, KeyError> {
    let alg = p.algorithm.unwrap_or(default_alg);
    let what = format!("jwt.previous_keys[{i}]");
    let material = if p.verifying_key_file.is_empty() {
        p.verifying_key.clone().into_bytes()
    } else {
        read_file(&p.verifying_key_file)?
    };
    if alg.is_hmac() {
        let secret = trim_secret(material);
        // First whether it is a secret at all (a public PEM listed without
        // its algorithm is not), then whether it is kept like one.
        let key = VerifyingKey::from_public_pem(alg, &secret, Some(p.kid.clone()), &what)?;
        refuse_weak_secret(&secret, &what)?;
        if !p.verifying_key_file.is_empty() {
            check_private_mode(&p.verifying_key_file)?;
        }
        return Ok(key);
    }
    let key = VerifyingKey::from_public_pem(alg, &material, Some(p.kid.clone()), &what)?;
    refuse_example_key(&key, &what)?;
    Ok(key)
}

/// Markers of asymmetric key material, wherever they stand: a PEM block
/// (after a comment line or a byte-order mark too), an RFC 4716 SSH2 block,
/// or an OpenSSH public key line. PyJWT refuses the same as HMAC secrets.
const KEY_MARKERS: [&[u8]; 7] = [
    b"-----BEGIN",
    b"---- BEGIN",
    b"ssh-rsa",
    b"ssh-dss",
    b"ssh-ed25519",
    b"ecdsa-sha2-",
    b"sk-ssh-ed25519@openssh.com",
];

/// A key file or PEM document used as an HMAC secret would make a
/// published public key a signing secret (algorithm confusion by
/// configuration): refused.
fn refuse_pem_as_secret(secret: &[u8], what: &str) -> Result<(), KeyError> {
    let found = KEY_MARKERS
        .iter()
        .any(|m| secret.windows(m.len()).any(|w| w == *m));
    if found {
        return Err(KeyError::Unfit(
            what.into(),
            "HMAC",
            "this is a PEM or SSH key, not a shared secret; set the key's algorithm".into(),
        ));
    }
    Ok(())
}

/// A secret read from a file, without the trailing newline editors add.
fn trim_secret(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

fn signing_key_from_settings(settings: &Settings) -> Result<(SigningKey, KeySource), KeyError> {
    let jwt = &settings.jwt;
    let alg = jwt.algorithm;
    let inline = jwt.signing_key.expose_secret();
    let material = match (&jwt.signing_key_file, inline.is_empty()) {
        (Some(_), false) => return Err(KeyError::Ambiguous),
        (Some(path), true) => Some(read_private_file(path)?),
        (None, false) => Some(inline.as_bytes().to_vec()),
        (None, true) => None,
    };
    if alg.is_hmac() {
        return match material {
            Some(secret) => {
                let secret = trim_secret(secret);
                if secret.len() < alg.min_hmac_key_bytes() {
                    return Err(KeyError::TooShort(
                        "jwt.signing_key".into(),
                        alg.too_short(secret.len()),
                    ));
                }
                refuse_pem_as_secret(&secret, "jwt.signing_key")?;
                refuse_weak_secret(&secret, "jwt.signing_key")?;
                Ok((SigningKey::hmac(alg, &secret), KeySource::Configured))
            }
            None => generated_hmac_key(settings),
        };
    }
    let private = material.ok_or(KeyError::Missing(alg.as_str()))?;
    refuse_public_as_private(&private, "jwt.signing_key")?;
    let public = match (&jwt.verifying_key_file, &jwt.verifying_key) {
        (Some(path), _) => Some(read_file(path)?),
        (None, Some(pem)) => Some(pem.clone().into_bytes()),
        (None, None) => None,
    };
    let key = SigningKey::from_private_pem(alg, &private, public.as_deref(), jwt.key_id.clone())?;
    refuse_example_key(&key.verifying, "jwt.signing_key")?;
    Ok((key, KeySource::Configured))
}

fn generated_hmac_key(settings: &Settings) -> Result<(SigningKey, KeySource), KeyError> {
    let alg = settings.jwt.algorithm;
    match key_file_path(&settings.database.url) {
        None => {
            let secret = random_key(alg)?;
            Ok((
                SigningKey::hmac(alg, secret.as_bytes()),
                KeySource::Ephemeral,
            ))
        }
        Some(path) => {
            let (secret, source) = load_or_create(&path, alg)?;
            Ok((SigningKey::hmac(alg, secret.as_bytes()), source))
        }
    }
}

/// A random HMAC secret for `alg`, as long as its hash (32, 48 or 64
/// bytes), hex-encoded.
fn random_key(alg: JwtAlgorithm) -> Result<String, KeyError> {
    let mut bytes = vec![0u8; alg.min_hmac_key_bytes()];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Where a generated key is kept: `<database file stem>.key` beside a SQLite
/// file, `tessera.key` in the working folder for PostgreSQL, nowhere for an
/// in-memory database.
pub fn key_file_path(database_url: &str) -> Option<PathBuf> {
    if !database_url.starts_with("sqlite:") {
        return Some(PathBuf::from("tessera.key"));
    }
    crate::config::sqlite_file(database_url).map(|p| p.with_extension("key"))
}

fn load_or_create(path: &Path, alg: JwtAlgorithm) -> Result<(String, KeySource), KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            if let Some(p) = path.to_str() {
                read_private_file(p)?;
            }
            let secret = text.trim().to_string();
            let what = path.display().to_string();
            if secret.len() < alg.min_hmac_key_bytes() {
                return Err(KeyError::TooShort(what, alg.too_short(secret.len())));
            }
            // Whatever was put in the generated key's place goes through
            // the checks of a configured secret.
            refuse_pem_as_secret(secret.as_bytes(), &what)?;
            refuse_weak_secret(secret.as_bytes(), &what)?;
            Ok((secret, KeySource::Reused(path.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_key(alg)?;
            write_private(path, secret.as_bytes())
                .map_err(|e| KeyError::Write(path.to_path_buf(), e))?;
            Ok((secret, KeySource::Generated(path.to_path_buf())))
        }
        Err(e) => Err(KeyError::Read(path.to_path_buf(), e)),
    }
}

/// Creates the file with `mode` from the start (a private key is never
/// readable by others, not even for a moment), failing if it exists.
fn write_new(path: &Path, contents: &[u8], mode: u32, replace: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    if replace {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    if !contents.ends_with(b"\n") {
        file.write_all(b"\n")?;
    }
    file.sync_all()
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_new(path, contents, 0o600, false)
}

/// Files written by `tessera keys generate`.
#[derive(Debug)]
pub struct GeneratedKeys {
    /// The private key (or HMAC secret), mode 0600.
    pub private: PathBuf,
    /// The public key, for asymmetric algorithms.
    pub public: Option<PathBuf>,
}

/// Generates a fresh key (pair) for `alg` into `dir`: an HMAC secret as
/// long as the hash, a P-256/P-384 or Ed25519 pair, or a 2048-bit RSA pair
/// for every RS/PS algorithm.
///
/// Files already there are refused unless `replace` is set, before anything
/// is written: an existing key may be the one live tokens are signed with.
pub fn generate(alg: JwtAlgorithm, dir: &Path, replace: bool) -> Result<GeneratedKeys, KeyError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair;
    let stem = alg.as_str().to_ascii_lowercase();
    let targets = if alg.is_hmac() {
        vec![dir.join(format!("{stem}.key"))]
    } else {
        vec![
            dir.join(format!("{stem}-private.pem")),
            dir.join(format!("{stem}-public.pem")),
        ]
    };
    if let Some(existing) = targets.iter().find(|p| p.exists()).filter(|_| !replace) {
        return Err(KeyError::Exists(existing.clone()));
    }
    if alg.is_hmac() {
        let path = targets[0].clone();
        write_new(&path, random_key(alg)?.as_bytes(), 0o600, replace)
            .map_err(|e| KeyError::Write(path.clone(), e))?;
        return Ok(GeneratedKeys {
            private: path,
            public: None,
        });
    }
    let failed = |what: &str| KeyError::Random(format!("cannot generate the {what} key"));
    let (private_der, public_der): (Vec<u8>, Vec<u8>) = match alg {
        JwtAlgorithm::EdDSA => {
            let pair =
                aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(|_| failed("Ed25519"))?;
            let private = pair.to_pkcs8v1().map_err(|_| failed("Ed25519"))?;
            let public: PublicKeyX509Der =
                pair.public_key().as_der().map_err(|_| failed("Ed25519"))?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        JwtAlgorithm::ES256 | JwtAlgorithm::ES384 => {
            let signing = if alg == JwtAlgorithm::ES256 {
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(signing)
                .map_err(|_| failed("ECDSA"))?;
            let private = pair.to_pkcs8v1().map_err(|_| failed("ECDSA"))?;
            let public: PublicKeyX509Der =
                pair.public_key().as_der().map_err(|_| failed("ECDSA"))?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        _ => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| failed("RSA"))?;
            let private: Pkcs8V1Der = pair.as_der().map_err(|_| failed("RSA"))?;
            let public: PublicKeyX509Der = pair.public_key().as_der().map_err(|_| failed("RSA"))?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
    };
    let private_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", private_der));
    let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", public_der));
    let (private, public) = (targets[0].clone(), targets[1].clone());
    write_new(&private, private_pem.as_bytes(), 0o600, replace)
        .map_err(|e| KeyError::Write(private.clone(), e))?;
    write_new(&public, public_pem.as_bytes(), 0o644, replace)
        .map_err(|e| KeyError::Write(public.clone(), e))?;
    Ok(GeneratedKeys {
        private,
        public: Some(public),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_and_non_random_secrets_are_refused() {
        for secret in [
            "django-insecure-k3y$0m3th1ng-r4nd0m-l00k1ng-but-dev0nly",
            "your-256-bit-secret-padded-out-to-thirty-two-bytes",
            "super-secret-jwt-token-with-at-least-32-characters-long",
            "CHANGEME-CHANGEME-CHANGEME-CHANGEME",
        ] {
            assert!(
                matches!(
                    refuse_weak_secret(secret.as_bytes(), "k"),
                    Err(KeyError::Example(_))
                ),
                "{secret}"
            );
        }
        assert!(matches!(
            refuse_weak_secret(&[b'a'; 64], "k"),
            Err(KeyError::NotRandom(..))
        ));
        // Test keys of the Simple JWT interop vectors and of the Django peer
        // are not examples anyone deploys with; they must keep working.
        for secret in [
            "interop-vector-hs256-key-0123456789abcdef0123456789abcdef0123456",
            "django-ref-test-secret-key-0123456789-not-for-prod",
            "3f8a0c1e9b7d4265a1c0e3f7b9d2468a",
        ] {
            refuse_weak_secret(secret.as_bytes(), "k").unwrap();
        }
    }

    #[test]
    fn the_rfc_8037_example_key_is_refused() {
        // RFC 8037, appendix A.1: the private key `d` whose public `x` we list.
        let d = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        )
        .unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&d).unwrap();
        let pem = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            pair.to_pkcs8v1().unwrap().as_ref().to_vec(),
        ));
        let key =
            SigningKey::from_private_pem(JwtAlgorithm::EdDSA, pem.as_bytes(), None, None).unwrap();
        assert!(matches!(
            refuse_example_key(&key.verifying, "k"),
            Err(KeyError::Example(_))
        ));
        // A fresh key is not an example.
        let dir = tempfile::tempdir().unwrap();
        let fresh = generate(JwtAlgorithm::EdDSA, dir.path(), false).unwrap();
        let key = SigningKey::from_private_pem(
            JwtAlgorithm::EdDSA,
            &fs::read(&fresh.private).unwrap(),
            None,
            None,
        )
        .unwrap();
        refuse_example_key(&key.verifying, "k").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn key_files_others_can_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        fs::write(&path, "secret").unwrap();
        let p = path.to_str().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match read_private_file(p) {
                Err(KeyError::Exposed(_, m)) => assert_eq!(m, mode),
                other => panic!("{mode:o}: {other:?}"),
            }
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read_private_file(p).unwrap(), b"secret");
        }
    }

    #[test]
    fn key_file_sits_beside_the_sqlite_file() {
        assert_eq!(
            key_file_path("sqlite://tessera.db?mode=rwc"),
            Some(PathBuf::from("tessera.key"))
        );
        assert_eq!(
            key_file_path("sqlite:///var/lib/tessera/data.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/tessera/data.db").with_extension("key"))
        );
        assert_eq!(key_file_path("sqlite::memory:"), None);
        assert_eq!(key_file_path("sqlite://x?mode=memory&cache=shared"), None);
    }

    #[test]
    fn generated_hmac_keys_are_as_long_as_the_hash_and_checked_when_reused() {
        for (alg, hex_len) in [
            (JwtAlgorithm::HS256, 64),
            (JwtAlgorithm::HS384, 96),
            (JwtAlgorithm::HS512, 128),
        ] {
            assert_eq!(random_key(alg).unwrap().len(), hex_len);
        }
        // Whatever stands in the generated key's place is checked as a
        // configured secret would be.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.key");
        write_private(
            &path,
            b"# a certificate, not a secret\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n",
        )
        .unwrap();
        let err = load_or_create(&path, JwtAlgorithm::HS256)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PEM or SSH key"), "{err}");
    }

    #[test]
    fn generated_hmac_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.key");
        let (first, source) = load_or_create(&path, JwtAlgorithm::HS256).unwrap();
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, source) = load_or_create(&path, JwtAlgorithm::HS256).unwrap();
        assert_eq!(second, first);
        assert_eq!(source, KeySource::Reused(path));
    }

    #[test]
    fn generated_pairs_load_and_sign_for_every_asymmetric_algorithm() {
        for alg in JwtAlgorithm::ALL {
            let dir = tempfile::tempdir().unwrap();
            let files = generate(alg, dir.path(), false).unwrap();
            let private = fs::read(&files.private).unwrap();
            if alg.is_hmac() {
                assert!(files.public.is_none());
                continue;
            }
            let public = fs::read(files.public.as_ref().unwrap()).unwrap();
            let derived = SigningKey::from_private_pem(alg, &private, None, None).unwrap();
            let explicit =
                SigningKey::from_private_pem(alg, &private, Some(&public), None).unwrap();
            assert_eq!(derived.verifying.kid, explicit.verifying.kid, "{alg:?}");
            let sig = derived.sign(b"m");
            assert!(explicit.verify(b"m", &sig), "{alg:?}");
            let jwk = derived.verifying.public_jwk().unwrap();
            let json = serde_json::to_value(jwk).unwrap();
            assert_eq!(json["use"], "sig");
            assert_eq!(json["alg"], alg.as_str());
            for private_part in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(
                    json.get(private_part).is_none(),
                    "{alg:?} publishes {private_part}"
                );
            }
        }
    }

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
}
