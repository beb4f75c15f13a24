//! Tessera: a JWT authentication service compatible with Django Simple JWT
//! and Djoser. The binary is a thin shell over this library so that tests
//! start the very same application.

pub mod app;
pub mod blacklist;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod families;
pub mod groups;
pub mod http;
pub mod import;
pub mod listener;
pub mod local;
pub mod mail;
pub mod metrics;
pub mod opaque;
pub mod passwords;
pub mod purge;
pub mod refresh;
pub mod reset_tokens;
pub mod startup;
pub mod telemetry;
pub mod throttle;
pub mod time;
pub mod tokens;
pub mod users;
pub mod validation;
