use chrono::TimeZone;
use entity::{token_blacklist, token_families, users};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, EntityTrait};

use super::*;

/// A migrated database file, its pool, and a local reader of it.
async fn database() -> (tempfile::TempDir, sea_orm::DatabaseConnection, LocalReads) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    crate::db::migrate(&db).await.unwrap();
    // As `db` opens the file for the service.
    db.execute_unprepared("PRAGMA journal_mode = WAL")
        .await
        .unwrap();
    let local = LocalReads::open(&path).unwrap();
    (dir, db, local)
}

fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, nanos).unwrap()
}

/// A user with every optional column empty.
async fn plain_user(db: &sea_orm::DatabaseConnection, username: &str, active: bool) -> User {
    users::ActiveModel {
        username: Set(username.into()),
        email: Set(String::new()),
        password: Set("!".into()),
        is_active: Set(active),
        is_staff: Set(false),
        is_superuser: Set(false),
        date_joined: Set(at(1_700_000_000, 0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn rows_read_here_equal_rows_read_through_sea_orm() {
    let (_dir, db, local) = database().await;
    let bare = plain_user(&db, "bare", false).await;
    let full = users::ActiveModel {
        username: Set("full".into()),
        email: Set("full@example.com".into()),
        password: Set("argon2$argon2id$v=19$m=19456,t=2,p=1$x$y".into()),
        is_active: Set(true),
        is_staff: Set(true),
        is_superuser: Set(true),
        date_joined: Set(at(1_700_000_001, 123_456_789)),
        last_login: Set(Some(at(1_700_000_002, 1))),
        tokens_valid_after: Set(Some(at(1_700_000_003, 500_000_000))),
        refresh_valid_after: Set(Some(at(1_700_000_004, 0))),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    for user in [&bare, &full] {
        let through_pool = users::Entity::find_by_id(user.id).one(&db).await.unwrap();
        assert_eq!(local.user(user.id).unwrap(), through_pool);
        assert_eq!(local.user(user.id).unwrap().as_ref(), Some(user));
    }
    assert_eq!(local.user(full.id + 1).unwrap(), None);

    let fresh = token_families::ActiveModel {
        id: Set("f1".into()),
        user_id: Set(full.id),
        current_jti: Set("j1".into()),
        access_jti: Set("a1".into()),
        issued_at: Set(1_700_000_010),
        previous_jti: Set(None),
        rotated_at: Set(None),
        expires_at: Set(at(1_700_086_410, 0)),
        revoked_at: Set(None),
        created_at: Set(at(1_700_000_010, 42)),
    }
    .insert(&db)
    .await
    .unwrap();
    let rotated = token_families::ActiveModel {
        id: Set("f2".into()),
        user_id: Set(bare.id),
        current_jti: Set("j3".into()),
        access_jti: Set("a3".into()),
        issued_at: Set(1_700_000_020),
        previous_jti: Set(Some("j2".into())),
        rotated_at: Set(Some(at(1_700_000_020, 999_999_999))),
        expires_at: Set(at(1_700_086_420, 0)),
        revoked_at: Set(Some(at(1_700_000_030, 7))),
        created_at: Set(at(1_700_000_011, 0)),
    }
    .insert(&db)
    .await
    .unwrap();
    for row in [&fresh, &rotated] {
        let through_pool = crate::families::find(&db, &row.id).await.unwrap();
        assert_eq!(local.family(&row.id).unwrap(), through_pool);
        assert_eq!(local.family(&row.id).unwrap().as_ref(), Some(row));
    }
    assert_eq!(local.family("f3").unwrap(), None);

    assert!(!local.blacklisted("j2").unwrap());
    crate::blacklist::add(
        &db,
        "j2",
        Some(bare.id),
        at(1_700_086_420, 0),
        at(1_700_000_020, 0),
    )
    .await
    .unwrap();
    assert!(local.blacklisted("j2").unwrap());
    assert!(!local.blacklisted("j1").unwrap());
    assert_eq!(
        token_blacklist::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_commit_through_the_pool_is_seen_by_the_next_read() {
    let (_dir, db, local) = database().await;
    let user = plain_user(&db, "u", true).await;
    assert!(local.user(user.id).unwrap().unwrap().is_active);
    let mut change: users::ActiveModel = user.clone().into();
    change.is_active = Set(false);
    change.update(&db).await.unwrap();
    assert!(!local.user(user.id).unwrap().unwrap().is_active);
    users::Entity::delete_by_id(user.id)
        .exec(&db)
        .await
        .unwrap();
    assert_eq!(local.user(user.id).unwrap(), None);
}

/// sqlx reads dates in formats it never writes (another program may have
/// written the row); those are left to it.
#[tokio::test]
async fn a_date_sqlx_did_not_write_is_an_error_not_a_guess() {
    let (_dir, db, local) = database().await;
    db.execute_unprepared(
        "INSERT INTO users (username, email, password, is_active, is_staff, is_superuser, date_joined) \
         VALUES ('old', '', '!', 1, 0, 0, '2023-11-14 22:13:20')",
    )
    .await
    .unwrap();
    let through_pool = users::Entity::find().one(&db).await.unwrap().unwrap();
    assert_eq!(through_pool.date_joined, at(1_700_000_000, 0));
    assert!(matches!(
        local.user(through_pool.id),
        Err(LocalError::Date("date_joined"))
    ));
}

#[test]
fn a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalReads::open(&dir.path().join("none.db")).unwrap_err();
    assert!(err.contains("none.db"), "{err}");
}

/// A family row as a login starts it, `id` both its id and its token.
async fn family_row(db: &sea_orm::DatabaseConnection, id: &str, user_id: i64) {
    token_families::ActiveModel {
        id: Set(id.into()),
        user_id: Set(user_id),
        current_jti: Set(id.into()),
        access_jti: Set(format!("{id}-a")),
        issued_at: Set(1_700_000_000),
        previous_jti: Set(None),
        rotated_at: Set(None),
        expires_at: Set(at(1_700_086_400, 0)),
        revoked_at: Set(None),
        created_at: Set(at(1_700_000_000, 5)),
    }
    .insert(db)
    .await
    .unwrap();
}

fn issued(jti: &str, exp: i64) -> crate::tokens::Issued {
    crate::tokens::Issued {
        token: String::new(),
        jti: jti.into(),
        exp,
    }
}

/// The rotation of family `id`'s first token (named `id` too) into `pair`.
fn rotation<'a>(id: &'a str, pair: &'a crate::tokens::Pair) -> crate::families::Rotation<'a> {
    crate::families::Rotation {
        id,
        presented: id,
        pair,
        now: at(1_700_000_100, 123_456_000),
        mark: None,
    }
}

/// The pair every rotation here hands out.
fn new_pair() -> crate::tokens::Pair {
    crate::tokens::Pair {
        refresh: issued("r2", 1_700_086_500),
        access: issued("a2", 1_700_000_400),
    }
}

/// A migrated file with a local writer and one family, "f", of a user.
async fn writer_and_family() -> (tempfile::TempDir, sea_orm::DatabaseConnection, LocalWrites) {
    let (dir, db, _) = database().await;
    let writes = LocalWrites::open(&dir.path().join("l.db")).unwrap();
    let user = plain_user(&db, "u", true).await;
    family_row(&db, "f", user.id).await;
    (dir, db, writes)
}

/// The date columns of family `id` as stored: the text each path wrote.
async fn stored_dates(db: &sea_orm::DatabaseConnection, id: &str) -> (String, String) {
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT rotated_at, expires_at FROM token_families WHERE id = ?",
            [id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "rotated_at").unwrap(),
        row.try_get("", "expires_at").unwrap(),
    )
}

#[tokio::test]
async fn a_rotation_written_here_equals_one_written_through_the_pool() {
    let (dir, db, _) = database().await;
    let writes = LocalWrites::open(&dir.path().join("l.db")).unwrap();
    let user = plain_user(&db, "u", true).await;
    for compare in [true, false] {
        let (pooled, local) = if compare { ("p1", "l1") } else { ("p2", "l2") };
        family_row(&db, pooled, user.id).await;
        family_row(&db, local, user.id).await;
        let pair = new_pair();
        let through_pool = if compare {
            crate::families::rotate(&db, &rotation(pooled, &pair)).await
        } else {
            crate::families::advance(&db, &rotation(pooled, &pair)).await
        };
        assert!(through_pool.unwrap());
        assert!(
            writes
                .rotate(&rotation(local, &pair), compare)
                .await
                .unwrap()
        );
        let (p, l) = (
            crate::families::find(&db, pooled).await.unwrap().unwrap(),
            crate::families::find(&db, local).await.unwrap().unwrap(),
        );
        assert_eq!(l.current_jti, "r2");
        assert_eq!(l.previous_jti.as_deref(), Some(local));
        assert_eq!(
            token_families::Model {
                id: p.id.clone(),
                previous_jti: p.previous_jti.clone(),
                ..l
            },
            p
        );
        assert_eq!(
            stored_dates(&db, local).await,
            stored_dates(&db, pooled).await
        );
    }
}

#[tokio::test]
async fn a_rotation_written_here_keeps_the_compare_and_swap() {
    let (_dir, db, writes) = writer_and_family().await;
    let pair = new_pair();
    assert!(writes.rotate(&rotation("f", &pair), true).await.unwrap());
    // "f" is no longer current: a second rotation of it loses.
    assert!(!writes.rotate(&rotation("f", &pair), true).await.unwrap());
    // Without the comparison only a revocation stops it.
    assert!(writes.rotate(&rotation("f", &pair), false).await.unwrap());
    crate::families::revoke(&db, "f", at(1_700_000_200, 0))
        .await
        .unwrap();
    assert!(!writes.rotate(&rotation("f", &pair), false).await.unwrap());
    assert!(
        !writes
            .rotate(&rotation("gone", &pair), false)
            .await
            .unwrap()
    );
}

/// Another connection holding the write lock: an error at once, nothing
/// written; the caller then writes through the pool.
#[tokio::test]
async fn a_locked_file_is_an_error_at_once_and_nothing_is_written() {
    let (dir, db, writes) = writer_and_family().await;
    let holder = rusqlite::Connection::open(dir.path().join("l.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pair = new_pair();
    let started = std::time::Instant::now();
    let err = writes
        .rotate(&rotation("f", &pair), true)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    assert!(
        matches!(&err, LocalError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)),
        "{err}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    let row = crate::families::find(&db, "f").await.unwrap().unwrap();
    assert_eq!(row.current_jti, "f");
    assert!(writes.rotate(&rotation("f", &pair), true).await.unwrap());
}

/// The writer's own checkpoints (it makes no automatic one) let the WAL
/// start over instead of growing with every rotation.
#[tokio::test]
async fn the_wal_stays_small_under_steady_local_writes() {
    let (dir, _db, writes) = writer_and_family().await;
    let pair = new_pair();
    // A page or so each: 12 MB of WAL if nothing checkpointed.
    for _ in 0..3_000 {
        assert!(writes.rotate(&rotation("f", &pair), false).await.unwrap());
    }
    let wal = std::fs::metadata(dir.path().join("l.db-wal"))
        .unwrap()
        .len();
    assert!(wal < 6 << 20, "the WAL grew to {wal} bytes");
}

#[test]
fn a_file_not_in_wal_mode_is_not_written_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollback.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = LocalWrites::open(&path).unwrap_err();
    assert!(err.contains("not in WAL mode"), "{err}");
}
