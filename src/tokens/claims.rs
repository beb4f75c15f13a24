//! The claims of the tokens we issue: Simple JWT's five in its order, the
//! `refresh_exp` of a sliding token, then the configured user claims and
//! static claims, then ours (`family`) and the backend's (`aud`, `iss`).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::config::{JwtSettings, UserClaim};

/// Whom a token is issued for: the user id, and the values the configured
/// user claims may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Group names, sorted.
    pub groups: Vec<String>,
}

impl Subject {
    /// A subject known by id alone (enough with no `jwt.extra_claims`).
    pub fn new(id: i64) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    fn value(&self, field: UserClaim) -> Value {
        match field {
            UserClaim::Username => Value::from(self.username.as_str()),
            UserClaim::Email => Value::from(self.email.as_str()),
            UserClaim::IsStaff => Value::from(self.is_staff),
            UserClaim::IsSuperuser => Value::from(self.is_superuser),
            UserClaim::Groups => Value::from(self.groups.clone()),
        }
    }
}

/// The kinds of token we issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Access,
    Refresh,
    Sliding,
}

impl Kind {
    pub(super) fn token_type(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::Sliding => "sliding",
        }
    }
}

/// Which claims each kind of token carries, from the settings.
#[derive(Debug, Clone)]
pub struct ClaimSet {
    /// Access and sliding tokens' user claims, under their claim names.
    access: Vec<(UserClaim, String)>,
    refresh: Vec<(UserClaim, String)>,
    statics: Vec<(String, Value)>,
    names: Vec<(UserClaim, String)>,
}

impl ClaimSet {
    pub fn new(jwt: &JwtSettings) -> Self {
        let named = |fields: &[UserClaim]| {
            let mut fields = fields.to_vec();
            fields.sort();
            fields.dedup();
            fields
                .into_iter()
                .map(|f| (f, jwt.claim_name(f).to_owned()))
                .collect()
        };
        // By name: the settings do not keep the order they were written
        // in, and every instance must sign the same bytes for the same
        // claims (a replayed refresh answer is re-signed).
        let mut statics: Vec<(String, Value)> = jwt
            .static_claims
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        statics.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            access: named(&jwt.extra_claims),
            refresh: named(&jwt.refresh_extra_claims),
            statics,
            names: named(&UserClaim::ALL),
        }
    }

    /// Whether issuing a token needs the user's groups (one more query).
    pub fn needs_groups(&self) -> bool {
        self.access
            .iter()
            .chain(&self.refresh)
            .any(|(f, _)| *f == UserClaim::Groups)
    }

    /// The claim name `field` travels under.
    pub fn name(&self, field: UserClaim) -> &str {
        self.names
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(field.as_str(), |(_, n)| n.as_str())
    }

    fn user_claims(&self, kind: Kind) -> &[(UserClaim, String)] {
        match kind {
            Kind::Access | Kind::Sliding => &self.access,
            Kind::Refresh => &self.refresh,
        }
    }

    pub(super) fn statics(&self) -> &[(String, Value)] {
        &self.statics
    }

    /// The user claims of a `kind` token for `subject`, in order.
    pub(super) fn of(&self, kind: Kind, subject: &Subject) -> Vec<(&str, Value)> {
        self.user_claims(kind)
            .iter()
            .map(|(f, name)| (name.as_str(), subject.value(*f)))
            .collect()
    }
}

/// Ordered claims, serialized in Simple JWT's order: token_type, exp, iat,
/// jti, (refresh_exp,) user id; then the configured claims, our `family`
/// (rotated refresh tokens only), and aud and iss as Simple JWT's backend
/// appends them.
pub(super) struct Outgoing<'a> {
    pub kind: Kind,
    pub exp: i64,
    pub iat: i64,
    pub jti: &'a str,
    pub refresh_exp: Option<i64>,
    pub user_id_claim: &'a str,
    pub user_id: String,
    pub user: Vec<(&'a str, Value)>,
    pub statics: &'a [(String, Value)],
    pub family: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub issuer: Option<&'a str>,
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("token_type", self.kind.token_type())?;
        m.serialize_entry("exp", &self.exp)?;
        m.serialize_entry("iat", &self.iat)?;
        m.serialize_entry("jti", self.jti)?;
        if let Some(refresh_exp) = self.refresh_exp {
            m.serialize_entry("refresh_exp", &refresh_exp)?;
        }
        m.serialize_entry(self.user_id_claim, &self.user_id)?;
        for (name, value) in &self.user {
            m.serialize_entry(name, value)?;
        }
        for (name, value) in self.statics {
            m.serialize_entry(name, value)?;
        }
        if let Some(family) = self.family {
            m.serialize_entry("family", family)?;
        }
        if let Some(aud) = self.audience {
            m.serialize_entry("aud", aud)?;
        }
        if let Some(iss) = self.issuer {
            m.serialize_entry("iss", iss)?;
        }
        m.end()
    }
}
