//! `tessera keys generate`: fresh key pairs and HMAC secrets.

use super::*;

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
}
