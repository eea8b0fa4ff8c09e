//! The `api_keys` table.

use jiff::Timestamp;
use tokio_postgres::GenericClient;

use crate::keys::{NewKey, Scopes};

/// A stored key, without its hash.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub scopes: Scopes,
    pub secret_hash: Vec<u8>,
}

pub async fn insert(
    client: &impl GenericClient,
    key: &NewKey,
    namespace: &str,
    name: &str,
    scopes: &Scopes,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "insert into api_keys (id, namespace, name, secret_hash, scopes)
             values ($1, $2, $3, $4, $5)",
            &[
                &key.id,
                &namespace,
                &name,
                &key.secret_hash,
                &scopes.names(),
            ],
        )
        .await?;
    Ok(())
}

/// The key with this id, unless it was revoked.
pub async fn find_active(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<StoredKey>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select id, namespace, name, scopes, secret_hash
             from api_keys
             where id = $1
               and revoked_at is null",
            &[&id],
        )
        .await?;
    Ok(row.map(|row| StoredKey {
        id: row.get(0),
        namespace: row.get(1),
        name: row.get(2),
        scopes: Scopes::from_names(&row.get::<_, Vec<String>>(3)),
        secret_hash: row.get(4),
    }))
}

/// Revokes a key; true when a key was active and is now revoked.
pub async fn revoke(client: &impl GenericClient, id: &str) -> Result<bool, tokio_postgres::Error> {
    let changed = client
        .execute(
            "update api_keys
             set revoked_at = now()
             where id = $1
               and revoked_at is null",
            &[&id],
        )
        .await?;
    Ok(changed == 1)
}

/// A key as a listing shows it: who holds what, never the hash.
#[derive(Debug, Clone)]
pub struct KeySummary {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Every key of a namespace, revoked ones included, oldest first.
pub async fn list(
    client: &impl GenericClient,
    namespace: &str,
) -> Result<Vec<KeySummary>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select id, name, scopes, created_at, revoked_at
             from api_keys
             where namespace = $1
             order by created_at, id",
            &[&namespace],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(KeySummary {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                scopes: Scopes::from_names(&row.try_get::<_, Vec<String>>(2)?),
                created_at: row.try_get(3)?,
                revoked_at: row.try_get(4)?,
            })
        })
        .collect()
}
