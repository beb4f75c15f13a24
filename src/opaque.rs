//! Opaque `Authorization: Token <key>` credentials, stored as knox does:
//! only the SHA-256 digest of each key is kept, one row per login.

use chrono::{DateTime, Utc};
use entity::{auth_tokens, users};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use crate::db::StoreError;
use crate::users::User;

/// Random bytes in a key; hex-encoded it is DRF's 40 lowercase hex digits.
const KEY_BYTES: usize = 20;

/// A fresh key: 160 random bits, as 40 lowercase hex digits.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What is stored for `key`. A plain hash suffices (no salt, no stretching):
/// the key has 160 bits of entropy, so it cannot be guessed from its digest.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Stores the digest of a new `key` for `user_id` (the key itself is
/// shown once, never stored).
pub async fn create(
    db: &DatabaseConnection,
    key: &str,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    auth_tokens::Entity::insert(auth_tokens::ActiveModel {
        digest: Set(digest(key)),
        user_id: Set(user_id),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

pub use auth_tokens::Model as KeyRow;

/// The stored key and its user, in one query.
pub async fn find(
    db: &DatabaseConnection,
    key: &str,
) -> Result<Option<(KeyRow, User)>, StoreError> {
    find_digest(db, &digest(key)).await
}

/// [`find`] by the key's digest.
pub async fn find_digest(
    db: &DatabaseConnection,
    digest: &str,
) -> Result<Option<(KeyRow, User)>, StoreError> {
    let found = auth_tokens::Entity::find()
        .filter(auth_tokens::Column::Digest.eq(digest))
        .find_also_related(users::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(token, user)| user.map(|u| (token, u))))
}

pub async fn delete(db: &DatabaseConnection, token_id: i64) -> Result<(), StoreError> {
    auth_tokens::Entity::delete_by_id(token_id).exec(db).await?;
    Ok(())
}

/// Ends every key of a user; returns how many there were.
pub async fn delete_for_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: i64,
) -> Result<u64, StoreError> {
    Ok(auth_tokens::Entity::delete_many()
        .filter(auth_tokens::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_drf_keys_and_digests_are_sha256() {
        let k = generate_key().unwrap();
        assert_eq!(k.len(), 40);
        assert!(
            k.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(k, generate_key().unwrap());
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
