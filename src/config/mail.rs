//! The `[users]` section (Djoser's email-flow settings) and the `[email]`
//! section (how mail leaves).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::values::{self, Named, empty_is_none, secret_string};

/// Djoser's settings of the account flows, under their Djoser names in
/// lower case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSettings {
    pub send_activation_email: bool,
    pub send_confirmation_email: bool,
    pub password_changed_email_confirmation: bool,
    pub username_changed_email_confirmation: bool,
    /// Frontend paths with `{uid}` and `{token}`, after `protocol://domain/`.
    pub activation_url: String,
    pub password_reset_confirm_url: String,
    pub username_reset_confirm_url: String,
    pub domain: String,
    pub site_name: String,
    pub protocol: String,
    pub user_create_password_retype: bool,
    pub set_password_retype: bool,
    pub set_username_retype: bool,
    pub password_reset_confirm_retype: bool,
    pub username_reset_confirm_retype: bool,
    /// Also ends the user's sessions' refresh tokens and opaque keys on
    /// set_password (Tessera does that on every password change already;
    /// kept for Djoser settings files).
    pub logout_on_password_change: bool,
    pub password_reset_show_email_not_found: bool,
    pub username_reset_show_email_not_found: bool,
    #[serde(deserialize_with = "values::duration")]
    pub password_reset_timeout: Duration,
    /// The secret of activation and reset tokens (Django's `SECRET_KEY`);
    /// empty: the HMAC signing key.
    #[serde(deserialize_with = "secret_string")]
    pub token_secret: SecretString,
}

impl UsersSettings {
    /// Whether a reset or resend answers 400 for an unknown email (Djoser
    /// reads either setting for all three endpoints).
    pub fn show_email_not_found(&self) -> bool {
        self.password_reset_show_email_not_found || self.username_reset_show_email_not_found
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailBackend {
    /// Each mail printed on stdout (development).
    Console,
    /// Each mail written as a `.eml` file into `email.file_path`.
    File,
    Smtp,
}

impl Named for EmailBackend {
    const ALL: &'static [Self] = &[Self::Console, Self::File, Self::Smtp];
    const EXAMPLE: &'static str = "[email] backend = \"smtp\", or TESSERA__EMAIL__BACKEND=smtp";
    fn name(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::File => "file",
            Self::Smtp => "smtp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or network).
    None,
    /// Upgrade with STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl Named for SmtpTls {
    const ALL: &'static [Self] = &[Self::None, Self::Starttls, Self::Tls];
    const EXAMPLE: &'static str = "[email] tls = \"starttls\", or TESSERA__EMAIL__TLS=starttls";
    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub backend: EmailBackend,
    pub from: String,
    #[serde(deserialize_with = "empty_is_none")]
    pub file_path: Option<String>,
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "empty_is_none")]
    pub username: Option<String>,
    #[serde(deserialize_with = "secret_string")]
    pub password: SecretString,
    pub tls: SmtpTls,
    #[serde(deserialize_with = "values::duration")]
    pub timeout: Duration,
    /// Mails waiting to be sent; beyond it a mail is dropped and logged.
    pub queue: usize,
    /// Attempts per mail before it is given up (and logged).
    pub attempts: u32,
    /// A folder whose `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`
    /// replace the built-in templates; empty: the built-in ones.
    #[serde(deserialize_with = "empty_is_none")]
    pub templates: Option<String>,
}

impl EmailSettings {
    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.templates.as_ref().map(PathBuf::from)
    }
}

/// The SMTP password is a secret: never printed.
impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("backend", &self.backend)
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}
