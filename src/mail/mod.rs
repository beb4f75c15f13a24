//! Djoser's mails, rendered from templates and sent off the request path:
//! a bounded queue drained by one task that retries, counts every outcome
//! and logs a mail it gives up on (never its body: it holds a token).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{EmailBackend, EmailSettings, SmtpTls};
use crate::metrics::Metrics;

/// The mails Djoser sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Activation,
    Confirmation,
    PasswordReset,
    UsernameReset,
    PasswordChangedConfirmation,
    UsernameChangedConfirmation,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Self::Activation,
        Self::Confirmation,
        Self::PasswordReset,
        Self::UsernameReset,
        Self::PasswordChangedConfirmation,
        Self::UsernameChangedConfirmation,
    ];

    /// Its template names and metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::Confirmation => "confirmation",
            Self::PasswordReset => "password_reset",
            Self::UsernameReset => "username_reset",
            Self::PasswordChangedConfirmation => "password_changed_confirmation",
            Self::UsernameChangedConfirmation => "username_changed_confirmation",
        }
    }

    fn built_in(self, part: &str) -> &'static str {
        macro_rules! parts {
            ($($kind:ident => $name:literal),*) => {
                match (self, part) {
                    $(
                        (Self::$kind, "subject.txt") => include_str!(concat!("templates/", $name, ".subject.txt")),
                        (Self::$kind, "txt") => include_str!(concat!("templates/", $name, ".txt")),
                        (Self::$kind, _) => include_str!(concat!("templates/", $name, ".html")),
                    )*
                }
            };
        }
        parts!(
            Activation => "activation",
            Confirmation => "confirmation",
            PasswordReset => "password_reset",
            UsernameReset => "username_reset",
            PasswordChangedConfirmation => "password_changed_confirmation",
            UsernameChangedConfirmation => "username_changed_confirmation"
        )
    }
}

/// What the templates see.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub site_name: String,
    pub domain: String,
    pub protocol: String,
    pub username: String,
    pub email: String,
    /// The link's parts, for mails that carry one (empty otherwise).
    pub uid: String,
    pub token: String,
    /// The frontend path with uid and token filled in.
    pub url: String,
    /// `protocol://domain/url`.
    pub link: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email.templates: {0}")]
    Template(String),
    #[error("email: {0}")]
    Transport(String),
}

/// A rendered mail on its way.
struct Outgoing {
    kind: Kind,
    message: Message,
}

/// Renders and queues mails; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    templates: Arc<Environment<'static>>,
    from: Mailbox,
    queue: mpsc::Sender<Outgoing>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

/// Where mails go.
enum Backend {
    Console,
    File(std::path::PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Loads the templates, builds the transport and starts the sending
    /// task (on the current tokio runtime).
    pub fn start(settings: &EmailSettings, metrics: Arc<Metrics>) -> Result<Self, MailError> {
        let templates = load_templates(settings.templates_dir().as_deref())?;
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| MailError::Transport(format!("from {:?}: {e}", settings.from)))?;
        let backend = match settings.backend {
            EmailBackend::Console => Backend::Console,
            EmailBackend::File => Backend::File(
                settings
                    .file_path
                    .clone()
                    .ok_or_else(|| {
                        MailError::Transport("file_path must be set for the file backend".into())
                    })?
                    .into(),
            ),
            EmailBackend::Smtp => Backend::Smtp(smtp(settings)?),
        };
        let (queue, rx) = mpsc::channel(settings.queue.max(1));
        tokio::spawn(deliver(
            rx,
            backend,
            settings.attempts.max(1),
            Arc::clone(&metrics),
        ));
        Ok(Self {
            templates: Arc::new(templates),
            from,
            queue,
            metrics,
        })
    }

    /// Renders `kind` for `context` and queues it for `to`. Never waits:
    /// a full queue or a bad address drops the mail, logged and counted.
    pub fn send(&self, kind: Kind, to: &str, context: &Context) {
        let outcome = self.render(kind, to, context).and_then(|message| {
            self.queue
                .try_send(Outgoing { kind, message })
                .map_err(|_| "the mail queue is full".to_owned())
        });
        if let Err(why) = outcome {
            self.metrics
                .emails
                .with_label_values(&[kind.name(), "dropped"])
                .inc();
            tracing::warn!(kind = kind.name(), reason = %why, "mail dropped");
        }
    }

    fn render(&self, kind: Kind, to: &str, context: &Context) -> Result<Message, String> {
        let part = |p: &str| {
            self.templates
                .get_template(&format!("{}.{p}", kind.name()))
                .and_then(|t| t.render(context))
                .map_err(|e| format!("template {}.{p}: {e}", kind.name()))
        };
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(part("subject.txt")?.trim().to_owned())
            .multipart(
                MultiPart::alternative()
                    .singlepart(body(ContentType::TEXT_PLAIN, part("txt")?))
                    .singlepart(body(ContentType::TEXT_HTML, part("html")?)),
            )
            .map_err(|e| e.to_string())
    }
}

/// A body part. ASCII text goes as it is (7bit: lines up to 998
/// characters, where lettre's own choice would wrap a link at 76 and
/// quote its `=`), so a link stays whole in the raw mail for whoever greps
/// a file of it; anything else in lettre's choice of encoding.
fn body(content_type: ContentType, text: String) -> SinglePart {
    let part = SinglePart::builder().header(content_type);
    let seven_bit = text.is_ascii() && !text.contains('\0') && text.lines().all(|l| l.len() <= 998);
    if seven_bit {
        let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
        part.body(Body::dangerous_pre_encoded(
            crlf.into_bytes(),
            ContentTransferEncoding::SevenBit,
        ))
    } else {
        part.body(text)
    }
}

/// The built-in templates, each replaced by a file of the same name in
/// `dir` when there is one.
fn load_templates(dir: Option<&Path>) -> Result<Environment<'static>, MailError> {
    let mut env = Environment::new();
    for kind in Kind::ALL {
        for part in ["subject.txt", "txt", "html"] {
            let name = format!("{}.{part}", kind.name());
            let source = match dir.map(|d| d.join(&name)).filter(|p| p.exists()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| MailError::Template(format!("{}: {e}", path.display())))?,
                None => kind.built_in(part).to_owned(),
            };
            env.add_template_owned(name.clone(), source)
                .map_err(|e| MailError::Template(format!("{name}: {e}")))?;
        }
    }
    Ok(env)
}

fn smtp(settings: &EmailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let host = settings.host.as_str();
    let builder = match settings.tls {
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
    }
    .map_err(|e| MailError::Transport(e.to_string()))?;
    let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
    if let Some(user) = &settings.username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            settings.password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// Drains the queue: each mail tried `attempts` times, the pause doubling
/// from one second.
async fn deliver(
    mut rx: mpsc::Receiver<Outgoing>,
    backend: Backend,
    attempts: u32,
    metrics: Arc<Metrics>,
) {
    while let Some(mail) = rx.recv().await {
        let mut pause = Duration::from_secs(1);
        let mut outcome = Err(String::new());
        for attempt in 1..=attempts {
            outcome = send_once(&backend, &mail.message).await;
            if outcome.is_ok() || attempt == attempts {
                break;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        let label = match &outcome {
            Ok(()) => "sent",
            Err(e) => {
                tracing::warn!(
                    kind = mail.kind.name(),
                    attempts,
                    error = %e,
                    "mail not delivered; given up"
                );
                "failed"
            }
        };
        metrics
            .emails
            .with_label_values(&[mail.kind.name(), label])
            .inc();
    }
}

async fn send_once(backend: &Backend, message: &Message) -> Result<(), String> {
    match backend {
        Backend::Console => {
            // Django's console backend: the whole message on stdout, for
            // development (the log, on stderr, never holds it).
            let text = String::from_utf8_lossy(&message.formatted()).into_owned();
            println!("{text}\n{}", "-".repeat(79));
            Ok(())
        }
        Backend::File(dir) => write_file(dir, message).map_err(|e| e.to_string()),
        Backend::Smtp(transport) => transport
            .send(message.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// One `.eml` file per mail, readable by its owner alone (it holds a link
/// that logs someone in).
fn write_file(dir: &Path, message: &Message) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let name = format!(
        "{}-{}.eml",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(name))?;
    file.write_all(&message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            site_name: "Example".into(),
            domain: "example.com".into(),
            protocol: "https".into(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            uid: "MQ".into(),
            token: "abc-123".into(),
            url: "#/activate/MQ/abc-123".into(),
            link: "https://example.com/#/activate/MQ/abc-123".into(),
        }
    }

    #[test]
    fn every_built_in_template_renders_with_its_link() {
        let env = load_templates(None).unwrap();
        for kind in Kind::ALL {
            for part in ["subject.txt", "txt", "html"] {
                let text = env
                    .get_template(&format!("{}.{part}", kind.name()))
                    .unwrap()
                    .render(context())
                    .unwrap();
                assert!(text.contains("Example"), "{} {part}", kind.name());
                let links = matches!(
                    kind,
                    Kind::Activation | Kind::PasswordReset | Kind::UsernameReset
                );
                if links && part != "subject.txt" {
                    assert!(text.contains("https://example.com/#/activate/MQ/abc-123"));
                }
            }
        }
    }

    #[test]
    fn a_template_file_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("activation.subject.txt"),
            "Welcome to {{ site_name }}, {{ username }}",
        )
        .unwrap();
        let env = load_templates(Some(dir.path())).unwrap();
        let subject = env
            .get_template("activation.subject.txt")
            .unwrap()
            .render(context())
            .unwrap();
        assert_eq!(subject, "Welcome to Example, alice");
        std::fs::write(dir.path().join("activation.txt"), "{% if %}").unwrap();
        assert!(matches!(
            load_templates(Some(dir.path())),
            Err(MailError::Template(_))
        ));
    }
}
