//! Access and refresh tokens in Simple JWT's format: issuing, and verifying with
//! Simple JWT's rules and error messages. Plain Rust: no HTTP, no database.
//!
//! Only `crypto` here knows jsonwebtoken; the JWS framing is done by hand so the
//! bytes match Simple JWT's (`{"alg":"HS256","typ":"JWT"}`, claims in its order)
//! and so that every check can report Simple JWT's exact message.

mod claims;
pub mod keys;

use std::time::Duration;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

pub use claims::{ClaimSet, Subject};
pub use keys::{KeyRing, SigningKey, VerifyingKey};

use claims::{Kind, Outgoing};

use crate::config::JwtSettings;

/// base64url that, like PyJWT, tolerates `=` padding but still insists on a
/// canonical encoding (non-zero unused bits are refused).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token was refused; `Display` gives Simple JWT's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token is invalid")]
    Invalid,
    #[error("Token is expired")]
    Expired,
    #[error("Token has wrong type")]
    WrongType,
    #[error("Token has no type")]
    NoType,
    #[error("Token has no id")]
    NoId,
    #[error("Token has no 'exp' claim")]
    NoExp,
    #[error("Token has no 'refresh_exp' claim")]
    NoRefreshExp,
    #[error("Token 'refresh_exp' claim has expired")]
    RefreshExpired,
    /// A revocable token (sliding) on the blacklist.
    #[error("Token is blacklisted")]
    Blacklisted,
}

impl TokenError {
    /// The reason as a metric label: a fixed word.
    pub fn label(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::WrongType => "wrong_type",
            Self::NoType => "no_type",
            Self::NoId => "no_id",
            Self::NoExp => "no_exp",
            Self::NoRefreshExp => "no_refresh_exp",
            Self::RefreshExpired => "refresh_expired",
            Self::Blacklisted => "blacklisted",
        }
    }
}

/// The kind of token an operation expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Access,
    Refresh,
    Sliding,
    /// Any `token_type`, or none (what `/verify/` accepts).
    Untyped,
}

impl Expect {
    fn token_type(self) -> Option<&'static str> {
        match self {
            Self::Access => Some("access"),
            Self::Refresh => Some("refresh"),
            Self::Sliding => Some("sliding"),
            Self::Untyped => None,
        }
    }
}

/// The claims of a token that passed verification.
#[derive(Debug, Clone)]
pub struct Claims {
    pub token_type: Option<String>,
    pub jti: String,
    /// Expiry, in whole seconds since the epoch.
    pub exp: i64,
    /// Issue time, in whole seconds since the epoch, if the token has one.
    pub iat: Option<i64>,
    /// The user id claim exactly as it was sent (a string or a number).
    pub user_id: Option<Value>,
    /// The refresh-token family (`family` claim), set on rotated refresh
    /// tokens; a token without one is the first of its own family.
    pub family: Option<String>,
    /// Every other claim (`refresh_exp`, the configured user claims...).
    pub extra: Map<String, Value>,
}

impl Claims {
    /// The user id as a database key, if the claim holds one (a JSON string of
    /// digits, as Simple JWT issues, or a JSON integer).
    pub fn user_id(&self) -> Option<i64> {
        match self.user_id.as_ref()? {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The family this refresh token belongs to: its `family` claim, or, for
    /// the first token of a login (and for tokens Simple JWT issued), its
    /// own jti.
    pub fn family_id(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.jti)
    }

    /// A string claim, if the token has it.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.extra.get(name).and_then(Value::as_str)
    }
}

/// A freshly signed token and the claims a caller may need to store.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub jti: String,
    pub exp: i64,
}

/// An access/refresh pair from one login: both share `iat`, as Simple JWT's do.
#[derive(Debug, Clone)]
pub struct Pair {
    pub refresh: Issued,
    pub access: Issued,
}

/// Issues and verifies tokens with one set of keys and one set of rules.
pub struct TokenService {
    keys: KeyRing,
    /// The compact header every token we sign carries, already base64url-encoded.
    encoded_header: String,
    access_lifetime: i64,
    refresh_lifetime: i64,
    leeway: i64,
    audience: Option<String>,
    issuer: Option<String>,
    user_id_claim: String,
    sliding_lifetime: i64,
    sliding_refresh_lifetime: i64,
    claims: ClaimSet,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A new token id: 32 lowercase hex digits, as Simple JWT's `uuid4().hex`.
fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The number in a time claim, the way PyJWT reads one: integers and floats
/// are accepted, anything else (including numeric strings, which crash Simple
/// JWT) is refused.
fn time_claim(v: &Value) -> Result<f64, TokenError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or(TokenError::Invalid),
        _ => Err(TokenError::Invalid),
    }
}

impl TokenService {
    /// A service that signs with `key` alone.
    pub fn new(key: SigningKey, settings: &JwtSettings) -> Self {
        Self::with_keys(KeyRing::single(key), settings)
    }

    pub fn with_keys(keys: KeyRing, settings: &JwtSettings) -> Self {
        // Simple JWT's header, plus the kid of an asymmetric key so that
        // verifiers can pick it from the JWKS.
        let current = &keys.current;
        let header = match (&current.verifying.kid, current.algorithm().is_hmac()) {
            (Some(kid), false) => {
                serde_json::json!({"alg": current.algorithm_name(), "typ": "JWT", "kid": kid})
                    .to_string()
            }
            _ => format!(r#"{{"alg":"{}","typ":"JWT"}}"#, current.algorithm_name()),
        };
        Self {
            encoded_header: B64.encode(header),
            keys,
            access_lifetime: secs(settings.access_token_lifetime),
            refresh_lifetime: secs(settings.refresh_token_lifetime),
            leeway: secs(settings.leeway),
            audience: settings.audience.clone(),
            issuer: settings.issuer.clone(),
            user_id_claim: settings.user_id_claim.clone(),
            sliding_lifetime: secs(settings.sliding_token_lifetime),
            sliding_refresh_lifetime: secs(settings.sliding_token_refresh_lifetime),
            claims: ClaimSet::new(settings),
        }
    }

    /// The claims tokens carry beyond Simple JWT's.
    pub fn claims(&self) -> &ClaimSet {
        &self.claims
    }

    pub fn access_lifetime(&self) -> i64 {
        self.access_lifetime
    }

    /// Seconds a sliding token lives after it is issued or refreshed.
    pub fn sliding_lifetime(&self) -> i64 {
        self.sliding_lifetime
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    fn issue(
        &self,
        kind: Kind,
        subject: &Subject,
        iat: i64,
        jti: String,
        family: Option<&str>,
    ) -> Issued {
        let (lifetime, refresh_exp) = match kind {
            Kind::Access => (self.access_lifetime, None),
            Kind::Refresh => (self.refresh_lifetime, None),
            Kind::Sliding => (
                self.sliding_lifetime,
                Some(iat.saturating_add(self.sliding_refresh_lifetime)),
            ),
        };
        self.sign(kind, subject, iat, lifetime, jti, refresh_exp, family)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        kind: Kind,
        subject: &Subject,
        iat: i64,
        lifetime: i64,
        jti: String,
        refresh_exp: Option<i64>,
        family: Option<&str>,
    ) -> Issued {
        let exp = iat.saturating_add(lifetime);
        let claims = Outgoing {
            kind,
            exp,
            iat,
            jti: &jti,
            refresh_exp,
            user_id_claim: &self.user_id_claim,
            user_id: subject.id.to_string(),
            user: self.claims.of(kind, subject),
            statics: self.claims.statics(),
            family,
            audience: self.audience.as_deref(),
            issuer: self.issuer.as_deref(),
        };
        let payload = serde_json::to_vec(&claims).expect("claims always serialize");
        let message = format!("{}.{}", self.encoded_header, B64.encode(payload));
        let signature = self.keys.current.sign(message.as_bytes());
        Issued {
            token: format!("{message}.{signature}"),
            jti,
            exp,
        }
    }

    /// A new access token for `subject`, issued at `now` (epoch seconds).
    pub fn access(&self, subject: &Subject, now: i64) -> Issued {
        self.issue(Kind::Access, subject, now, new_jti(), None)
    }

    /// A new refresh token for `subject`, issued at `now`.
    pub fn refresh(&self, subject: &Subject, now: i64) -> Issued {
        self.issue(Kind::Refresh, subject, now, new_jti(), None)
    }

    /// The pair a login returns.
    pub fn pair(&self, subject: &Subject, now: i64) -> Pair {
        Pair {
            refresh: self.refresh(subject, now),
            access: self.access(subject, now),
        }
    }

    /// The pair a rotation returns: a refresh token that carries its
    /// family, and an access token issued at the same instant.
    pub fn rotated_pair(&self, subject: &Subject, now: i64, family: &str) -> Pair {
        self.reissued_pair(subject, now, new_jti(), new_jti(), family)
    }

    /// A pair with given ids: the same ids, issue time and user values give
    /// the same claims, so a retried refresh gets back the tokens already
    /// issued for it (byte for byte with deterministic signatures: HMAC, RSA
    /// PKCS#1, EdDSA).
    pub fn reissued_pair(
        &self,
        subject: &Subject,
        iat: i64,
        refresh_jti: String,
        access_jti: String,
        family: &str,
    ) -> Pair {
        Pair {
            refresh: self.issue(Kind::Refresh, subject, iat, refresh_jti, Some(family)),
            access: self.issue(Kind::Access, subject, iat, access_jti, None),
        }
    }

    /// A new sliding token for `subject` at `now` (Simple JWT's
    /// `SlidingToken.for_user`): it authenticates requests until `exp`, and
    /// can be refreshed until `refresh_exp`.
    pub fn sliding(&self, subject: &Subject, now: i64) -> Issued {
        self.issue(Kind::Sliding, subject, now, new_jti(), None)
    }

    /// A sliding token refreshed at `now`, as Simple JWT's
    /// `TokenRefreshSlidingSerializer` does: new `exp` and `iat`, the same
    /// `jti` (a blacklisting reaches every refresh of it) and the same
    /// `refresh_exp`; the user claims are read anew.
    pub fn slid(&self, subject: &Subject, now: i64, jti: String, refresh_exp: i64) -> Issued {
        self.sign(
            Kind::Sliding,
            subject,
            now,
            self.sliding_lifetime,
            jti,
            Some(refresh_exp),
            None,
        )
    }

    /// The `refresh_exp` of a verified sliding token, if it has not passed
    /// at `now` (Simple JWT's `check_exp("refresh_exp")`, with the leeway).
    pub fn check_refresh_exp(&self, claims: &Claims, now: i64) -> Result<i64, TokenError> {
        let value = claims
            .extra
            .get("refresh_exp")
            .ok_or(TokenError::NoRefreshExp)?;
        let t = time_claim(value)?;
        if t <= (now - self.leeway) as f64 {
            return Err(TokenError::RefreshExpired);
        }
        Ok(t.floor() as i64)
    }

    /// Verifies `token` at time `now` (epoch seconds) the way Simple JWT does:
    /// signature and algorithm, then PyJWT's claim checks (iat, nbf, exp, iss,
    /// aud), then Simple JWT's own (exp present, jti present, token_type).
    pub fn verify(&self, token: &str, expect: Expect, now: i64) -> Result<Claims, TokenError> {
        let payload = self.verified_payload(token)?;
        self.check_claims(payload, expect, now)
    }

    fn verified_payload(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let header: Value =
            serde_json::from_slice(&B64.decode(header).map_err(|_| TokenError::Invalid)?)
                .map_err(|_| TokenError::Invalid)?;
        // The key is chosen by `kid`, and the token's `alg` must be that
        // key's own algorithm: this is what refuses `none` and algorithm
        // confusion before any signature is computed.
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(TokenError::Invalid),
        };
        let alg = header.get("alg").and_then(Value::as_str);
        let message_len = token.len() - signature.len() - 1;
        // PyJWT accepts `=` padding; the signature's base64 must otherwise be
        // canonical, which the crypto layer enforces.
        let signature = signature.trim_end_matches('=');
        let message = &token.as_bytes()[..message_len];
        let verified = self
            .keys
            .candidates(kid)
            .into_iter()
            .filter(|key| Some(key.alg.as_str()) == alg)
            .any(|key| key.verify(message, signature));
        if !verified {
            return Err(TokenError::Invalid);
        }
        match serde_json::from_slice(&B64.decode(payload).map_err(|_| TokenError::Invalid)?) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(TokenError::Invalid),
        }
    }

    fn check_claims(
        &self,
        mut claims: Map<String, Value>,
        expect: Expect,
        now: i64,
    ) -> Result<Claims, TokenError> {
        let now_f = now as f64;
        let leeway = self.leeway as f64;
        // PyJWT: iat and nbf must be numbers and not in the future.
        for name in ["iat", "nbf"] {
            if let Some(t) = claims.get(name)
                && time_claim(t)? > now_f + leeway
            {
                return Err(TokenError::Invalid);
            }
        }
        let exp = match claims.get("exp") {
            Some(exp) => time_claim(exp)?,
            // Simple JWT's check_exp, after PyJWT's checks.
            None => return Err(TokenError::NoExp),
        };
        if exp <= now_f - leeway {
            return Err(TokenError::Expired);
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(TokenError::Invalid);
        }
        // As Simple JWT: `aud` is only checked when an audience is configured.
        if let Some(audience) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == audience,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if !ok {
                return Err(TokenError::Invalid);
            }
        }
        let jti = match claims.remove("jti") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => return Err(TokenError::NoId),
        };
        let token_type = match claims.remove("token_type") {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        if let Some(expected) = expect.token_type() {
            match &token_type {
                None => return Err(TokenError::NoType),
                Some(t) if t != expected => return Err(TokenError::WrongType),
                Some(_) => {}
            }
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .map(|t| t.floor() as i64);
        // Only we set `family`, and always as a string: anything else is not
        // a token of ours, though its signature verified.
        let family = match claims.remove("family") {
            None => None,
            Some(Value::String(f)) if !f.is_empty() && f.len() <= 255 => Some(f),
            Some(_) => return Err(TokenError::Invalid),
        };
        Ok(Claims {
            token_type,
            jti,
            exp: exp.floor() as i64,
            iat,
            user_id: claims.remove(&self.user_id_claim),
            family,
            extra: claims,
        })
    }
}

#[cfg(test)]
mod tests;
