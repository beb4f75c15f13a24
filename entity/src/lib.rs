//! SeaORM entities: one module per table. Only users and the refresh-token
//! blacklist are stored; access tokens never are.

pub mod auth_tokens;
pub mod token_blacklist;
pub mod users;
