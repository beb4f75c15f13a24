//! `tessera import django`: users, their groups, DRF Token keys and Simple
//! JWT's blacklist, copied from a Django database (read-only) into Tessera's.
//! User ids are kept, so tokens Simple JWT issued with the same signing key
//! name the same users. Each table is copied in one transaction; a dry run
//! rolls it back. Running it again updates what changed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use entity::{auth_tokens, users};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, QueryResult, Statement, TransactionTrait,
};

use crate::db::StoreError;
use crate::{blacklist, groups, opaque, validation};

/// What to do with a target user whose id a different Django user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Conflict {
    /// Stop before writing anything (the default).
    Refuse,
    /// Replace the target's user with Django's.
    Overwrite,
    /// Keep the target's user; Django's is not imported.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    /// Django's user table (a custom user model's, e.g. `accounts_user`).
    pub user_table: String,
    pub on_conflict: Conflict,
}

/// What one table's import did, with a count per reason for each skip.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub added: u64,
    pub updated: u64,
    pub skipped: BTreeMap<&'static str, u64>,
}

impl TableReport {
    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }
}

impl std::fmt::Display for TableReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} added, {} updated", self.added, self.updated)?;
        let skipped: u64 = self.skipped.values().sum();
        write!(f, ", {skipped} skipped")?;
        if skipped > 0 {
            let why: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            write!(f, " ({})", why.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub users: TableReport,
    pub groups: TableReport,
    pub memberships: TableReport,
    pub tokens: TableReport,
    pub blacklist: TableReport,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the Django database: {0}")]
    Source(String),
    #[error(transparent)]
    Target(#[from] StoreError),
    #[error(
        "the target already holds different users with the ids {0}; choose --on-conflict overwrite or skip"
    )]
    Conflict(String),
    #[error("--user-table {0:?} is not a table name")]
    BadTable(String),
}

fn source_err(e: impl std::fmt::Display) -> ImportError {
    ImportError::Source(e.to_string())
}

/// A nullable integer column, whatever width the source stores.
fn opt_int(row: &QueryResult, col: &str) -> Result<Option<i64>, ImportError> {
    row.try_get::<Option<i64>>("", col)
        .or_else(|_| {
            row.try_get::<Option<i32>>("", col)
                .map(|v| v.map(i64::from))
        })
        .map_err(source_err)
}

fn int(row: &QueryResult, col: &str) -> Result<i64, ImportError> {
    opt_int(row, col)?.ok_or_else(|| ImportError::Source(format!("{col} is null")))
}

fn boolean(row: &QueryResult, col: &str) -> Result<bool, ImportError> {
    row.try_get::<bool>("", col)
        .or_else(|_| int(row, col).map(|n| n != 0))
        .map_err(source_err)
}

fn text(row: &QueryResult, col: &str) -> Result<String, ImportError> {
    row.try_get::<String>("", col).map_err(source_err)
}

/// A timestamp column: `timestamptz` in PostgreSQL, naive UTC text in SQLite.
fn time(row: &QueryResult, col: &str) -> Result<Option<DateTime<Utc>>, ImportError> {
    if let Ok(t) = row.try_get::<Option<DateTime<Utc>>>("", col) {
        return Ok(t);
    }
    if let Ok(t) = row.try_get::<Option<NaiveDateTime>>("", col) {
        return Ok(t.map(|t| t.and_utc()));
    }
    match row.try_get::<Option<String>>("", col).map_err(source_err)? {
        None => Ok(None),
        Some(s) => {
            NaiveDateTime::parse_from_str(s.trim_end_matches("+00:00"), "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| Some(t.and_utc()))
                .map_err(|e| ImportError::Source(format!("{col} {s:?}: {e}")))
        }
    }
}

async fn rows(source: &DatabaseConnection, sql: &str) -> Result<Vec<QueryResult>, ImportError> {
    source
        .query_all_raw(Statement::from_string(source.get_database_backend(), sql))
        .await
        .map_err(source_err)
}

/// Logs progress on large tables, every 1,000 rows.
fn progress(table: &str, done: usize, total: usize) {
    if done.is_multiple_of(1000) && total > 1000 {
        tracing::info!(table, done, total, "importing");
    }
}

/// Copies the tables, in order (memberships, tokens and blacklist rows name
/// users).
pub async fn import_django(
    source: &DatabaseConnection,
    target: &DatabaseConnection,
    opts: &Options,
) -> Result<Report, ImportError> {
    if !opts
        .user_table
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ImportError::BadTable(opts.user_table.clone()));
    }
    // One transaction per table, so a failure leaves whole tables (groups
    // and memberships count as one); a dry run does all in one and rolls it
    // back.
    let mut report = Report::default();
    let txn = target.begin().await.map_err(StoreError::from)?;
    let ours;
    (report.users, ours) = import_users(source, &txn, opts).await?;
    let txn = next(txn, target, opts).await?;
    (report.groups, report.memberships) = import_groups(source, &txn, opts, &ours).await?;
    let txn = next(txn, target, opts).await?;
    report.tokens = import_tokens(source, &txn, &ours).await?;
    let txn = next(txn, target, opts).await?;
    report.blacklist = import_blacklist(source, &txn).await?;
    if opts.dry_run {
        txn.rollback().await.map_err(StoreError::from)?;
    } else {
        txn.commit().await.map_err(StoreError::from)?;
    }
    Ok(report)
}

/// The transaction for the next table: this one committed and a new one,
/// or, in a dry run, this one still.
async fn next(
    txn: DatabaseTransaction,
    target: &DatabaseConnection,
    opts: &Options,
) -> Result<DatabaseTransaction, ImportError> {
    if opts.dry_run {
        return Ok(txn);
    }
    txn.commit().await.map_err(StoreError::from)?;
    Ok(target.begin().await.map_err(StoreError::from)?)
}

/// The users, and the ids that are Django's users' in the target now
/// (added, updated, unchanged or overwritten): only their memberships and
/// keys are imported, never onto a different user who kept an id.
async fn import_users(
    source: &DatabaseConnection,
    txn: &DatabaseTransaction,
    opts: &Options,
) -> Result<(TableReport, BTreeSet<i64>), ImportError> {
    let found = rows(
        source,
        &format!(
            "SELECT id, username, email, password, is_active, is_staff, is_superuser, \
             date_joined, last_login FROM {} ORDER BY id",
            opts.user_table
        ),
    )
    .await?;
    let mut report = TableReport::default();
    let mut ours = BTreeSet::new();
    let mut conflicts = Vec::new();
    for (i, row) in found.iter().enumerate() {
        progress("users", i, found.len());
        let id = int(row, "id")?;
        let incoming = users::ActiveModel {
            id: Set(id),
            username: Set(text(row, "username")?),
            email: Set(text(row, "email")?),
            password: Set(text(row, "password")?),
            is_active: Set(boolean(row, "is_active")?),
            is_staff: Set(boolean(row, "is_staff")?),
            is_superuser: Set(boolean(row, "is_superuser")?),
            date_joined: Set(time(row, "date_joined")?.unwrap_or_else(Utc::now)),
            last_login: Set(time(row, "last_login")?),
            tokens_valid_after: Set(None),
            refresh_valid_after: Set(None),
        };
        let existing = users::Entity::find_by_id(id)
            .one(txn)
            .await
            .map_err(StoreError::from)?;
        match existing {
            // Asked first: on PostgreSQL a refused insert would end the
            // transaction.
            None if crate::users::find_by_username(txn, incoming.username.as_ref())
                .await?
                .is_some() =>
            {
                report.skip("usernames taken by another id")
            }
            None => {
                users::Entity::insert(incoming)
                    .exec_without_returning(txn)
                    .await
                    .map_err(StoreError::from)?;
                report.added += 1;
                ours.insert(id);
            }
            Some(current) if current.username != *incoming.username.as_ref() => {
                match opts.on_conflict {
                    Conflict::Refuse => conflicts.push(id.to_string()),
                    Conflict::Skip => report.skip("ids held by another user"),
                    Conflict::Overwrite => {
                        update(txn, incoming, &current).await?;
                        // Nothing of the user replaced may act for the
                        // new one: their keys and groups go, their refresh
                        // tokens (which name this id) are refused.
                        forget_replaced(txn, id).await?;
                        report.updated += 1;
                        ours.insert(id);
                    }
                }
            }
            Some(current) => {
                ours.insert(id);
                if update(txn, incoming, &current).await? {
                    report.updated += 1;
                } else {
                    report.skip("unchanged");
                }
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.truncate(20);
        return Err(ImportError::Conflict(conflicts.join(", ")));
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        // Ids were given: the next registration must start after them.
        txn.execute_unprepared(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), \
             GREATEST((SELECT MAX(id) FROM users), 1))",
        )
        .await
        .map_err(StoreError::from)?;
    }
    Ok((report, ours))
}

/// Brings `current` to `incoming`; whether anything changed. A password
/// already upgraded here to argon2id is kept: Django's row still has the
/// hash it replaced (and the password is the same).
async fn update(
    txn: &impl ConnectionTrait,
    mut incoming: users::ActiveModel,
    current: &users::Model,
) -> Result<bool, ImportError> {
    if current.password.starts_with("$argon2id$") && !incoming.password.as_ref().starts_with('!') {
        incoming.password = Set(current.password.clone());
    }
    incoming.tokens_valid_after = Set(current.tokens_valid_after);
    incoming.refresh_valid_after = Set(current.refresh_valid_after);
    let same = current.username == *incoming.username.as_ref()
        && current.email == *incoming.email.as_ref()
        && current.password == *incoming.password.as_ref()
        && current.is_active == *incoming.is_active.as_ref()
        && current.is_staff == *incoming.is_staff.as_ref()
        && current.is_superuser == *incoming.is_superuser.as_ref()
        && current.last_login.map(|t| t.timestamp())
            == incoming.last_login.as_ref().map(|t| t.timestamp());
    if same {
        return Ok(false);
    }
    users::Entity::update(incoming)
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    Ok(true)
}

/// What the user a Django user overwrote leaves behind: opaque keys,
/// group memberships, and refresh tokens (cut off at once).
async fn forget_replaced(txn: &DatabaseTransaction, id: i64) -> Result<(), ImportError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    opaque::delete_for_user(txn, id).await?;
    entity::user_groups::Entity::delete_many()
        .filter(entity::user_groups::Column::UserId.eq(id))
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    let now = Utc::now();
    crate::users::cut_off_refresh(txn, id, now + chrono::TimeDelta::seconds(1)).await?;
    crate::families::revoke_user(txn, id, now).await?;
    Ok(())
}

async fn import_tokens(
    source: &DatabaseConnection,
    txn: &DatabaseTransaction,
    ours: &BTreeSet<i64>,
) -> Result<TableReport, ImportError> {
    let found = rows(source, "SELECT key, user_id, created FROM authtoken_token").await?;
    let mut report = TableReport::default();
    for (i, row) in found.iter().enumerate() {
        progress("tokens", i, found.len());
        let user_id = int(row, "user_id")?;
        if !ours.contains(&user_id) {
            report.skip("of users not imported");
            continue;
        }
        // Stored as Tessera stores keys: the digest only. The app's existing
        // `Authorization: Token <key>` keeps working.
        let inserted = auth_tokens::Entity::insert(auth_tokens::ActiveModel {
            digest: Set(opaque::digest(&text(row, "key")?)),
            user_id: Set(user_id),
            created_at: Set(time(row, "created")?.unwrap_or_else(Utc::now)),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(auth_tokens::Column::Digest)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .map_err(StoreError::from)?;
        if inserted == 1 {
            report.added += 1;
        } else {
            report.skip("already imported");
        }
    }
    Ok(report)
}

async fn import_blacklist(
    source: &DatabaseConnection,
    txn: &DatabaseTransaction,
) -> Result<TableReport, ImportError> {
    let found = rows(
        source,
        "SELECT o.jti AS jti, o.user_id AS user_id, o.expires_at AS expires_at \
         FROM token_blacklist_blacklistedtoken b \
         JOIN token_blacklist_outstandingtoken o ON o.id = b.token_id",
    )
    .await?;
    let mut report = TableReport::default();
    let now = Utc::now();
    for (i, row) in found.iter().enumerate() {
        progress("blacklist", i, found.len());
        let Some(expires_at) = time(row, "expires_at")?.filter(|t| *t > now) else {
            report.skip("expired");
            continue;
        };
        let user_id = opt_int(row, "user_id")?;
        if blacklist::add(txn, &text(row, "jti")?, user_id, expires_at, now).await? {
            report.added += 1;
        } else {
            report.skip("already blacklisted");
        }
    }
    Ok(report)
}

/// Django's groups, by name (the target may hold groups of its own, under
/// other ids), then the memberships of imported users. A second run adds
/// what is new and removes nothing.
async fn import_groups(
    source: &DatabaseConnection,
    txn: &DatabaseTransaction,
    opts: &Options,
    ours: &BTreeSet<i64>,
) -> Result<(TableReport, TableReport), ImportError> {
    let mut report = TableReport::default();
    // Django's group id -> ours.
    let mut ids = BTreeMap::new();
    for row in rows(source, "SELECT id, name FROM auth_group ORDER BY id").await? {
        let name = text(&row, "name")?;
        if !validation::group_name(&name).is_empty() {
            report.skip("names with a comma or control character");
            continue;
        }
        let id = match groups::find_by_name(txn, &name).await? {
            Some(group) => {
                report.skip("already imported");
                group.id
            }
            None => match groups::create(txn, &name).await {
                Ok(group) => {
                    report.added += 1;
                    group.id
                }
                Err(groups::CreateGroupError::NameTaken) => {
                    return Err(ImportError::Source(format!(
                        "the group {name:?} was created in the target meanwhile; run the import again"
                    )));
                }
                Err(groups::CreateGroupError::Store(e)) => return Err(e.into()),
            },
        };
        ids.insert(int(&row, "id")?, id);
    }
    // The many-to-many table of the user model: auth_user_groups, or
    // accounts_user_groups for a custom `accounts.User`.
    let mut members = TableReport::default();
    let sql = format!(
        "SELECT user_id, group_id FROM {}_groups ORDER BY id",
        opts.user_table
    );
    let found = match rows(source, &sql).await {
        Ok(found) => found,
        // A custom user model without PermissionsMixin has no groups.
        Err(e) if ids.is_empty() => {
            tracing::info!(error = %e, "no user-groups table in the Django database");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    for (i, row) in found.iter().enumerate() {
        progress("memberships", i, found.len());
        let Some(group_id) = ids.get(&int(row, "group_id")?) else {
            members.skip("of groups not imported");
            continue;
        };
        let user_id = int(row, "user_id")?;
        if !ours.contains(&user_id) {
            members.skip("of users not imported");
            continue;
        }
        let added = match groups::add_member(txn, user_id, *group_id).await {
            Ok(added) => added,
            Err(groups::MemberError::Store(e)) => return Err(e.into()),
            // Both were read in this transaction.
            Err(groups::MemberError::Gone) => false,
        };
        if added {
            members.added += 1;
        } else {
            members.skip("already imported");
        }
    }
    Ok((report, members))
}
