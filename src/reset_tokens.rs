//! Django's account tokens, byte for byte: the `uid` of a link is the user
//! id in URL-safe base64, the `token` is `PasswordResetTokenGenerator`'s
//! `<timestamp in base36>-<every other hex digit of an HMAC-SHA256>` over
//! the user's id, password hash, last login, the timestamp and email. A
//! token dies when any of those changes (so after it is used) and after the
//! timeout. Djoser uses the same tokens for activation and both resets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Django's `key_salt` for these tokens.
const KEY_SALT: &str = "django.contrib.auth.tokens.PasswordResetTokenGenerator";

/// What of a user a token covers.
#[derive(Debug, Clone, Copy)]
pub struct TokenUser<'a> {
    pub id: i64,
    /// The stored password hash.
    pub password: &'a str,
    pub last_login: Option<DateTime<Utc>>,
    pub email: &'a str,
}

/// The `uid` of a link: `urlsafe_base64_encode(force_bytes(pk))`.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The user id of a `uid`, as Djoser's `decode_uid` + `User.objects.get`
/// accept it; `None` for anything that names no id.
pub fn decode_uid(uid: &str) -> Option<i64> {
    let uid = uid.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(uid).ok()?;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// Seconds since 2001-01-01, Django's token epoch.
fn num_seconds(now: DateTime<Utc>) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(2001, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc();
    (now - epoch).num_seconds()
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Django's `base36_to_int`: at most 13 digits.
fn from_base36(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 13 {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

/// `_make_token_with_timestamp`.
fn token_at(user: &TokenUser<'_>, timestamp: u64, secret: &[u8]) -> String {
    // `str(last_login.replace(microsecond=0, tzinfo=None))`, in UTC as
    // Django stores it.
    let login = user
        .last_login
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    let value = format!(
        "{}{}{}{}{}",
        user.id, user.password, login, timestamp, user.email
    );
    // salted_hmac: the key is SHA-256(key_salt + secret).
    let key = Sha256::new()
        .chain_update(KEY_SALT.as_bytes())
        .chain_update(secret)
        .finalize();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    let every_other: String = digest.chars().step_by(2).collect();
    format!("{}-{every_other}", to_base36(timestamp))
}

/// A fresh token for `user`.
pub fn make_token(user: &TokenUser<'_>, secret: &[u8], now: DateTime<Utc>) -> String {
    token_at(user, num_seconds(now).max(0) as u64, secret)
}

/// Whether `token` is valid for `user` at `now`: made with `secret` over
/// the user as they are now, and at most `timeout` old.
pub fn check_token(
    user: &TokenUser<'_>,
    token: &str,
    secret: &[u8],
    now: DateTime<Utc>,
    timeout: std::time::Duration,
) -> bool {
    let Some((ts, _)) = token.split_once('-') else {
        return false;
    };
    if token.matches('-').count() != 1 {
        return false;
    }
    let Some(timestamp) = from_base36(ts) else {
        return false;
    };
    let expected = token_at(user, timestamp, secret);
    // Constant time, as Django's constant_time_compare.
    let same =
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), token.as_bytes())
            .is_ok();
    let age = num_seconds(now) - i64::try_from(timestamp).unwrap_or(i64::MAX);
    same && age <= i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
