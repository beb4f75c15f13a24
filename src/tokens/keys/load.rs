//! Loading keys from the settings: the signing key (configured or
//! generated) and the retired keys that still verify.

use super::*;

/// Reads a file holding a private key or secret, refusing one that other
/// users can read or change (as ssh does).
pub(super) fn read_private_file(
    path: &str,
    policy: KeyFilePermissions,
) -> Result<Vec<u8>, KeyError> {
    let material = read_file(path)?;
    // Said before the mode check: a public key needs no chmod, it is the
    // wrong file.
    refuse_public_as_private(&material, "jwt.signing_key_file")?;
    check_private_mode(path, policy)?;
    Ok(material)
}

pub(super) fn read_file(path: &str) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|e| KeyError::Read(PathBuf::from(path), e))
}

pub(super) fn previous_key(
    default_alg: JwtAlgorithm,
    i: usize,
    p: &PreviousKey,
    policy: KeyFilePermissions,
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
            check_private_mode(&p.verifying_key_file, policy)?;
        }
        return Ok(key);
    }
    let key = VerifyingKey::from_public_pem(alg, &material, Some(p.kid.clone()), &what)?;
    refuse_example_key(&key, &what)?;
    Ok(key)
}

/// A secret read from a file, without the trailing newline editors add.
pub(super) fn trim_secret(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

pub(super) fn signing_key_from_settings(
    settings: &Settings,
) -> Result<(SigningKey, KeySource), KeyError> {
    let jwt = &settings.jwt;
    let alg = jwt.algorithm;
    let inline = jwt.signing_key.expose_secret();
    let material = match (&jwt.signing_key_file, inline.is_empty()) {
        (Some(_), false) => return Err(KeyError::Ambiguous),
        (Some(path), true) => Some(read_private_file(path, jwt.key_file_permissions)?),
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

pub(super) fn generated_hmac_key(settings: &Settings) -> Result<(SigningKey, KeySource), KeyError> {
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
