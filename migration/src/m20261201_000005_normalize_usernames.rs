//! Usernames stored before Tessera normalized them (NFKC, as Django's
//! `normalize_username`) are normalized, so their owners can still log in
//! (logins look up the normalized name) and nobody can register the
//! normalized twin of an existing name. A name whose normalized form is
//! already taken by another user is left as it is: renaming either would
//! take someone's login away, so that pair is for an operator to settle.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, TryGetable};
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT id, username FROM users ORDER BY id",
            ))
            .await?;
        let mut names = Vec::with_capacity(rows.len());
        for row in rows {
            let id = i64::try_get_by(&row, "id").map_err(|e| DbErr::Custom(format!("{e:?}")))?;
            let name = String::try_get_by(&row, "username")
                .map_err(|e| DbErr::Custom(format!("{e:?}")))?;
            names.push((id, name));
        }
        let mut taken: std::collections::HashSet<String> =
            names.iter().map(|(_, n)| n.clone()).collect();
        let placeholder = |n: usize| match backend {
            sea_orm_migration::sea_orm::DatabaseBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        };
        for (id, name) in names {
            let normalized: String = name.nfkc().collect();
            if normalized == name || taken.contains(&normalized) {
                continue;
            }
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE users SET username = {} WHERE id = {}",
                    placeholder(1),
                    placeholder(2)
                ),
                [normalized.clone().into(), id.into()],
            ))
            .await?;
            // Two old spellings of one name: the older account keeps it.
            taken.insert(normalized);
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The original spellings are not kept: nothing to restore.
        Ok(())
    }
}
