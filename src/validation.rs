//! Field validation with Django's rules and messages. Plain functions over
//! strings: each returns the messages for one field, in Django's order.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

/// Django's `User.username` max_length.
pub const USERNAME_MAX_LEN: usize = 150;
/// Django's `User.email` max_length.
pub const EMAIL_MAX_LEN: usize = 254;
/// Django's `MinimumLengthValidator` default.
pub const PASSWORD_MIN_LEN: usize = 8;

pub const INVALID_PASSWORD: &str = "Invalid password.";
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
/// Djoser's messages of the email flows.
pub const INVALID_UID: &str = "Invalid user id or user doesn't exist.";
pub const INVALID_TOKEN: &str = "Invalid token for given user.";
pub const PASSWORD_MISMATCH: &str = "The two password fields didn't match.";
pub const USERNAME_MISMATCH: &str = "The two username fields didn't match.";

/// Field errors in the order the fields are declared, as DRF lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(String, Vec<String>)>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, list)) => list.push(message.into()),
            None => self.0.push((field.to_owned(), vec![message.into()])),
        }
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every message, field by field (for a command line, which has no
    /// fields to show them under).
    pub fn messages(&self) -> Vec<&str> {
        self.0
            .iter()
            .flat_map(|(_, list)| list.iter().map(String::as_str))
            .collect()
    }

    /// `Err(self)` if any error was recorded.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl serde::Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Djoser's retype check (`re_password`, `re_new_password`): the second
/// field, when a setting asks for it, repeats the first.
pub fn password_retyped(retyped: Option<&str>, password: &str) -> Result<(), FieldErrors> {
    retype_matches(retyped.is_none_or(|r| r == password), PASSWORD_MISMATCH)
}

/// `re_new_username`, compared as the name would be stored.
pub fn username_retyped(retyped: Option<&str>, username: &str) -> Result<(), FieldErrors> {
    retype_matches(
        retyped.is_none_or(|r| normalize_username(r) == username),
        USERNAME_MISMATCH,
    )
}

fn retype_matches(same: bool, mismatch: &str) -> Result<(), FieldErrors> {
    if same {
        Ok(())
    } else {
        Err(FieldErrors::single("non_field_errors", mismatch))
    }
}

/// Django's `AbstractBaseUser.normalize_username`: NFKC, so that a
/// fullwidth `ａｌｉｃｅ` or `ＡＤＭＩＮ` is the same name as `alice` or
/// `ADMIN`. Every lookup and write of a username goes through it.
pub fn normalize_username(username: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if username.is_ascii() {
        username.to_owned()
    } else {
        username.nfkc().collect()
    }
}

fn max_len_message(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

/// Django's `Group.name` (at most 150 characters), and, because group
/// names travel comma-separated in `X-Auth-Groups`, no comma or control
/// character.
pub fn group_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.trim().is_empty() {
        errors.push("This field may not be blank.".to_owned());
    }
    if value.chars().count() > GROUP_NAME_MAX_LEN {
        errors.push(max_len_message(GROUP_NAME_MAX_LEN));
    }
    if value.chars().any(|c| c == ',' || c.is_control()) {
        errors.push("Group names cannot contain commas or control characters.".to_owned());
    }
    errors
}

/// Django's `Group.name` max_length.
pub const GROUP_NAME_MAX_LEN: usize = 150;

/// Django's `UnicodeUsernameValidator` (`^[\w.@+-]+\Z`) and max length.
pub fn username(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.chars().count() > USERNAME_MAX_LEN {
        errors.push(max_len_message(USERNAME_MAX_LEN));
    }
    if !value
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '+' | '-'))
    {
        errors.push(
            "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
                .to_owned(),
        );
    }
    errors
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{}|~-".contains(c)
}

fn valid_user_part(user: &str) -> bool {
    !user.is_empty()
        && user
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn valid_domain(domain: &str) -> bool {
    if domain == "localhost" {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let (tld, rest) = labels.split_last().expect("at least two labels");
    rest.iter().all(|l| label_ok(l))
        && tld.len() >= 2
        && label_ok(tld)
        && !tld.chars().all(|c| c.is_ascii_digit())
}

/// Django's `EmailValidator` (dot-atom local part, hostname domain) and the
/// model's max length. Blank is allowed: the address is optional.
pub fn email(value: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    let mut errors = Vec::new();
    let valid = match value.rsplit_once('@') {
        Some((user, domain)) => valid_user_part(user) && valid_domain(&domain.to_ascii_lowercase()),
        None => false,
    };
    if !valid || value.len() > 320 {
        errors.push("Enter a valid email address.".to_owned());
    }
    if value.chars().count() > EMAIL_MAX_LEN {
        errors.push(max_len_message(EMAIL_MAX_LEN));
    }
    errors
}

/// Django's list of 20,000 common passwords (lower-cased), shipped with
/// Django as `contrib/auth/common-passwords.txt.gz`: the same list gives the
/// same verdicts as the stack Tessera replaces.
const COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("../data/common-passwords.txt.gz");

fn common_passwords() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(COMMON_PASSWORDS_GZ)
            .read_to_string(&mut text)
            .expect("the bundled common-password list is valid gzip");
        text.lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Django's `UserAttributeSimilarityValidator` threshold.
const MAX_SIMILARITY: f64 = 0.7;

/// difflib's `SequenceMatcher.quick_ratio`: twice the size of the multiset
/// intersection of the characters over the total length.
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut available: HashMap<char, i64> = HashMap::new();
    for c in b {
        *available.entry(*c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        let n = available.entry(*c).or_default();
        if *n > 0 {
            matches += 1;
        }
        *n -= 1;
    }
    2.0 * matches as f64 / (a.len() + b.len()) as f64
}

/// Django's `exceeds_maximum_length_ratio`: a value much shorter than the
/// password cannot make it "too similar".
fn exceeds_maximum_length_ratio(password_len: usize, value_len: usize) -> bool {
    let bound = MAX_SIMILARITY / 2.0 * password_len as f64;
    password_len >= 10 * value_len && (value_len as f64) < bound
}

/// Whether `password` is too similar to `value` or one of its `\W+`-separated parts.
fn too_similar(password: &[char], value: &str) -> bool {
    let value = value.to_lowercase();
    let mut parts: Vec<&str> = value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    parts.push(&value);
    parts.into_iter().any(|part| {
        let part: Vec<char> = part.chars().collect();
        !exceeds_maximum_length_ratio(password.len(), part.len())
            && quick_ratio(password, &part) >= MAX_SIMILARITY
    })
}

/// The user attributes a password must not resemble.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserAttributes<'a> {
    pub username: &'a str,
    pub email: &'a str,
}

/// Django's default `AUTH_PASSWORD_VALIDATORS`, in order: similarity to the
/// username or email address, minimum length 8, common password, entirely
/// numeric. Every failing message is returned, in that order.
pub fn password(value: &str, user: UserAttributes<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let lowered: Vec<char> = value.to_lowercase().chars().collect();
    for (attribute, verbose_name) in [(user.username, "username"), (user.email, "email address")] {
        if !attribute.is_empty() && too_similar(&lowered, attribute) {
            errors.push(format!(
                "The password is too similar to the {verbose_name}."
            ));
            break;
        }
    }
    if value.chars().count() < PASSWORD_MIN_LEN {
        errors.push(format!(
            "This password is too short. It must contain at least {PASSWORD_MIN_LEN} characters."
        ));
    }
    if common_passwords().contains(value.to_lowercase().trim()) {
        errors.push("This password is too common.".to_owned());
    }
    if !value.is_empty() && value.chars().all(char::is_numeric) {
        errors.push("This password is entirely numeric.".to_owned());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("alice").is_empty());
        assert!(username("a.b@c+d-e_f").is_empty());
        assert!(username("Zoë").is_empty());
        assert_eq!(username("bad user!").len(), 1);
        assert_eq!(username(&"u".repeat(150)).len(), 0);
        assert_eq!(
            username(&"u".repeat(151)),
            vec!["Ensure this field has no more than 150 characters."]
        );
    }

    #[test]
    fn emails() {
        for ok in [
            "alice@example.com",
            "a.b+c@sub.example.co",
            "x@localhost",
            "",
        ] {
            assert!(email(ok).is_empty(), "{ok}");
        }
        for bad in [
            "not-an-email",
            "nope",
            "a@b",
            "a@@b.com",
            "a@b.c",
            "a..b@c.com",
            "@x.com",
            "a@-x.com",
        ] {
            assert_eq!(email(bad), vec!["Enter a valid email address."], "{bad}");
        }
    }

    fn pw(value: &str, username: &str, email: &str) -> Vec<String> {
        password(value, UserAttributes { username, email })
    }

    #[test]
    fn passwords_as_django_judges_them() {
        // The cases of TRANSCRIPTS.md, B10-B15 and N4-N5.
        assert!(pw("Tr0ub4dor_3xyz", "alice", "alice@example.com").is_empty());
        assert!(pw("An0ther-Good-Pass", "alice", "").is_empty());
        const SHORT: &str = "This password is too short. It must contain at least 8 characters.";
        const COMMON: &str = "This password is too common.";
        const NUMERIC: &str = "This password is entirely numeric.";
        const LIKE_USERNAME: &str = "The password is too similar to the username.";
        const LIKE_EMAIL: &str = "The password is too similar to the email address.";
        let cases: [(&str, &str, &str, &[&str]); 7] = [
            ("Xy7#q", "erin", "", &[SHORT]),
            ("password123", "erin", "", &[COMMON]),
            ("83920174652", "erin", "", &[NUMERIC]),
            ("johnsmith77!", "johnsmith77", "", &[LIKE_USERNAME]),
            (
                "zebracorn1",
                "frank",
                "zebracorn@example.com",
                &[LIKE_EMAIL],
            ),
            // Every message, in Django's validator order.
            ("123", "erin", "", &[SHORT, COMMON, NUMERIC]),
            ("alice1234", "alice", "", &[LIKE_USERNAME]),
        ];
        for (value, username, email, expected) in cases {
            assert_eq!(pw(value, username, email), expected, "{value}");
        }
        assert_eq!(pw("1234", "alice", "").len(), 3);
    }

    #[test]
    fn similarity_follows_difflib() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert!((quick_ratio(&c("alice1234"), &c("alice")) - 10.0 / 14.0).abs() < 1e-9);
        assert_eq!(quick_ratio(&c(""), &c("")), 1.0);
        // A value much shorter than the password is not compared.
        assert!(exceeds_maximum_length_ratio(40, 2));
        assert!(
            !pw("a-very-long-passphrase-with-x", "x", "")
                .iter()
                .any(|m| m.contains("similar"))
        );
    }

    #[test]
    fn the_common_list_is_djangos() {
        assert_eq!(common_passwords().len(), 19640);
        assert!(common_passwords().contains("password"));
    }
}
