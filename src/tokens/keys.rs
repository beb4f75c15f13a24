//! The signing key: loaded from the settings, or generated at first start and
//! kept in a file. The only place that touches jsonwebtoken.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::ExposeSecret;

use crate::config::{JwtAlgorithm, Settings};

/// Bytes of randomness in a generated key (256 bits).
const GENERATED_KEY_BYTES: usize = 32;
/// The shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "jwt.signing_key: an HMAC key must be at least {MIN_HMAC_KEY_BYTES} bytes; {0} has {1}"
    )]
    TooShort(String, usize),
    #[error("cannot read the signing key file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write the signing key file {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("cannot get randomness for a signing key: {0}")]
    Random(String),
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

/// A key that signs and verifies with one algorithm.
pub struct SigningKey {
    algorithm: Algorithm,
    /// The `alg` header value.
    name: &'static str,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key from its bytes (callers check the length).
    pub fn hmac(algorithm: JwtAlgorithm, secret: &[u8]) -> Self {
        let name = algorithm.as_str();
        let algorithm = match algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::HS384 => Algorithm::HS384,
            JwtAlgorithm::HS512 => Algorithm::HS512,
        };
        Self {
            algorithm,
            name,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn algorithm_name(&self) -> &'static str {
        self.name
    }

    /// The base64url signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        jsonwebtoken::crypto::sign(message, &self.encoding, self.algorithm)
            .expect("the key was built for its own algorithm")
    }

    /// Whether `signature` (unpadded canonical base64url) signs `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        jsonwebtoken::crypto::verify(signature, message, &self.decoding, self.algorithm)
            .unwrap_or(false)
    }

    /// The key the settings describe: `jwt.signing_key` if set, else a key
    /// kept beside the SQLite database (generated on first start).
    pub fn from_settings(settings: &Settings) -> Result<(Self, KeySource), KeyError> {
        let jwt = &settings.jwt;
        let configured = jwt.signing_key.expose_secret();
        if !configured.is_empty() {
            if configured.len() < MIN_HMAC_KEY_BYTES {
                return Err(KeyError::TooShort(
                    "jwt.signing_key".into(),
                    configured.len(),
                ));
            }
            return Ok((
                Self::hmac(jwt.algorithm, configured.as_bytes()),
                KeySource::Configured,
            ));
        }
        match key_file_path(&settings.database.url) {
            None => {
                let secret = random_key()?;
                Ok((
                    Self::hmac(jwt.algorithm, secret.as_bytes()),
                    KeySource::Ephemeral,
                ))
            }
            Some(path) => {
                let (secret, source) = load_or_create(&path)?;
                Ok((Self::hmac(jwt.algorithm, secret.as_bytes()), source))
            }
        }
    }
}

fn random_key() -> Result<String, KeyError> {
    let mut bytes = [0u8; GENERATED_KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Where a generated key is kept: `<database file stem>.key` beside a SQLite
/// file, `tessera.key` in the working folder for PostgreSQL, nowhere for an
/// in-memory database.
pub fn key_file_path(database_url: &str) -> Option<PathBuf> {
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return Some(PathBuf::from("tessera.key"));
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || database_url.contains("mode=memory") {
        return None;
    }
    Some(Path::new(path).with_extension("key"))
}

fn load_or_create(path: &Path) -> Result<(String, KeySource), KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_string();
            if secret.len() < MIN_HMAC_KEY_BYTES {
                return Err(KeyError::TooShort(path.display().to_string(), secret.len()));
            }
            Ok((secret, KeySource::Reused(path.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_key()?;
            write_private(path, &secret).map_err(|e| KeyError::Write(path.to_path_buf(), e))?;
            Ok((secret, KeySource::Generated(path.to_path_buf())))
        }
        Err(e) => Err(KeyError::Read(path.to_path_buf(), e)),
    }
}

/// Creates the file with mode 0600 from the start (never world-readable, not
/// even for a moment), failing if it appeared meanwhile.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn generated_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.key");
        let (first, source) = load_or_create(&path).unwrap();
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, source) = load_or_create(&path).unwrap();
        assert_eq!(second, first);
        assert_eq!(source, KeySource::Reused(path));
    }
}
