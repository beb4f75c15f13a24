//! Key files on disk: where a generated key lives, creating it once with
//! mode 0600, reusing it after.

use super::*;

/// A random HMAC secret for `alg`, as long as its hash (32, 48 or 64
/// bytes), hex-encoded.
pub(super) fn random_key(alg: JwtAlgorithm) -> Result<String, KeyError> {
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

pub(super) fn load_or_create(
    path: &Path,
    alg: JwtAlgorithm,
) -> Result<(String, KeySource), KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            if let Some(p) = path.to_str() {
                // Tessera wrote it 0600: anything else was changed since.
                read_private_file(p, KeyFilePermissions::Strict)?;
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
pub(super) fn write_new(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: bool,
) -> std::io::Result<()> {
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

pub(super) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_new(path, contents, 0o600, false)
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
}
