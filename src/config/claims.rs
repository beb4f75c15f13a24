//! What tokens say about their user beyond Simple JWT's five claims
//! (`jwt.extra_claims`, `jwt.claim_names`, `jwt.static_claims`), and which
//! kinds of token authenticate a request (`jwt.auth_token_classes`).

use super::values::Named;
use super::{ConfigError, JwtSettings};

/// A user field a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserClaim {
    Username,
    Email,
    IsStaff,
    IsSuperuser,
    /// The names of the user's groups, sorted.
    Groups,
}

impl UserClaim {
    pub const ALL: [Self; 5] = [
        Self::Username,
        Self::Email,
        Self::IsStaff,
        Self::IsSuperuser,
        Self::Groups,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
            Self::IsStaff => "is_staff",
            Self::IsSuperuser => "is_superuser",
            Self::Groups => "groups",
        }
    }
}

impl Named for UserClaim {
    const ALL: &'static [Self] = &Self::ALL;
    const EXAMPLE: &'static str = "[jwt] extra_claims = [\"username\", \"groups\"], or TESSERA__JWT__EXTRA_CLAIMS=username,groups";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// A kind of token that authenticates requests (Simple JWT's
/// `AUTH_TOKEN_CLASSES`), tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthTokenClass {
    Access,
    Sliding,
}

impl AuthTokenClass {
    /// The class name Simple JWT reports in a refusal's `messages`.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Access => "AccessToken",
            Self::Sliding => "SlidingToken",
        }
    }

    pub fn token_type(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Sliding => "sliding",
        }
    }
}

impl Named for AuthTokenClass {
    const ALL: &'static [Self] = &[Self::Access, Self::Sliding];
    const EXAMPLE: &'static str = "[jwt] auth_token_classes = [\"access\", \"sliding\"], or TESSERA__JWT__AUTH_TOKEN_CLASSES=access,sliding";
    fn name(self) -> &'static str {
        self.token_type()
    }
}

/// Claims Tessera sets itself (or checks), which no configured claim may
/// replace.
pub const RESERVED: [&str; 9] = [
    "token_type",
    "exp",
    "iat",
    "jti",
    "nbf",
    "aud",
    "iss",
    "family",
    "refresh_exp",
];

impl JwtSettings {
    /// The name `field` travels under in tokens (`jwt.claim_names`, else
    /// the field's own name).
    pub fn claim_name(&self, field: UserClaim) -> &str {
        self.claim_names
            .get(field.as_str())
            .map_or(field.as_str(), String::as_str)
    }
}

fn refuse(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::key(key, message)
}

/// A claim name nothing else uses: not reserved, not the user id's.
fn check_free(jwt: &JwtSettings, key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(refuse(key, "a claim name must not be empty"));
    }
    if RESERVED.contains(&name) || name == jwt.user_id_claim {
        return Err(refuse(
            key,
            format!(
                "\"{name}\" is a claim Tessera sets itself ({}, and the user id claim {:?})",
                RESERVED.join(", "),
                jwt.user_id_claim
            ),
        ));
    }
    Ok(())
}

pub(super) fn validate(jwt: &JwtSettings) -> Result<(), ConfigError> {
    for (field, name) in &jwt.claim_names {
        let key = format!("jwt.claim_names.{field}");
        if !UserClaim::ALL.iter().any(|c| c.as_str() == field) {
            let names: Vec<&str> = UserClaim::ALL.iter().map(|c| c.as_str()).collect();
            return Err(refuse(
                &key,
                format!(
                    "\"{field}\" is not a user claim; accepted: {}",
                    names.join(", ")
                ),
            ));
        }
        check_free(jwt, &key, name)?;
    }
    // The fields carried under their own names meet the same rule.
    for (key, fields) in [
        ("jwt.extra_claims", &jwt.extra_claims),
        ("jwt.refresh_extra_claims", &jwt.refresh_extra_claims),
    ] {
        for field in fields {
            check_free(jwt, key, jwt.claim_name(*field))?;
        }
    }
    for (i, a) in UserClaim::ALL.iter().enumerate() {
        if let Some(b) = UserClaim::ALL[i + 1..]
            .iter()
            .find(|b| jwt.claim_name(**b) == jwt.claim_name(*a))
        {
            return Err(refuse(
                "jwt.claim_names",
                format!(
                    "{} and {} would both be the claim \"{}\"",
                    a.as_str(),
                    b.as_str(),
                    jwt.claim_name(*a)
                ),
            ));
        }
    }
    for name in jwt.static_claims.keys() {
        let key = format!("jwt.static_claims.{name}");
        check_free(jwt, &key, name)?;
        if let Some(c) = UserClaim::ALL.iter().find(|c| jwt.claim_name(**c) == name) {
            return Err(refuse(
                &key,
                format!("\"{name}\" is the claim of the user's {}", c.as_str()),
            ));
        }
    }
    if jwt.auth_token_classes.is_empty() {
        return Err(refuse(
            "jwt.auth_token_classes",
            "must list at least one of access, sliding",
        ));
    }
    for (key, d) in [
        ("jwt.sliding_token_lifetime", jwt.sliding_token_lifetime),
        (
            "jwt.sliding_token_refresh_lifetime",
            jwt.sliding_token_refresh_lifetime,
        ),
    ] {
        if d.is_zero() {
            return Err(refuse(key, "must be longer than 0s"));
        }
    }
    Ok(())
}
