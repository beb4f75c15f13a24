//! Field validation with Django's rules and messages. Plain functions over
//! strings: each returns the messages for one field, in Django's order.

/// Django's `User.username` max_length.
pub const USERNAME_MAX_LEN: usize = 150;
/// Django's `User.email` max_length.
pub const EMAIL_MAX_LEN: usize = 254;
/// Django's `MinimumLengthValidator` default.
pub const PASSWORD_MIN_LEN: usize = 8;

pub const USERNAME_TAKEN: &str = "A user with that username already exists.";

fn max_len_message(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

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

/// Password rules, in Django's `AUTH_PASSWORD_VALIDATORS` order. All failing
/// messages are returned together.
pub fn password(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.chars().count() < PASSWORD_MIN_LEN {
        errors.push(format!(
            "This password is too short. It must contain at least {PASSWORD_MIN_LEN} characters."
        ));
    }
    if !value.is_empty() && value.chars().all(|c| c.is_numeric()) {
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

    #[test]
    fn passwords() {
        assert!(password("Tr0ub4dor_3xyz").is_empty());
        assert_eq!(
            password("Xy7#q"),
            vec!["This password is too short. It must contain at least 8 characters."]
        );
        assert_eq!(
            password("83920174652"),
            vec!["This password is entirely numeric."]
        );
        assert_eq!(password("123").len(), 2);
    }
}
