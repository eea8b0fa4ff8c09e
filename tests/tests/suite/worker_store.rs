//! The fire path's SQL (`clockworks::store::firing`) against a real PostgreSQL: what a claim
//! takes, what concurrent claims leave each other, and what marking a fire writes.

use anyhow::Result;
use clockworks::store::firing::{self, FiredTimer, SetAside, Statements};
use clockworks_tests::TestDb;
use clockworks_tests::seed::{self, SeedTimer};
use jiff::Timestamp;

async fn seeded(db: &TestDb, timers: &[SeedTimer]) -> Result<tokio_postgres::Client> {
    let client = db.client().await?;
    seed::insert(&client, timers).await?;
    Ok(client)
}

/// The columns of a timer row that the fire path writes.
#[derive(Debug, PartialEq)]
struct Stored {
    id: String,
    state: String,
    fire_count: i64,
    next_fire_at: Option<Timestamp>,
    last_fired_at: Option<Timestamp>,
    failure_reason: Option<String>,
}

fn ids(claimed: &[firing::ClaimedTimer]) -> Vec<&str> {
    claimed.iter().map(|timer| timer.id.as_str()).collect()
}

#[tokio::test]
async fn a_claim_takes_due_timers_earliest_first_and_leaves_future_ones() -> Result<()> {
    let db = TestDb::create().await?;
    let setup = db.client().await?;
    let past = |millis| seed::due_in(&setup, millis);
    let timers = [
        SeedTimer::at("acme", "second", past(-1000).await?),
        SeedTimer::at("acme", "first", past(-2000).await?),
        SeedTimer::at("acme", "future", past(60_000).await?),
    ];
    let mut client = seeded(&db, &timers).await?;
    let statements = Statements::prepare(&client).await?;

    let transaction = client.transaction().await?;
    let claimed = firing::claim_due(&transaction, &statements, 10).await?;
    assert_eq!(ids(&claimed), ["first", "second"]);
    assert_eq!(claimed[0].fire_count, 0);
    transaction.rollback().await?;

    db.drop_database().await
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_timer() -> Result<()> {
    let db = TestDb::create().await?;
    let setup = db.client().await?;
    let due = seed::due_in(&setup, -1000).await?;
    let timers: Vec<SeedTimer> = (0..5)
        .map(|n| SeedTimer::at("acme", &format!("t{n}"), due))
        .collect();
    seed::insert(&setup, &timers).await?;
    let mut first = db.client().await?;
    let mut second = db.client().await?;
    let first_statements = Statements::prepare(&first).await?;
    let second_statements = Statements::prepare(&second).await?;

    let one = first.transaction().await?;
    let two = second.transaction().await?;
    let claimed_one = firing::claim_due(&one, &first_statements, 3).await?;
    let claimed_two = firing::claim_due(&two, &second_statements, 10).await?;
    assert_eq!(claimed_one.len(), 3);
    assert_eq!(claimed_two.len(), 2);
    for timer in &claimed_two {
        assert!(
            !ids(&claimed_one).contains(&timer.id.as_str()),
            "{} claimed twice",
            timer.id
        );
    }

    // Locked timers still count as due: another worker must not sleep past them.
    let probe = firing::earliest_due(&setup, &Statements::prepare(&setup).await?).await?;
    assert_eq!(probe.earliest_due, Some(due));
    one.rollback().await?;
    two.rollback().await?;

    db.drop_database().await
}

#[tokio::test]
async fn marking_a_fire_completes_a_one_shot_and_records_it_once() -> Result<()> {
    let db = TestDb::create().await?;
    let setup = db.client().await?;
    let due = seed::due_in(&setup, -1000).await?;
    let timers = [
        SeedTimer::at("acme", "done", due),
        SeedTimer::at("acme", "again", due),
        SeedTimer::at("acme", "broken", due),
    ];
    let mut client = seeded(&db, &timers).await?;
    let fired_at = Timestamp::from_millisecond(due.as_millisecond() + 5)?;
    let next = Timestamp::from_millisecond(due.as_millisecond() + 60_000)?;
    let statements = Statements::prepare(&client).await?;

    let transaction = client.transaction().await?;
    let claimed = firing::claim_due(&transaction, &statements, 10).await?;
    let uid = |id: &str| claimed.iter().find(|timer| timer.id == id).unwrap().uid;
    let fires = [
        FiredTimer {
            uid: uid("done"),
            fire_seq: 1,
            scheduled_at: due,
            fired_at,
            next_fire_at: None,
        },
        FiredTimer {
            uid: uid("again"),
            fire_seq: 1,
            scheduled_at: due,
            fired_at,
            next_fire_at: Some(next),
        },
    ];
    assert_eq!(
        firing::mark_fired(&transaction, &statements, &fires).await?,
        2
    );
    let aside = SetAside {
        uid: uid("broken"),
        reason: "the stored schedule cannot be read".to_owned(),
    };
    assert_eq!(firing::set_aside(&transaction, &[aside]).await?, 1);
    transaction.commit().await?;

    let rows = client
        .query(
            "select id, state, fire_count, next_fire_at, last_fired_at, failure_reason
             from timers
             order by id",
            &[],
        )
        .await?;
    let stored: Vec<Stored> = rows
        .iter()
        .map(|row| Stored {
            id: row.get(0),
            state: row.get(1),
            fire_count: row.get(2),
            next_fire_at: row.get(3),
            last_fired_at: row.get(4),
            failure_reason: row.get(5),
        })
        .collect();
    assert_eq!(
        stored,
        [
            Stored {
                id: "again".into(),
                state: "scheduled".into(),
                fire_count: 1,
                next_fire_at: Some(next),
                last_fired_at: Some(fired_at),
                failure_reason: None,
            },
            Stored {
                id: "broken".into(),
                state: "failed".into(),
                fire_count: 0,
                next_fire_at: None,
                last_fired_at: None,
                failure_reason: Some("the stored schedule cannot be read".into()),
            },
            Stored {
                id: "done".into(),
                state: "completed".into(),
                fire_count: 1,
                next_fire_at: None,
                last_fired_at: Some(fired_at),
                failure_reason: None,
            },
        ]
    );
    let recorded: i64 = client
        .query_one("select count(*) from fires where fire_seq = 1", &[])
        .await?
        .get(0);
    assert_eq!(recorded, 2);

    db.drop_database().await
}
