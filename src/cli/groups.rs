//! `tessera groups ...`: the staff endpoints' operations from a shell.

use clap::Subcommand;

use super::{CliError, failed};
use crate::app::{App, AuthError};
use crate::validation::FieldErrors;

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Print every group, one name per line.
    List,
    /// Create a group.
    Create { name: String },
    /// Delete a group and its memberships.
    Delete { name: String },
    /// Add a user to groups.
    Add {
        username: String,
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Remove a user from groups.
    Remove {
        username: String,
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Print a user's groups, one name per line.
    Show { username: String },
}

/// Wrong input is the caller's mistake (exit code 2); the rest is a failure.
fn refused(e: AuthError, what: &str) -> CliError {
    match e {
        AuthError::Invalid(errors) => CliError::Config(errors.messages().join(" ")),
        AuthError::NoSuchGroup | AuthError::NoSuchUser => CliError::Config(format!("no {what}")),
        other => failed(other),
    }
}

pub async fn run(app: &App, command: GroupsCommand) -> Result<(), CliError> {
    match command {
        GroupsCommand::List => {
            for group in app.groups().await.map_err(failed)? {
                println!("{}", group.name);
            }
        }
        GroupsCommand::Create { name } => {
            let group = app
                .create_group(Some(name.trim().to_owned()), FieldErrors::default())
                .await
                .map_err(|e| refused(e, "group"))?;
            eprintln!("tessera: group {} created (id {})", group.name, group.id);
        }
        GroupsCommand::Delete { name } => {
            let group = app
                .groups()
                .await
                .map_err(failed)?
                .into_iter()
                .find(|g| g.name == name)
                .ok_or_else(|| CliError::Config(format!("no group named {name:?}")))?;
            app.delete_group(group.id)
                .await
                .map_err(|e| refused(e, "group"))?;
            eprintln!("tessera: group {name} deleted");
        }
        GroupsCommand::Add { username, groups } => {
            let user = app
                .user_named(&username)
                .await
                .map_err(|e| refused(e, &format!("user named {username:?}")))?;
            // Every name first: a typo must not leave half the groups added.
            let known = app.groups().await.map_err(failed)?;
            if let Some(missing) = groups.iter().find(|g| !known.iter().any(|k| &k.name == *g)) {
                return Err(CliError::Config(format!(
                    "Object with name={missing} does not exist."
                )));
            }
            for name in groups {
                app.add_to_group(&user, Some(name), FieldErrors::default())
                    .await
                    .map_err(|e| refused(e, "group"))?;
            }
        }
        GroupsCommand::Remove { username, groups } => {
            let user = app
                .user_named(&username)
                .await
                .map_err(|e| refused(e, &format!("user named {username:?}")))?;
            let theirs = app.groups_of(&user).await.map_err(failed)?;
            if let Some(missing) = groups
                .iter()
                .find(|g| !theirs.iter().any(|k| &k.name == *g))
            {
                return Err(CliError::Config(format!(
                    "no group {missing:?} with {username:?} in it"
                )));
            }
            for name in groups {
                app.remove_from_group(&user, &name)
                    .await
                    .map_err(|e| refused(e, &format!("group {name:?} with {username:?} in it")))?;
            }
        }
        GroupsCommand::Show { username } => {
            let user = app
                .user_named(&username)
                .await
                .map_err(|e| refused(e, &format!("user named {username:?}")))?;
            for group in app.groups_of(&user).await.map_err(failed)? {
                println!("{}", group.name);
            }
        }
    }
    Ok(())
}
