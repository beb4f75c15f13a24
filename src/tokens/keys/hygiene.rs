//! Secret hygiene: published example keys, secrets that are not random,
//! key material of the wrong kind, key files others can read.

use super::*;

/// Secrets from documentation, tutorials and starter kits (lower case):
/// a key containing one of these is known to more people than its owner.
pub(super) const EXAMPLE_SECRET_MARKERS: &[&str] = &[
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
pub(super) const EXAMPLE_ED25519_X: &[&str] = &["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"];

/// Refuses an HMAC secret that is a known example or obviously not random.
pub(super) fn refuse_weak_secret(secret: &[u8], what: &str) -> Result<(), KeyError> {
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
pub(super) fn refuse_example_key(key: &VerifyingKey, what: &str) -> Result<(), KeyError> {
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

/// A public key where the private one belongs (the `-public.pem` of a pair
/// given as the signing key).
pub(super) fn refuse_public_as_private(material: &[u8], what: &str) -> Result<(), KeyError> {
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

/// Refuses a file that other users can read or change (as ssh does),
/// except a secret as orchestrators mount them; with `Warn`, says so in
/// the log instead.
pub(super) fn check_private_mode(path: &str, policy: KeyFilePermissions) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = fs::metadata(path).map_err(|e| KeyError::Read(PathBuf::from(path), e))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 == 0 {
            return Ok(());
        }
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        if mode & 0o022 == 0 && owner_ok && read_only_mount(path) {
            return Ok(());
        }
        if policy == KeyFilePermissions::Warn {
            tracing::warn!(
                path,
                mode = format!("{:04o}", mode & 0o7777),
                "the key file can be read by other users; accepted because jwt.key_file_permissions = \"warn\""
            );
            return Ok(());
        }
        return Err(KeyError::Exposed(PathBuf::from(path), mode & 0o7777));
    }
    #[allow(unreachable_code)]
    {
        let _ = (path, policy);
        Ok(())
    }
}

/// Whether `path` is on a file system mounted read-only (a Kubernetes
/// secret volume, a Docker secret): nobody can change the file there.
#[cfg(unix)]
fn read_only_mount(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: `c` is a valid C string and `stat` a writable statvfs that
    // lives across the call.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c.as_ptr(), &mut stat) == 0 && stat.f_flag & libc::ST_RDONLY != 0
    }
}

/// Markers of asymmetric key material, wherever they stand: a PEM block
/// (after a comment line or a byte-order mark too), an RFC 4716 SSH2 block,
/// or an OpenSSH public key line. PyJWT refuses the same as HMAC secrets.
pub(super) const KEY_MARKERS: [&[u8]; 7] = [
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
pub(super) fn refuse_pem_as_secret(secret: &[u8], what: &str) -> Result<(), KeyError> {
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
            match read_private_file(p, KeyFilePermissions::Strict) {
                Err(KeyError::Exposed(_, m)) => assert_eq!(m, mode),
                other => panic!("{mode:o}: {other:?}"),
            }
            // Accepted, with a warning, when the operator says so.
            assert_eq!(
                read_private_file(p, KeyFilePermissions::Warn).unwrap(),
                b"secret"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                read_private_file(p, KeyFilePermissions::Strict).unwrap(),
                b"secret"
            );
        }
    }
}
