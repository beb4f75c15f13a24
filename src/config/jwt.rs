//! The `[jwt]` section: algorithm, keys and token lifetimes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::claims::{AuthTokenClass, UserClaim};
use super::values::{self, Named, empty_is_none, secret_string};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    pub const ALL: [JwtAlgorithm; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The shortest HMAC secret this algorithm accepts: RFC 7518 §3.2 asks
    /// for a key at least as long as the hash (32, 48 or 64 bytes).
    pub fn min_hmac_key_bytes(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }

    /// Why an HMAC secret of `len` bytes is refused for this algorithm.
    pub fn too_short(self, len: usize) -> String {
        let min = self.min_hmac_key_bytes();
        format!(
            "an HMAC key for {} must be at least {min} bytes ({} bits, the hash size, as RFC 7518 §3.2 requires); this one has {len}",
            self.as_str(),
            min * 8
        )
    }

    /// HMAC algorithms share one secret; the others sign with a private key.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// RSA (PKCS#1 or PSS): most of a millisecond to sign with a 2048-bit
    /// key, 5 to 500 times what the other algorithms take (README, "What
    /// each algorithm costs").
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512
        )
    }
}

/// How a configured key file that other users can read is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFilePermissions {
    /// Refused at start, unless it sits on a read-only mount, owned by root
    /// or the service's user and writable by its owner only (how
    /// Kubernetes and Docker mount secrets).
    Strict,
    /// Accepted with a warning in the log.
    Warn,
}

impl Named for KeyFilePermissions {
    const ALL: &'static [Self] = &[Self::Strict, Self::Warn];
    const EXAMPLE: &'static str =
        "[jwt] key_file_permissions = \"warn\", or TESSERA__JWT__KEY_FILE_PERMISSIONS=warn";
    fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Warn => "warn",
        }
    }
}

/// A retired key that still verifies and is still published.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    pub kid: String,
    /// Defaults to `jwt.algorithm`.
    #[serde(default)]
    pub algorithm: Option<JwtAlgorithm>,
    #[serde(default)]
    pub verifying_key: String,
    #[serde(default)]
    pub verifying_key_file: String,
}

/// A retired HMAC key's `verifying_key` is a secret: never printed.
impl fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field(
                "verifying_key",
                &if self.verifying_key.is_empty() {
                    ""
                } else {
                    "[REDACTED]"
                },
            )
            .field("verifying_key_file", &self.verifying_key_file)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    /// Empty means "generate one and keep it beside the database".
    #[serde(deserialize_with = "secret_string")]
    pub signing_key: SecretString,
    #[serde(deserialize_with = "empty_is_none")]
    pub signing_key_file: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub verifying_key: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub verifying_key_file: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub key_id: Option<String>,
    pub key_file_permissions: KeyFilePermissions,
    #[serde(deserialize_with = "values::duration")]
    pub jwks_max_age: Duration,
    pub previous_keys: Vec<PreviousKey>,
    #[serde(deserialize_with = "values::duration")]
    pub access_token_lifetime: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub refresh_token_lifetime: Duration,
    pub rotate_refresh_tokens: bool,
    pub blacklist_after_rotation: bool,
    pub reuse_detection: bool,
    #[serde(deserialize_with = "values::duration")]
    pub reuse_grace_interval: Duration,
    pub update_last_login: bool,
    #[serde(deserialize_with = "values::duration")]
    pub leeway: Duration,
    #[serde(deserialize_with = "empty_is_none")]
    pub audience: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub issuer: Option<String>,
    pub auth_header_types: Vec<String>,
    pub user_id_claim: String,
    /// User fields access and sliding tokens carry.
    pub extra_claims: Vec<UserClaim>,
    /// User fields refresh tokens carry.
    pub refresh_extra_claims: Vec<UserClaim>,
    /// Field name -> claim name, for fields not carried under their own.
    pub claim_names: BTreeMap<String, String>,
    /// Claims every token carries, with fixed values.
    pub static_claims: serde_json::Map<String, serde_json::Value>,
    /// The kinds of token that authenticate requests, tried in order.
    pub auth_token_classes: Vec<AuthTokenClass>,
    #[serde(deserialize_with = "values::duration")]
    pub sliding_token_lifetime: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub sliding_token_refresh_lifetime: Duration,
}

impl Named for JwtAlgorithm {
    const ALL: &'static [Self] = &Self::ALL;
    const EXAMPLE: &'static str = "[jwt] algorithm = \"EdDSA\", or TESSERA__JWT__ALGORITHM=HS256";
    fn name(self) -> &'static str {
        self.as_str()
    }
}
