//! The refresh-token policy as pure decisions: what a presented refresh
//! token gets (on refresh, verify and logout) from what the database says
//! about it. Nothing here does I/O; `sessions.rs` gathers the facts and
//! carries out the action, so every rule is unit-tested below without a
//! database.

use chrono::{DateTime, TimeDelta, Utc};
use entity::token_families::Model as FamilyRow;

use crate::config::JwtSettings;

/// The three policies Simple JWT's settings combine: no rotation, rotation,
/// rotation with reuse detection; each with or without blacklisting the
/// rotated token. Built once from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// A refresh answers a new refresh token too.
    pub rotate: bool,
    /// Rotation checks the token against its family: an old token revokes
    /// the family (only with `rotate`).
    pub detect_reuse: bool,
    /// The rotated token is blacklisted at once, as in Simple JWT.
    pub blacklist_after_rotation: bool,
    /// How long after a rotation a retry of the rotated token gets the
    /// same pair again rather than counting as reuse.
    pub grace: TimeDelta,
}

impl RotationPolicy {
    pub fn new(jwt: &JwtSettings) -> Self {
        Self {
            rotate: jwt.rotate_refresh_tokens,
            detect_reuse: jwt.rotate_refresh_tokens && jwt.reuse_detection,
            blacklist_after_rotation: jwt.blacklist_after_rotation,
            grace: TimeDelta::from_std(jwt.reuse_grace_interval).unwrap_or(TimeDelta::MAX),
        }
    }
}

/// Where a presented refresh token stands in its family's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The family was revoked (reuse, logout, logout_all).
    Revoked,
    /// The newest token: it may be rotated.
    Current,
    /// The token the current one replaced, within the grace interval.
    JustRotated,
    /// An older token: presenting it is reuse.
    Stale,
}

impl Standing {
    /// Classifies `jti` against its family's row at `now`.
    pub fn of(row: &FamilyRow, jti: &str, now: DateTime<Utc>, grace: TimeDelta) -> Self {
        if row.revoked_at.is_some() {
            Self::Revoked
        } else if row.current_jti == jti {
            Self::Current
        } else if row.previous_jti.as_deref() == Some(jti)
            && row
                .rotated_at
                .is_some_and(|at| now.signed_duration_since(at) <= grace)
        {
            Self::JustRotated
        } else {
            Self::Stale
        }
    }
}

/// What the database says about a token's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The family has a row; the token stands so in it.
    Row(Standing),
    /// No row, and the token names no family of its own: it starts one that
    /// no refresh has adopted yet (issued by Simple JWT, or before families).
    Unadopted,
    /// No row for a rotated token. The row outlives every token of its
    /// family, so the token is dead (or the row was lost, and with it any
    /// revocation).
    Gone,
}

/// The user a refresh token names. Tokens issued before `valid_after` (the
/// user's last password change) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// No such user (or the token names none).
    Missing,
    Inactive {
        valid_after: Option<i64>,
    },
    Active {
        valid_after: Option<i64>,
    },
}

/// Everything a decision reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub family: Family,
    /// The token's issue time (`iat`).
    pub issued_at: Option<i64>,
    /// When the family's current pair was issued (what a replay re-signs).
    pub family_issued_at: i64,
    /// Whether the blacklist holds the token; looked up only where
    /// [`RotationPolicy::needs_blacklist`] says it matters.
    pub blacklisted: bool,
    pub holder: Holder,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Blacklisted, its family revoked or gone.
    Blacklisted,
    /// Its user is gone or inactive.
    NoActiveAccount,
    /// Issued before the user's last password change.
    PasswordChanged,
}

/// What a refresh does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Refuse(Refusal),
    /// The token was copied: revoke its family, report it, refuse.
    RevokeFamily,
    /// A new access token only (no rotation).
    IssueAccess,
    /// Reuse detection: compare-and-swap the family to a new pair; a lost
    /// swap reads the row again and decides anew.
    Rotate,
    /// Reuse detection, no row yet: give the family its row with this token
    /// current, then decide anew.
    Adopt,
    /// Rotation without reuse detection: move the row on to the new pair
    /// (giving the family its row first when `adopt`).
    Advance {
        adopt: bool,
    },
    /// Within the grace interval: the pair already issued for this token.
    Replay,
}

/// What verify does with a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Refuse(Refusal),
    RevokeFamily,
}

/// What a logout does, before blacklisting the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logout {
    /// Already logged out (or dead): 401, nothing written.
    Refuse,
    /// A rotated token with reuse detection: reuse, so the family ends and
    /// it is reported.
    RevokeForReuse,
    /// Revoke the family.
    Revoke,
    /// No row: record the family born revoked (so a concurrent adoption
    /// meets a revoked row), then revoke whatever row is there.
    RecordRevoked,
}

impl RotationPolicy {
    /// Whether the blacklist can change the decision for this family, on
    /// refresh or verify: the newest token of a live family is never
    /// blacklisted (a logout revokes the family first), so that lookup is
    /// saved on every rotation.
    pub fn needs_blacklist(&self, family: Family, refreshing: bool) -> bool {
        match family {
            Family::Unadopted => true,
            Family::Gone | Family::Row(Standing::Revoked | Standing::Current) => false,
            // With reuse detection, refresh judges these by the row alone.
            Family::Row(_) if refreshing && self.detect_reuse => false,
            Family::Row(Standing::Stale) => !self.detect_reuse,
            Family::Row(Standing::JustRotated) => true,
        }
    }

    /// Whether a token may still be used, short of a rotation (what verify
    /// and a refresh without reuse detection ask first).
    fn live(&self, facts: &Facts) -> Verdict {
        match facts.family {
            Family::Row(Standing::Revoked) | Family::Gone => Verdict::Refuse(Refusal::Blacklisted),
            Family::Row(Standing::Stale) if self.detect_reuse => Verdict::RevokeFamily,
            Family::Row(Standing::Current) => Verdict::Accept,
            _ if facts.blacklisted => Verdict::Refuse(Refusal::Blacklisted),
            _ => Verdict::Accept,
        }
    }

    /// `/verify/` of a refresh token: refused for each of Tessera's own
    /// revocations; whether its user exists or is active is not asked (as
    /// in Simple JWT), only whether their password changed since.
    pub fn verify(&self, facts: &Facts) -> Verdict {
        let live = self.live(facts);
        if live != Verdict::Accept {
            return live;
        }
        match facts.holder {
            Holder::Active { valid_after } | Holder::Inactive { valid_after }
                if predates(facts.issued_at, valid_after) =>
            {
                Verdict::Refuse(Refusal::PasswordChanged)
            }
            _ => Verdict::Accept,
        }
    }

    /// `/refresh/`. With reuse detection the user is asked first and the
    /// family decides; without it, Simple JWT's order: the token's own
    /// revocation first, then its user.
    pub fn refresh(&self, facts: &Facts) -> Action {
        if !self.detect_reuse {
            match self.live(facts) {
                Verdict::RevokeFamily => return Action::RevokeFamily,
                Verdict::Refuse(r) => return Action::Refuse(r),
                Verdict::Accept => {}
            }
        }
        let valid_after = match facts.holder {
            Holder::Missing | Holder::Inactive { .. } => {
                return Action::Refuse(Refusal::NoActiveAccount);
            }
            Holder::Active { valid_after } => valid_after,
        };
        if predates(facts.issued_at, valid_after) {
            return Action::Refuse(Refusal::PasswordChanged);
        }
        if !self.detect_reuse {
            return if self.rotate {
                Action::Advance {
                    adopt: facts.family == Family::Unadopted,
                }
            } else {
                Action::IssueAccess
            };
        }
        match facts.family {
            Family::Gone | Family::Row(Standing::Revoked) => Action::Refuse(Refusal::Blacklisted),
            // A token logged out before families existed is refused before
            // it gets a row that would call it current.
            Family::Unadopted if facts.blacklisted => Action::Refuse(Refusal::Blacklisted),
            Family::Unadopted => Action::Adopt,
            Family::Row(Standing::Current) => Action::Rotate,
            // Blacklisting after rotation refuses the used token at once, as
            // Simple JWT does; within the grace interval that is not reuse,
            // so the family (and the new token) lives on.
            Family::Row(Standing::JustRotated) if self.blacklist_after_rotation => {
                Action::Refuse(Refusal::Blacklisted)
            }
            Family::Row(Standing::JustRotated)
                if predates(Some(facts.family_issued_at), valid_after) =>
            {
                Action::Refuse(Refusal::PasswordChanged)
            }
            Family::Row(Standing::JustRotated) => Action::Replay,
            Family::Row(Standing::Stale) => Action::RevokeFamily,
        }
    }

    /// Logout with any token of a family ends the family.
    pub fn logout(&self, family: Family) -> Logout {
        match family {
            Family::Row(Standing::Revoked) | Family::Gone => Logout::Refuse,
            Family::Row(Standing::JustRotated | Standing::Stale) if self.detect_reuse => {
                Logout::RevokeForReuse
            }
            Family::Row(_) => Logout::Revoke,
            Family::Unadopted => Logout::RecordRevoked,
        }
    }
}

/// Whether a token issued at `issued_at` predates a revocation at
/// `valid_after` (a token without `iat` predates any).
pub(crate) fn predates(issued_at: Option<i64>, valid_after: Option<i64>) -> bool {
    match valid_after {
        None => false,
        Some(after) => issued_at.is_none_or(|iat| iat < after),
    }
}

#[cfg(test)]
mod tests;
