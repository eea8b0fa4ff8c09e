//! The schemas of the request and response bodies, for the OpenAPI document.
//!
//! The handlers write their JSON with `serde_json`, so these types are never built: each
//! describes one body, field for field, with the `serde` attributes that `utoipa` reads
//! (`deny_unknown_fields` becomes `additionalProperties: false`). A field that the handlers
//! add or drop without the same change here fails `tests/tests/suite/api_openapi.rs`, which checks
//! real answers against these schemas.

#![allow(
    dead_code,
    reason = "these types describe JSON for the document and are never constructed"
)]

use std::collections::BTreeMap;

use clockworks::duration::MAX_DURATION;
use serde_json::{Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::operations::MAX_BATCH_ITEMS;

/// A span of time: a friendly string (`1h30m`, `90s`, `250ms`, `1d`), an ISO 8601 string
/// (`PT90M`, `P1D`) or a whole number of milliseconds, from zero to 100 years.
pub struct Duration;

impl PartialSchema for Duration {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .description(Some(
                "Friendly (`1h30m`, `90s`, `250ms`, `1d`, `1w`) or ISO 8601 (`PT90M`, `P1D`). \
                 A day is 24 hours and a week 7 days; months and years are refused.",
            ));
        let max_millis = i64::try_from(MAX_DURATION.as_millis()).expect("100 years fit in i64");
        let millis = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(max_millis))
            .description(Some("Milliseconds."));
        OneOfBuilder::new()
            .item(text)
            .item(millis)
            .description(Some(
                "A span of time, a whole number of milliseconds from zero to 100 years. \
                 Answers show it in the friendly form (`1h30m`).",
            ))
            .examples([json!("1h30m"), json!("PT90M"), json!(5_400_000)])
            .into()
    }
}

impl ToSchema for Duration {}

/// A JSON array of 1 to [`MAX_BATCH_ITEMS`] items of `T`.
fn batch_of<T: ToSchema>(description: &str) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(T::name()))
        .min_items(Some(1))
        .max_items(Some(MAX_BATCH_ITEMS))
        .description(Some(description))
        .into()
}

/// The body of `POST /v1/timers` as a batch: the timers to create.
pub struct TimerBatch;

impl PartialSchema for TimerBatch {
    fn schema() -> RefOr<Schema> {
        batch_of::<TimerInput>(
            "Timers to create, 1 to 10000. The batch is validated whole: any invalid item \
             refuses it, naming each field by its item's index (`[3].schedule.at`). Ids must \
             be distinct; items without one get a generated UUIDv7.",
        )
    }
}

impl ToSchema for TimerBatch {}

/// The body of `POST /v1/timers`: one timer, or a batch of them.
pub struct CreateTimersBody;

impl PartialSchema for CreateTimersBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(TimerInput::name()))
            .item(Ref::from_schema_name(TimerBatch::name()))
            .description(Some(
                "A timer object to create one, or an array to create many.",
            ))
            .into()
    }
}

impl ToSchema for CreateTimersBody {}

/// The body of `PUT /v1/timers`: the timers to replace.
pub struct ReplaceBatch;

impl PartialSchema for ReplaceBatch {
    fn schema() -> RefOr<Schema> {
        batch_of::<ReplaceItem>(
            "Timers to replace, 1 to 10000, with distinct ids. The batch is validated whole.",
        )
    }
}

impl ToSchema for ReplaceBatch {}

/// A timer as a client defines it: the body of `POST /v1/timers` and `PUT /v1/timers/{id}`,
/// and an item of a create batch.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({
        "id": "order-42-reminder",
        "group": "orders",
        "schedule": {"at": "2027-01-01T09:00:00Z"},
        "routing_key": "orders.reminder",
        "payload": {"order": 42},
        "headers": {"trace-id": "abc"}
    }),
    json!({
        "schedule": {"every": "5m", "max_fires": 12, "on_missed": "skip"},
        "routing_key": "reports.refresh",
        "payload": null,
        "expire_after": "1m"
    })
))]
pub struct TimerInput {
    /// The client's own id: 1 to 128 characters of `A-Z a-z 0-9 . _ ~ : -`. Left out, a
    /// UUIDv7 is generated. In `PUT /v1/timers/{id}`, the path's id or nothing.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._~:-]+$")]
    pub id: Option<String>,
    /// A label for listing and group actions: 1 to 128 bytes, no control characters.
    #[schema(min_length = 1, max_length = 128)]
    pub group: Option<String>,
    pub schedule: Schedule,
    /// Published as `<namespace>.<routing_key>`: dot-separated words of letters, digits,
    /// `_` and `-`, at most 192 characters; no wildcards.
    #[schema(max_length = 192, pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$")]
    pub routing_key: String,
    /// Any JSON value, carried in each fired event; at most 64 KiB as JSON unless the
    /// operator set another limit. Left out, `null`.
    #[serde(default)]
    pub payload: Value,
    /// Extra AMQP headers of each fired event: at most 32, names of 1 to 128 printable
    /// ASCII characters not starting with `clockworks-`, values of at most 1024 bytes.
    pub headers: Option<BTreeMap<String, String>>,
    /// A fire later than its scheduled instant plus this span (at least 1s) is recorded as
    /// expired and not published.
    pub expire_after: Option<Duration>,
}

/// One item of `PUT /v1/timers`: a timer definition with the id of the timer it replaces.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "id": "order-42-reminder",
    "version": 2,
    "group": "orders",
    "schedule": {"after": "PT90M"},
    "routing_key": "orders.reminder",
    "payload": {"order": 42, "attempt": 2}
})))]
pub struct ReplaceItem {
    /// The id of the timer to replace.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._~:-]+$")]
    pub id: String,
    /// The version the timer must be at; otherwise the item's outcome is `conflict`.
    #[schema(minimum = 1)]
    pub version: Option<i64>,
    #[schema(min_length = 1, max_length = 128)]
    pub group: Option<String>,
    pub schedule: Schedule,
    #[schema(max_length = 192, pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$")]
    pub routing_key: String,
    #[serde(default)]
    pub payload: Value,
    pub headers: Option<BTreeMap<String, String>>,
    pub expire_after: Option<Duration>,
}

/// The body of `DELETE /v1/timers` that names the timers to delete.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"ids": ["order-42-reminder", "order-43-reminder"]})))]
pub struct DeleteTimers {
    /// 1 to 10000 distinct timer ids.
    #[schema(min_items = 1, max_items = 10000)]
    pub ids: Vec<String>,
}

/// When a timer fires: an object with exactly one of `at`, `after`, `every` or `cron`.
/// Answers show it in canonical form: instants in UTC, durations friendly, every default
/// of a recurring schedule spelt out.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Schedule {
    At(AtSchedule),
    After(AfterSchedule),
    Every(EverySchedule),
    Cron(CronSchedule),
}

/// Once, at an instant; one in the past fires at once.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"at": "2027-01-01T09:00:00Z"})))]
pub struct AtSchedule {
    /// An RFC 3339 instant with an offset, from 1970 and before the year 4000, rounded up
    /// to the microsecond.
    #[schema(format = DateTime)]
    pub at: String,
}

/// Once, a span after the timer is defined.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"after": "30s"}), json!({"after": "1h30m"})))]
pub struct AfterSchedule {
    pub after: Duration,
}

/// Fixed rate: slots a step apart, anchored at `start_at` or at the definition, blind to
/// time zones.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"every": "5m"}),
    json!({"every": "1h", "start_at": "2027-01-01T09:00:00Z", "end_at": "2027-01-02T09:00:00Z",
           "max_fires": 24, "on_missed": "fire_all"})
))]
pub struct EverySchedule {
    /// The step between two slots, at least 1s.
    pub every: Duration,
    /// The first slot (inclusive) and the grid's anchor; one in the past makes the slots
    /// before the definition missed fires.
    #[schema(nullable = false, format = DateTime)]
    pub start_at: Option<String>,
    /// No slot after this instant; a slot exactly at it fires.
    #[schema(nullable = false, format = DateTime)]
    pub end_at: Option<String>,
    /// The timer completes after this many fires.
    #[schema(nullable = false, minimum = 1)]
    pub max_fires: Option<i64>,
    #[schema(nullable = false)]
    pub on_missed: Option<OnMissed>,
}

/// The civil times a cron pattern matches in an IANA time zone.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"}),
    json!({"cron": "30 2 * * *", "timezone": "America/New_York", "dst_gap": "skip",
           "dst_overlap": "both", "max_fires": 100})
))]
pub struct CronSchedule {
    /// 5 fields (minute precision) or 6 with seconds first, as croner reads them (the Open
    /// Cron Pattern Specification): names, ranges, steps, lists, `L`, `W`, `#`, `?` and
    /// nicknames such as `@daily`. Some day must match. At most 256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    pub cron: String,
    /// `UTC` (the default) or an `Area/Location` name of the IANA database.
    #[schema(nullable = false, default = "UTC", examples("Europe/Paris"))]
    pub timezone: Option<String>,
    #[schema(nullable = false)]
    pub dst_gap: Option<DstGap>,
    #[schema(nullable = false)]
    pub dst_overlap: Option<DstOverlap>,
    /// No slot before this instant (inclusive).
    #[schema(nullable = false, format = DateTime)]
    pub start_at: Option<String>,
    /// No slot after this instant; a slot exactly at it fires.
    #[schema(nullable = false, format = DateTime)]
    pub end_at: Option<String>,
    /// The timer completes after this many fires.
    #[schema(nullable = false, minimum = 1)]
    pub max_fires: Option<i64>,
    #[schema(nullable = false)]
    pub on_missed: Option<OnMissed>,
}

/// What a recurring timer does about slots that came due while it could not fire (paused,
/// or no worker running): `fire_once` (default) fires once at once for the latest,
/// `skip` goes on with the next future slot, `fire_all` fires each, at most 100.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(default = "fire_once")]
pub enum OnMissed {
    FireOnce,
    Skip,
    FireAll,
}

/// Where a cron match inside a spring-forward gap fires: `shift` (default) at the first
/// valid instant after the gap, `skip` not at all.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(default = "shift")]
pub enum DstGap {
    Shift,
    Skip,
}

/// Where a cron match inside a fall-back overlap fires: `earlier` (default) once at its
/// earlier instant, `both` at both.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(default = "earlier")]
pub enum DstOverlap {
    Earlier,
    Both,
}

/// A stored timer, as every answer shows it. Its `version` is also the answer's `ETag`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "id": "order-42-reminder",
    "group": "orders",
    "schedule": {"at": "2027-01-01T09:00:00Z"},
    "routing_key": "orders.reminder",
    "payload": {"order": 42},
    "headers": {"trace-id": "abc"},
    "expire_after": null,
    "state": "scheduled",
    "next_fire_at": "2027-01-01T09:00:00Z",
    "fire_count": 0,
    "last_fired_at": null,
    "created_at": "2026-12-03T10:15:30.123456Z",
    "updated_at": "2026-12-03T10:15:30.123456Z",
    "version": 1
})))]
pub struct Timer {
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._~:-]+$")]
    pub id: String,
    #[schema(required = true)]
    pub group: Option<String>,
    pub schedule: Schedule,
    pub routing_key: String,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
    /// The definition's `expire_after`, in the friendly form, or `null`.
    #[schema(required = true)]
    pub expire_after: Option<String>,
    pub state: TimerState,
    /// The slot the schedule waits for (for a paused timer, the one it waited for when
    /// paused); `null` once completed or failed.
    #[schema(required = true, format = DateTime)]
    pub next_fire_at: Option<String>,
    /// Present while a fire asked for with `/trigger` has not been made: when it was asked.
    #[schema(nullable = false, format = DateTime)]
    pub triggered_at: Option<String>,
    /// How many times the timer fired.
    #[schema(minimum = 0)]
    pub fire_count: i64,
    #[schema(required = true, format = DateTime)]
    pub last_fired_at: Option<String>,
    /// Present on a failed timer: why it was set aside.
    #[schema(nullable = false)]
    pub failure_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Grows with each change; `If-Match: "<version>"` makes a `PUT` conditional on it.
    #[schema(minimum = 1)]
    pub version: i64,
}

/// Where a timer is in its life: `scheduled` (waiting for its next fire), `paused`,
/// `completed` (nothing left to fire) or `failed` (set aside; `failure_reason` says why).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimerState {
    Scheduled,
    Paused,
    Completed,
    Failed,
}

/// One page of `GET /v1/timers`, in id order.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"timers": [], "next_cursor": null})))]
pub struct TimerPage {
    pub timers: Vec<Timer>,
    /// Pass as `cursor` for the next page; `null` after the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One fire of a timer.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "fire_seq": 3,
    "scheduled_at": "2027-01-01T09:00:00Z",
    "fired_at": "2027-01-01T09:00:00.012345Z",
    "lateness_ms": 12,
    "outcome": "delivered"
})))]
pub struct Fire {
    /// The fire's number within the timer, from 1; part of the event's `message_id`.
    #[schema(minimum = 1)]
    pub fire_seq: i64,
    #[schema(format = DateTime)]
    pub scheduled_at: String,
    /// When it was published (or, if expired, when it was found too late).
    #[schema(format = DateTime)]
    pub fired_at: String,
    /// `fired_at - scheduled_at`, in whole milliseconds.
    pub lateness_ms: i64,
    pub outcome: FireOutcome,
}

/// `delivered`: published and confirmed by the broker. `expired`: later than the timer's
/// `expire_after` allowed, so not published.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FireOutcome {
    Delivered,
    Expired,
}

/// The latest fires of a timer, newest first (`GET /v1/timers/{id}/fires`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireHistory {
    pub fires: Vec<Fire>,
}

/// The body of `POST /v1/schedules/preview`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"schedule": {"cron": "30 2 * * *", "timezone": "America/New_York"}, "count": 3,
           "after": "2027-03-12T12:00:00Z"}),
    json!({"schedule": {"every": "15m"}})
))]
pub struct PreviewRequest {
    pub schedule: Schedule,
    /// How many fires to list, 1 to 1000; 10 when left out.
    #[schema(minimum = 1, maximum = 1000, default = 10)]
    pub count: Option<i64>,
    /// List fires strictly after this instant, as for a timer defined then; the database's
    /// now when left out.
    #[schema(format = DateTime)]
    pub after: Option<String>,
}

/// The next fires of a schedule, DST included.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"next_fires": [
    "2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"
]})))]
pub struct NextFires {
    #[schema(format = DateTime)]
    pub next_fires: Vec<String>,
}

/// A batch operation, without its item results unless asked for.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({
        "id": "019a8f2e-7c41-7d3a-9b1e-2f6c5a4d3e21",
        "kind": "create",
        "status": "pending",
        "item_count": 2,
        "submitted_at": "2026-12-03T10:15:30.123456Z",
        "started_at": null,
        "finished_at": null,
        "counts": {"created": 0, "existing": 0, "replaced": 0, "deleted": 0, "paused": 0,
                   "resumed": 0, "not_found": 0, "conflict": 0, "failed": 0}
    }),
    json!({
        "id": "019a8f2e-7c41-7d3a-9b1e-2f6c5a4d3e21",
        "kind": "create",
        "status": "succeeded",
        "item_count": 2,
        "submitted_at": "2026-12-03T10:15:30.123456Z",
        "started_at": "2026-12-03T10:15:30.201000Z",
        "finished_at": "2026-12-03T10:15:30.254000Z",
        "counts": {"created": 1, "existing": 0, "replaced": 0, "deleted": 0, "paused": 0,
                   "resumed": 0, "not_found": 0, "conflict": 1, "failed": 0},
        "items": [
            {"index": 0, "id": "order-43-reminder", "outcome": "created", "error": null},
            {"index": 1, "id": "order-44-reminder", "outcome": "conflict",
             "error": "a timer with this id has another definition"}
        ]
    })
))]
pub struct Operation {
    #[schema(format = "uuid")]
    pub id: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    /// Items the request named; 0 for a group action until it is applied.
    #[schema(minimum = 0)]
    pub item_count: i64,
    #[schema(format = DateTime)]
    pub submitted_at: String,
    #[schema(required = true, format = DateTime)]
    pub started_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub finished_at: Option<String>,
    pub counts: OutcomeCounts,
    /// Present on a failed operation: why it was not applied.
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// Only in `GET /v1/operations/{id}` (unless `items=false`): a page of item results.
    #[schema(nullable = false)]
    pub items: Option<Vec<OperationItem>>,
    /// Only while more item results remain: the `offset` of the next page.
    #[schema(nullable = false, minimum = 0)]
    pub next_offset: Option<i64>,
}

/// What an operation does. A delete by ids or by group is a `delete`; group pause and
/// resume are `pause` and `resume`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Create,
    Replace,
    Delete,
    Pause,
    Resume,
}

/// `pending` (stored, not started), `running`, `succeeded` (every item has its result) or
/// `failed` (not applied; `error` says why).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// Items per outcome, every outcome listed; zeros until the operation finishes.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeCounts {
    #[schema(minimum = 0)]
    pub created: i64,
    #[schema(minimum = 0)]
    pub existing: i64,
    #[schema(minimum = 0)]
    pub replaced: i64,
    #[schema(minimum = 0)]
    pub deleted: i64,
    #[schema(minimum = 0)]
    pub paused: i64,
    #[schema(minimum = 0)]
    pub resumed: i64,
    #[schema(minimum = 0)]
    pub not_found: i64,
    #[schema(minimum = 0)]
    pub conflict: i64,
    #[schema(minimum = 0)]
    pub failed: i64,
}

/// The result of one item of an operation.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"index": 0, "id": "order-43-reminder", "outcome": "created", "error": null})
))]
pub struct OperationItem {
    /// The item's position in the request; for a group action, its position in id order.
    #[schema(minimum = 0)]
    pub index: i64,
    #[schema(required = true)]
    pub id: Option<String>,
    pub outcome: ItemOutcome,
    /// Why the item could not be applied, if it could not.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// What happened to one item: `created`; `existing` (a create met the same definition: a
/// safe retry); `replaced`; `deleted`; `paused`; `resumed`; `not_found`; `conflict` (a
/// create met another definition, or a replace named another version); `failed`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    Created,
    Existing,
    Replaced,
    Deleted,
    Paused,
    Resumed,
    NotFound,
    Conflict,
    Failed,
}

/// One page of `GET /v1/operations`, newest first.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationPage {
    pub operations: Vec<Operation>,
    /// Pass as `cursor` for the next page; `null` when no more follow.
    #[schema(required = true, format = "uuid")]
    pub next_cursor: Option<String>,
}

/// A group and its timers counted by state.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "group": "orders",
    "counts": {"scheduled": 40, "paused": 2, "completed": 1200, "failed": 0},
    "total": 1242
})))]
pub struct GroupCounts {
    pub group: String,
    pub counts: StateCounts,
    #[schema(minimum = 0)]
    pub total: i64,
}

/// Timers per state, every state listed.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateCounts {
    #[schema(minimum = 0)]
    pub scheduled: i64,
    #[schema(minimum = 0)]
    pub paused: i64,
    #[schema(minimum = 0)]
    pub completed: i64,
    #[schema(minimum = 0)]
    pub failed: i64,
}

/// One page of `GET /v1/groups`, in name order.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPage {
    pub groups: Vec<GroupCounts>,
    /// Pass as `cursor` for the next page; `null` when no more follow.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Why a request was not served: RFC 9457 problem details, sent as
/// `application/problem+json`. `type` is stable; `detail` is for people; validation
/// failures name each offending field in `errors`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "type": "/problems/validation",
    "title": "Invalid request",
    "status": 400,
    "detail": "the request has invalid fields: routing_key",
    "errors": [{"field": "routing_key", "detail": "is required"}]
})))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// A short summary of the type, the same for every problem of that type.
    pub title: String,
    /// The HTTP status of the answer.
    #[schema(minimum = 400, maximum = 599)]
    pub status: i64,
    /// What went wrong with this request. Internal causes are logged, never told.
    pub detail: String,
    /// Present on `/problems/validation`: every offending field.
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

/// The stable `type` of a problem, a URI relative to the api:
///
/// - `/problems/validation` (400): fields, parameters or headers that do not meet the
///   requirements, each named in `errors`.
/// - `/problems/malformed-json` (400): a body that does not parse as JSON.
/// - `/problems/unauthorized` (401): no key, or one that is malformed, unknown or revoked.
/// - `/problems/forbidden` (403): a valid key without the scope the route needs.
/// - `/problems/not-found` (404): no route has this path.
/// - `/problems/method-not-allowed` (405): the route has no such method.
/// - `/problems/conflict` (409): a create under a taken id with another definition.
/// - `/problems/invalid-state` (409): the timer's state does not allow the action.
/// - `/problems/idempotency-key-reused` (409): an `Idempotency-Key` used before with
///   another request.
/// - `/problems/precondition-failed` (412): `If-Match` or `If-None-Match` does not hold.
/// - `/problems/payload-too-large` (413): a body over the configured limit.
/// - `/problems/unsupported-media-type` (415): a body not declared as JSON.
/// - `/problems/internal` (500): an unexpected failure.
/// - `/problems/unavailable` (503): the database is unreachable or the api sheds load;
///   retry after `Retry-After`.
#[derive(ToSchema)]
pub enum ProblemType {
    #[serde(rename = "/problems/validation")]
    Validation,
    #[serde(rename = "/problems/malformed-json")]
    MalformedJson,
    #[serde(rename = "/problems/unauthorized")]
    Unauthorized,
    #[serde(rename = "/problems/forbidden")]
    Forbidden,
    #[serde(rename = "/problems/not-found")]
    NotFound,
    #[serde(rename = "/problems/method-not-allowed")]
    MethodNotAllowed,
    #[serde(rename = "/problems/conflict")]
    Conflict,
    #[serde(rename = "/problems/invalid-state")]
    InvalidState,
    #[serde(rename = "/problems/idempotency-key-reused")]
    IdempotencyKeyReused,
    #[serde(rename = "/problems/precondition-failed")]
    PreconditionFailed,
    #[serde(rename = "/problems/payload-too-large")]
    PayloadTooLarge,
    #[serde(rename = "/problems/unsupported-media-type")]
    UnsupportedMediaType,
    #[serde(rename = "/problems/internal")]
    Internal,
    #[serde(rename = "/problems/unavailable")]
    Unavailable,
}

/// One offending field of a validation problem.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    /// The field's path as the client wrote it (`schedule.at`, `[3].routing_key`,
    /// `headers.trace-id`), a query parameter or header name (`limit`, `If-Match`), or
    /// empty for the body as a whole.
    pub field: String,
    pub detail: String,
}
