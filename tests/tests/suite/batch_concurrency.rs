//! Which operations may be applied at once (`clockworks::store::operations::start_next`):
//! creates of different ids alongside each other, anything else in the order accepted. Each
//! test holds an operation as its worker would while applying it, and asks from a second
//! connection what may start next.

use std::collections::BTreeMap;

use anyhow::Result;
use clockworks::store::operations::{
    self, ItemResult, NewOperation, OperationRequest, Outcome, Started, Submitted, TimerItem,
};
use clockworks_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

fn item(id: &str) -> TimerItem {
    TimerItem {
        id: id.to_owned(),
        version: None,
        group: None,
        schedule: json!({"after": "1h"}),
        routing_key: "batch.fired".to_owned(),
        payload: json!(null),
        headers: BTreeMap::new(),
        expire_after_ms: None,
    }
}

fn create(ids: &[&str]) -> OperationRequest {
    OperationRequest::Create {
        items: ids.iter().map(|id| item(id)).collect(),
    }
}

/// Stores `request` as an operation of namespace `acme`, accepted after any stored before.
async fn submit(client: &tokio_postgres::Client, request: &OperationRequest) -> Result<Uuid> {
    let new = NewOperation {
        id: Uuid::now_v7(),
        namespace: "acme",
        request,
        idempotency_key: None,
        request_hash: &[],
    };
    match operations::submit(client, &new).await? {
        Submitted::Accepted(operation) => Ok(operation.id),
        Submitted::Existing { .. } => anyhow::bail!("no idempotency key was given"),
    }
}

/// The id of the operation that may start next, if any; it stays started.
async fn start_next(client: &mut tokio_postgres::Client) -> Result<Option<Uuid>> {
    Ok(operations::start_next(client)
        .await?
        .map(|started| started.id))
}

/// Starts the next operation, which must be `expected`, and keeps it locked in a transaction
/// of `client`, as a worker applying it does.
async fn hold(
    client: &mut tokio_postgres::Client,
    expected: Uuid,
) -> Result<tokio_postgres::Transaction<'_>> {
    let started: Started = operations::start_next(client)
        .await?
        .expect("an operation may start");
    assert_eq!(started.id, expected);
    let transaction = client.transaction().await?;
    assert!(
        operations::lock_started(&transaction, started)
            .await?
            .is_some()
    );
    Ok(transaction)
}

#[tokio::test]
async fn a_create_of_other_ids_starts_while_an_earlier_create_is_applied() -> Result<()> {
    let db = TestDb::create().await?;
    let mut first = db.client().await?;
    let mut second = db.client().await?;
    let earlier = submit(&first, &create(&["a", "b"])).await?;
    let later = submit(&first, &create(&["c"])).await?;

    let applying = hold(&mut first, earlier).await?;
    assert_eq!(start_next(&mut second).await?, Some(later));

    applying.rollback().await?;
    db.drop_database().await
}

#[tokio::test]
async fn a_create_sharing_an_id_with_an_earlier_one_waits_until_that_one_finished() -> Result<()> {
    let db = TestDb::create().await?;
    let mut first = db.client().await?;
    let mut second = db.client().await?;
    let earlier = submit(&first, &create(&["a", "b"])).await?;
    let later = submit(&first, &create(&["c", "b"])).await?;

    let applying = hold(&mut first, earlier).await?;
    assert_eq!(start_next(&mut second).await?, None);

    let results = [ItemResult::new(0, "a", Outcome::Created)];
    operations::finish(&applying, earlier, &results).await?;
    applying.commit().await?;
    assert_eq!(start_next(&mut second).await?, Some(later));

    db.drop_database().await
}

#[tokio::test]
async fn any_other_operation_waits_for_every_earlier_one_of_its_namespace() -> Result<()> {
    let db = TestDb::create().await?;
    let mut first = db.client().await?;
    let mut second = db.client().await?;
    let earlier = submit(&first, &create(&["a"])).await?;
    let delete = OperationRequest::DeleteIds {
        ids: vec!["z".to_owned()],
    };
    submit(&first, &delete).await?;
    submit(&first, &create(&["y"])).await?;

    // The create behind the delete waits too: the delete is not a create.
    let applying = hold(&mut first, earlier).await?;
    assert_eq!(start_next(&mut second).await?, None);

    applying.rollback().await?;
    db.drop_database().await
}
