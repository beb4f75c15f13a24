//! Django's password hash formats, verified as Django verifies them, so
//! users imported from a Django database log in with the password they
//! have: `pbkdf2_sha256` and `pbkdf2_sha1` (any iteration count),
//! `argon2` (argon2id and argon2i), `bcrypt_sha256`, `bcrypt`, `scrypt`.
//! Unusable passwords (`!...`) never match; unsalted or MD5/SHA-1 digests
//! only when `password.allow_weak_django_hashes` says so.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// A stored password, by format.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    /// A PHC argon2 string: Tessera's own, or Django's with its `argon2`
    /// prefix taken off.
    Argon2(&'a str),
    Pbkdf2 {
        sha1: bool,
        iterations: u32,
        salt: &'a str,
        hash: &'a str,
    },
    /// Django's `bcrypt_sha256`: bcrypt over the hex SHA-256 of the password.
    BcryptSha256(&'a str),
    Bcrypt(&'a str),
    Scrypt {
        n: u64,
        salt: &'a str,
        r: u32,
        p: u32,
        hash: &'a str,
    },
    /// An MD5 or SHA-1 digest, salted or not (refused by default).
    Weak(Weak<'a>),
    /// `!...`: Django's mark of a password that never matches.
    Unusable,
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Weak<'a> {
    Md5 {
        salt: &'a str,
        hash: &'a str,
    },
    Sha1 {
        salt: &'a str,
        hash: &'a str,
    },
    /// A bare 32-digit hex MD5 (Django's UnsaltedMD5, also `md5$$...`).
    UnsaltedMd5(&'a str),
}

impl<'a> Stored<'a> {
    pub fn parse(encoded: &'a str) -> Self {
        if encoded.starts_with('!') {
            return Self::Unusable;
        }
        if encoded.starts_with("$argon2") {
            return Self::Argon2(encoded);
        }
        // Django keeps the PHC string after its own `argon2` name.
        if let Some(phc) = encoded
            .strip_prefix("argon2")
            .filter(|p| p.starts_with("$argon2"))
        {
            return Self::Argon2(phc);
        }
        if encoded.len() == 32 && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Self::Weak(Weak::UnsaltedMd5(encoded));
        }
        let parts: Vec<&str> = encoded.split('$').collect();
        match parts.as_slice() {
            [
                alg @ ("pbkdf2_sha256" | "pbkdf2_sha1"),
                iterations,
                salt,
                hash,
            ] => match iterations.parse() {
                Ok(iterations) => Self::Pbkdf2 {
                    sha1: *alg == "pbkdf2_sha1",
                    iterations,
                    salt,
                    hash,
                },
                Err(_) => Self::Unknown,
            },
            ["bcrypt_sha256", "", ..] => Self::BcryptSha256(&encoded["bcrypt_sha256$".len()..]),
            ["bcrypt", "", ..] => Self::Bcrypt(&encoded["bcrypt$".len()..]),
            ["scrypt", n, salt, r, p, hash] => match (n.parse(), r.parse(), p.parse()) {
                (Ok(n), Ok(r), Ok(p)) => Self::Scrypt {
                    n,
                    salt,
                    r,
                    p,
                    hash,
                },
                _ => Self::Unknown,
            },
            ["md5", "", hash] => Self::Weak(Weak::UnsaltedMd5(hash)),
            ["md5", salt, hash] => Self::Weak(Weak::Md5 { salt, hash }),
            ["sha1", salt, hash] => Self::Weak(Weak::Sha1 { salt, hash }),
            _ => Self::Unknown,
        }
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Whether `password` matches a stored hash in one of Django's formats
/// other than argon2 (which the hashing pool's argon2 verifies).
pub fn verify(stored: &Stored<'_>, password: &[u8], allow_weak: bool) -> bool {
    match stored {
        Stored::Pbkdf2 {
            sha1,
            iterations,
            salt,
            hash,
        } => {
            let (Some(iterations), Ok(expected)) =
                (NonZeroU32::new(*iterations), STANDARD.decode(hash))
            else {
                return false;
            };
            let alg = if *sha1 {
                aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1
            } else {
                aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256
            };
            aws_lc_rs::pbkdf2::verify(alg, iterations, salt.as_bytes(), password, &expected).is_ok()
        }
        Stored::BcryptSha256(hash) => {
            let hex = hex::encode(Sha256::digest(password));
            bcrypt::verify(hex.as_bytes(), hash).unwrap_or(false)
        }
        // bcrypt reads at most 72 bytes; longer passwords were cut there
        // when Django hashed them.
        Stored::Bcrypt(hash) => {
            bcrypt::verify(&password[..password.len().min(72)], hash).unwrap_or(false)
        }
        Stored::Scrypt {
            n,
            salt,
            r,
            p,
            hash,
        } => {
            let Ok(expected) = STANDARD.decode(hash) else {
                return false;
            };
            if !n.is_power_of_two() || *n < 2 || expected.is_empty() || expected.len() > 256 {
                return false;
            }
            let log_n = n.trailing_zeros() as u8;
            let Ok(params) = scrypt::Params::new(log_n, *r, *p) else {
                return false;
            };
            let mut out = vec![0u8; expected.len()];
            scrypt::scrypt(password, salt.as_bytes(), &params, &mut out).is_ok()
                && same(&out, &expected)
        }
        Stored::Weak(weak) if allow_weak => verify_weak(weak, password),
        _ => false,
    }
}

fn verify_weak(weak: &Weak<'_>, password: &[u8]) -> bool {
    use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
    let md5 = |data: &[u8]| format!("{:x}", md5::Md5::digest(data));
    match weak {
        Weak::UnsaltedMd5(hash) => same(md5(password).as_bytes(), hash.as_bytes()),
        Weak::Md5 { salt, hash } => same(
            md5(&[salt.as_bytes(), password].concat()).as_bytes(),
            hash.as_bytes(),
        ),
        Weak::Sha1 { salt, hash } => {
            let d = digest(
                &SHA1_FOR_LEGACY_USE_ONLY,
                &[salt.as_bytes(), password].concat(),
            );
            same(hex::encode(d.as_ref()).as_bytes(), hash.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests;
