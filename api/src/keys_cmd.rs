//! `clockworks-api keys`: create, revoke and list API keys from the command line. A created
//! key is printed once, alone on the last line of standard output; only its hash is stored,
//! so it cannot be shown again. Listings never show hashes.

use anyhow::{Context, bail};
use clockworks::keys::{NewKey, Scope, Scopes};
use clockworks::store::keys;

use crate::config::{DatabaseUrl, KeysCommand};

/// Longest namespace. It becomes the first word of AMQP routing keys, so it stays short.
pub const MAX_NAMESPACE_LEN: usize = 63;

/// Runs one `keys` command against the database it names.
pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            namespace,
            scopes,
            name,
            database,
        } => create(&namespace, scopes, &name, &database).await,
        KeysCommand::Revoke { id, database } => revoke(&id, &database).await,
        KeysCommand::List {
            namespace,
            database,
        } => list(&namespace, &database).await,
    }
}

async fn create(
    namespace: &str,
    scopes: Vec<Scope>,
    name: &str,
    database: &DatabaseUrl,
) -> anyhow::Result<()> {
    if let Err(detail) = validate_namespace(namespace) {
        bail!("--namespace {namespace:?} {detail}");
    }
    let scopes = Scopes::new(scopes);
    let client = connect(database).await?;

    let key = NewKey::generate();
    keys::insert(&client, &key, namespace, name, &scopes)
        .await
        .context("storing the key")?;

    eprintln!(
        "Created key {} in namespace {namespace} with scopes {}.",
        key.id,
        scopes.names().join(",")
    );
    eprintln!(
        "Keep the key printed on standard output: only its hash is stored, it cannot be shown \
         again."
    );
    println!("{}", key.token);
    Ok(())
}

async fn revoke(id: &str, database: &DatabaseUrl) -> anyhow::Result<()> {
    let client = connect(database).await?;
    if !keys::revoke(&client, id)
        .await
        .context("revoking the key")?
    {
        bail!("there is no active key with id {id:?}");
    }
    println!("Revoked key {id}.");
    Ok(())
}

async fn list(namespace: &str, database: &DatabaseUrl) -> anyhow::Result<()> {
    let client = connect(database).await?;
    let keys = keys::list(&client, namespace)
        .await
        .context("listing keys")?;

    println!("id\tname\tscopes\tcreated_at\trevoked_at");
    for key in keys {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            key.id,
            if key.name.is_empty() { "-" } else { &key.name },
            key.scopes.names().join(","),
            key.created_at,
            key.revoked_at.map_or("-".to_owned(), |at| at.to_string()),
        );
    }
    Ok(())
}

async fn connect(database: &DatabaseUrl) -> anyhow::Result<tokio_postgres::Client> {
    clockworks::db::connect(&database.database_url)
        .await
        .context("connecting to the database")
}

/// A namespace: 1 to 63 of `a-z 0-9 _ -`, starting with a letter or a digit. It is the first
/// word of every routing key its timers publish with, so it has no dots.
pub fn validate_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN {
        return Err(format!("must be 1 to {MAX_NAMESPACE_LEN} characters long"));
    }
    if !namespace.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("must start with a lower-case letter or a digit".to_owned());
    }
    if !namespace
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("may contain only a-z, 0-9, _ and -".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_short_lower_case_words_without_dots() {
        for good in [
            "acme",
            "a",
            "team-7_prod",
            "7up",
            &"n".repeat(MAX_NAMESPACE_LEN),
        ] {
            assert!(validate_namespace(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "a.b", "-acme", "_acme", "a b", &"n".repeat(64)] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }
}
