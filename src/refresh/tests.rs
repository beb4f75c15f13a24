//! The policy, case by case, under every combination of the settings.

use super::*;

const GRACE: TimeDelta = TimeDelta::seconds(10);

fn policy(rotate: bool, detect_reuse: bool, blacklist_after_rotation: bool) -> RotationPolicy {
    RotationPolicy {
        rotate,
        detect_reuse: rotate && detect_reuse,
        blacklist_after_rotation,
        grace: GRACE,
    }
}

/// Every combination of the three flags.
fn all_policies() -> Vec<RotationPolicy> {
    let mut all = Vec::new();
    for rotate in [false, true] {
        for reuse in [false, true] {
            for bar in [false, true] {
                all.push(policy(rotate, reuse, bar));
            }
        }
    }
    all
}

/// An active user whose password changed at `valid_after`.
fn active(valid_after: Option<i64>) -> Holder {
    Holder::Active { valid_after }
}

fn facts(family: Family) -> Facts {
    Facts {
        family,
        issued_at: Some(1_000),
        family_issued_at: 1_000,
        blacklisted: false,
        holder: active(None),
    }
}

fn row(current: &str, previous: Option<&str>, rotated_secs_ago: i64) -> (FamilyRow, DateTime<Utc>) {
    let now = DateTime::<Utc>::from_timestamp(2_000_000_000, 0).unwrap();
    let row = FamilyRow {
        id: "f".into(),
        user_id: 1,
        current_jti: current.into(),
        access_jti: "a".into(),
        issued_at: 0,
        previous_jti: previous.map(Into::into),
        rotated_at: previous.map(|_| now - TimeDelta::seconds(rotated_secs_ago)),
        expires_at: now,
        revoked_at: None,
        created_at: now,
    };
    (row, now)
}

#[test]
fn standing_follows_the_row() {
    let (r, now) = row("new", Some("old"), 3);
    assert_eq!(Standing::of(&r, "new", now, GRACE), Standing::Current);
    assert_eq!(Standing::of(&r, "old", now, GRACE), Standing::JustRotated);
    assert_eq!(Standing::of(&r, "older", now, GRACE), Standing::Stale);
    let (r, now) = row("new", Some("old"), 11);
    assert_eq!(Standing::of(&r, "old", now, GRACE), Standing::Stale);
    let (r, now) = row("new", Some("old"), 10);
    assert_eq!(
        Standing::of(&r, "old", now, GRACE),
        Standing::JustRotated,
        "the grace interval includes its end"
    );
    let (mut r, now) = row("new", None, 0);
    r.revoked_at = Some(now);
    assert_eq!(Standing::of(&r, "new", now, GRACE), Standing::Revoked);
}

#[test]
fn without_rotation_refresh_issues_an_access_token_unless_revoked() {
    let p = policy(false, false, false);
    assert_eq!(p.refresh(&facts(Family::Unadopted)), Action::IssueAccess);
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::Current))),
        Action::IssueAccess
    );
    // Several tokens of a family are live without reuse detection.
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::Stale))),
        Action::IssueAccess
    );
    let blacklisted = Facts {
        blacklisted: true,
        ..facts(Family::Unadopted)
    };
    assert_eq!(
        p.refresh(&blacklisted),
        Action::Refuse(Refusal::Blacklisted)
    );
}

#[test]
fn rotation_without_reuse_detection_advances_the_row() {
    for bar in [false, true] {
        let p = policy(true, false, bar);
        assert_eq!(
            p.refresh(&facts(Family::Unadopted)),
            Action::Advance { adopt: true }
        );
        assert_eq!(
            p.refresh(&facts(Family::Row(Standing::Stale))),
            Action::Advance { adopt: false }
        );
        assert_eq!(
            p.refresh(&facts(Family::Row(Standing::JustRotated))),
            Action::Advance { adopt: false }
        );
    }
}

#[test]
fn reuse_detection_rotates_replays_and_revokes() {
    let p = policy(true, true, false);
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::Current))),
        Action::Rotate
    );
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::JustRotated))),
        Action::Replay
    );
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::Stale))),
        Action::RevokeFamily
    );
    assert_eq!(p.refresh(&facts(Family::Unadopted)), Action::Adopt);
    let blacklisted = Facts {
        blacklisted: true,
        ..facts(Family::Unadopted)
    };
    assert_eq!(
        p.refresh(&blacklisted),
        Action::Refuse(Refusal::Blacklisted)
    );
    // With blacklist_after_rotation a retry is refused, not replayed,
    // and not taken for reuse.
    let p = policy(true, true, true);
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::JustRotated))),
        Action::Refuse(Refusal::Blacklisted)
    );
    assert_eq!(
        p.refresh(&facts(Family::Row(Standing::Stale))),
        Action::RevokeFamily
    );
}

#[test]
fn revoked_and_gone_families_refuse_under_every_policy() {
    for p in all_policies() {
        for family in [Family::Row(Standing::Revoked), Family::Gone] {
            assert_eq!(
                p.refresh(&facts(family)),
                Action::Refuse(Refusal::Blacklisted),
                "{p:?}"
            );
            assert_eq!(
                p.verify(&facts(family)),
                Verdict::Refuse(Refusal::Blacklisted),
                "{p:?}"
            );
            assert_eq!(p.logout(family), Logout::Refuse, "{p:?}");
        }
    }
}

#[test]
fn the_user_and_the_password_cutoff_are_checked_under_every_policy() {
    for p in all_policies() {
        let gone = Facts {
            holder: Holder::Missing,
            ..facts(Family::Row(Standing::Current))
        };
        assert_eq!(p.refresh(&gone), Action::Refuse(Refusal::NoActiveAccount));
        let changed = Facts {
            holder: active(Some(1_001)),
            ..facts(Family::Row(Standing::Current))
        };
        assert_eq!(
            p.refresh(&changed),
            Action::Refuse(Refusal::PasswordChanged)
        );
        assert_eq!(
            p.verify(&changed),
            Verdict::Refuse(Refusal::PasswordChanged)
        );
        // Issued in the very second of the change: valid (the change
        // dates itself to the next second).
        let same = Facts {
            holder: active(Some(1_000)),
            ..facts(Family::Row(Standing::Current))
        };
        assert_ne!(p.refresh(&same), Action::Refuse(Refusal::PasswordChanged));
        let no_iat = Facts {
            issued_at: None,
            ..changed
        };
        assert_eq!(p.refresh(&no_iat), Action::Refuse(Refusal::PasswordChanged));
    }
}

#[test]
fn a_replay_is_refused_after_a_password_change_since_the_rotation() {
    let p = policy(true, true, false);
    let f = Facts {
        issued_at: Some(900),
        family_issued_at: 1_000,
        holder: active(Some(950)),
        ..facts(Family::Row(Standing::JustRotated))
    };
    // The presented token predates the change already.
    assert_eq!(p.refresh(&f), Action::Refuse(Refusal::PasswordChanged));
    let f = Facts {
        issued_at: Some(1_000),
        holder: active(Some(1_000)),
        family_issued_at: 999,
        ..f
    };
    assert_eq!(p.refresh(&f), Action::Refuse(Refusal::PasswordChanged));
}

#[test]
fn without_reuse_detection_the_token_is_judged_before_its_user() {
    let p = policy(true, false, true);
    let f = Facts {
        holder: Holder::Missing,
        ..facts(Family::Row(Standing::Revoked))
    };
    assert_eq!(p.refresh(&f), Action::Refuse(Refusal::Blacklisted));
    let p = policy(true, true, true);
    assert_eq!(p.refresh(&f), Action::Refuse(Refusal::NoActiveAccount));
}

#[test]
fn verify_of_a_stale_token_is_reuse_only_with_reuse_detection() {
    assert_eq!(
        policy(true, true, false).verify(&facts(Family::Row(Standing::Stale))),
        Verdict::RevokeFamily
    );
    assert_eq!(
        policy(true, false, false).verify(&facts(Family::Row(Standing::Stale))),
        Verdict::Accept
    );
    assert_eq!(
        policy(true, true, false).verify(&facts(Family::Row(Standing::JustRotated))),
        Verdict::Accept
    );
    // Verify never asks whether the user is active, only whether their
    // password changed.
    let p = policy(true, true, false);
    let gone = Facts {
        holder: Holder::Missing,
        ..facts(Family::Row(Standing::Current))
    };
    assert_eq!(p.verify(&gone), Verdict::Accept);
    let inactive = Facts {
        holder: Holder::Inactive { valid_after: None },
        ..facts(Family::Row(Standing::Current))
    };
    assert_eq!(p.verify(&inactive), Verdict::Accept);
    let changed = Facts {
        holder: Holder::Inactive {
            valid_after: Some(2_000),
        },
        ..inactive
    };
    assert_eq!(
        p.verify(&changed),
        Verdict::Refuse(Refusal::PasswordChanged)
    );
    assert_eq!(
        p.refresh(&inactive),
        Action::Refuse(Refusal::NoActiveAccount)
    );
}

#[test]
fn logout_of_an_old_token_is_reuse_only_with_reuse_detection() {
    let p = policy(true, true, false);
    assert_eq!(
        p.logout(Family::Row(Standing::Stale)),
        Logout::RevokeForReuse
    );
    assert_eq!(
        p.logout(Family::Row(Standing::JustRotated)),
        Logout::RevokeForReuse
    );
    assert_eq!(p.logout(Family::Row(Standing::Current)), Logout::Revoke);
    assert_eq!(p.logout(Family::Unadopted), Logout::RecordRevoked);
    let p = policy(true, false, false);
    assert_eq!(p.logout(Family::Row(Standing::Stale)), Logout::Revoke);
}

#[test]
fn the_blacklist_is_asked_only_where_it_can_change_the_answer() {
    for p in all_policies() {
        for family in [
            Family::Row(Standing::Revoked),
            Family::Row(Standing::Current),
            Family::Row(Standing::JustRotated),
            Family::Row(Standing::Stale),
            Family::Unadopted,
            Family::Gone,
        ] {
            for refreshing in [true, false] {
                if p.needs_blacklist(family, refreshing) {
                    continue;
                }
                let clean = facts(family);
                let listed = Facts {
                    blacklisted: true,
                    ..clean
                };
                if refreshing {
                    assert_eq!(p.refresh(&clean), p.refresh(&listed), "{p:?} {family:?}");
                } else {
                    assert_eq!(p.verify(&clean), p.verify(&listed), "{p:?} {family:?}");
                }
            }
        }
    }
}
