//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`, and the page
//! that renders it at `GET /docs`.
//!
//! Each handler describes its own route with `#[utoipa::path]`; this module gathers them
//! into [`ApiDoc`] and owns what they share: the path, header and count parameters, the
//! problem answers and the bearer scheme. The schemas of the bodies are in [`schemas`]; the
//! page is `openapi/docs.html`, plain HTML and JavaScript with nothing loaded from elsewhere.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use clockworks::schedule::MAX_PREVIEW_FIRES;
use clockworks::timer::{MAX_GROUP_LEN, MAX_ID_LEN};
use serde_json::{Value, json};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToResponse, ToSchema};

use crate::{groups, health, lifecycle, listing, operations, preview, timers};

mod schemas;

pub use schemas::*;

/// What `GET /openapi.json` answers with.
const DOCUMENT_CONTENT_TYPE: &str = "application/json";

/// What problem answers are sent as.
const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The page of `GET /docs`: it loads `/openapi.json` and renders it with plain JavaScript,
/// so it needs nothing from outside the api.
const DOCS_PAGE: &str = include_str!("openapi/docs.html");

/// The characters of a timer id, as `clockworks::timer::validate_id` checks them.
const ID_PATTERN: &str = "^[A-Za-z0-9._~:-]+$";

/// What the document says before the routes.
const DESCRIPTION: &str = "\
clockworks fires timers: create one over HTTP and, when it comes due, a worker publishes a \
\"fired\" event to RabbitMQ with routing key `<namespace>.<routing_key>`.

Every route but `/healthz`, `/readyz`, `/openapi.json` and `/docs` needs an API key, sent as \
`Authorization: Bearer <key>`. A key belongs to one namespace and carries scopes \
(`timers:read`, `timers:write`, `admin`, which allows everything); timers and operations of \
another namespace do not exist for it.

A read or an action on one timer or operation that does not exist answers 200 with an empty \
body (no content type), not 404. Batches answer 202 with `Location: /v1/operations/{id}`.

Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is one of the \
`/problems/...` URIs listed in the `Problem` schema. A path that no route has answers 404 \
(`/problems/not-found`) and a method that its route does not have answers 405 \
(`/problems/method-not-allowed`); see the `NotFound` and `MethodNotAllowed` responses. Any \
route may answer 503 (`/problems/unavailable`, `Retry-After: 1`) when the api sheds load.";

/// The whole document: every route of the public router, and the schemas they use.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "clockworks",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        document,
        docs,
        timers::create,
        listing::list,
        operations::replace_many,
        operations::delete_many,
        timers::get,
        timers::replace,
        timers::delete,
        lifecycle::pause,
        lifecycle::resume,
        lifecycle::trigger,
        listing::fires,
        preview::stored,
        preview::unstored,
        operations::list,
        operations::get,
        groups::list,
        groups::delete,
        groups::pause,
        groups::resume,
    ),
    components(
        schemas(
            TimerInput,
            Timer,
            TimerState,
            Schedule,
            AtSchedule,
            AfterSchedule,
            EverySchedule,
            CronSchedule,
            Duration,
            OnMissed,
            DstGap,
            DstOverlap,
            TimerPage,
            Fire,
            FireOutcome,
            FireHistory,
            PreviewRequest,
            NextFires,
            CreateTimersBody,
            TimerBatch,
            ReplaceItem,
            ReplaceBatch,
            DeleteTimers,
            Operation,
            OperationKind,
            OperationStatus,
            OutcomeCounts,
            OperationItem,
            ItemOutcome,
            OperationPage,
            GroupCounts,
            StateCounts,
            GroupPage,
            Problem,
            ProblemType,
            FieldError,
        ),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            TimerConflict,
            IdempotencyKeyReused,
            InvalidState,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            NotFound,
            MethodNotAllowed,
            InternalError,
            Unavailable,
        ),
    ),
    modifiers(&BearerKeys, &OptionalDeleteBody),
    tags(
        (name = "timers", description = "One timer: create, read, replace, delete, list."),
        (name = "lifecycle", description = "Pause, resume or trigger one timer."),
        (name = "schedules", description = "The next fires of a schedule, and fire history."),
        (name = "operations", description = "Batches of timers, carried out asynchronously."),
        (name = "groups", description = "Timers by group label: counts and group actions."),
        (name = "service", description = "Health, readiness and this document."),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi_document",
    tag = "service",
    summary = "This OpenAPI document",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this api.",
            content(("application/json"))),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, DOCUMENT_CONTENT_TYPE)],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// `GET /docs`.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "get_docs_page",
    tag = "service",
    summary = "A page that renders this document",
    description = "A self-contained HTML page that loads `/openapi.json` and lists the routes \
        and schemas; it loads nothing from elsewhere.",
    security(()),
    responses(
        (status = 200, description = "The page.", content(("text/html"))),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// Declares the `bearer` scheme that the protected routes name with the scope they need.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("cw_<id>_<secret>")
            .description(Some(
                "An API key, created with `clockworks-api keys create`. Each operation lists \
                 the scope it needs; `admin` allows every scope.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Marks the body of `DELETE /v1/timers` optional: a delete by `?group=` sends none. Its
/// schema stays the object it must be when sent, which `Option` in the annotation would
/// have made nullable.
struct OptionalDeleteBody;

impl Modify for OptionalDeleteBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let body = openapi
            .paths
            .paths
            .get_mut("/v1/timers")
            .and_then(|item| item.delete.as_mut())
            .and_then(|operation| operation.request_body.as_mut());
        if let Some(RefOr::T(body)) = body {
            body.required = Some(Required::False);
        }
    }
}

/// Declares query parameters that count something: whole numbers from 1 to a maximum, with
/// a default, both taken from the constants the handlers check them with.
macro_rules! count_params {
    ($($(#[$doc:meta])* $type:ident: $name:literal, $max:expr, $default:expr, $what:literal;)*) => {
        $(
            $(#[$doc])*
            pub struct $type;

            impl IntoParams for $type {
                fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                    let count = ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some($max))
                        .default(Some(json!($default)));
                    let description = format!("{}, from 1 to {}; {} when left out.",
                        $what, $max, $default);
                    vec![
                        ParameterBuilder::new()
                            .name($name)
                            .parameter_in(ParameterIn::Query)
                            .required(Required::False)
                            .description(Some(description))
                            .schema(Some(count))
                            .build(),
                    ]
                }
            }
        )*
    };
}

count_params! {
    /// `limit` of `GET /v1/timers`.
    TimerPageLimit: "limit", listing::MAX_PAGE_SIZE, listing::DEFAULT_PAGE_SIZE,
        "Timers per page";
    /// `limit` of `GET /v1/timers/{id}/fires`.
    FiresLimit: "limit", listing::MAX_FIRES_LISTED, listing::DEFAULT_FIRES_LISTED,
        "Fires to list";
    /// `count` of `GET /v1/timers/{id}/preview`.
    PreviewCount: "count", MAX_PREVIEW_FIRES, preview::DEFAULT_PREVIEW_COUNT,
        "Fires to list";
    /// `limit` of `GET /v1/operations/{id}`.
    ItemsLimit: "limit", operations::MAX_ITEMS_LIMIT, operations::DEFAULT_ITEMS_LIMIT,
        "Item results per page";
    /// `limit` of `GET /v1/operations`.
    OperationPageLimit: "limit", operations::MAX_LIST_LIMIT, operations::DEFAULT_LIST_LIMIT,
        "Operations per page";
    /// `limit` of `GET /v1/groups`.
    GroupPageLimit: "limit", groups::MAX_LIST_LIMIT, groups::DEFAULT_LIST_LIMIT,
        "Groups per page";
}

/// The `{id}` of a timer route.
pub struct TimerIdPath;

impl IntoParams for TimerIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let id = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(ID_PATTERN));
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The timer's id. One that no timer could have is a 400, not an empty 200.",
                ))
                .schema(Some(id))
                .example(Some(json!("order-42-reminder")))
                .build(),
        ]
    }
}

/// The `{group}` of a group route.
pub struct GroupPath;

impl IntoParams for GroupPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let group = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_GROUP_LEN));
        vec![
            ParameterBuilder::new()
                .name("group")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The group label: 1 to 128 bytes, no control characters.",
                ))
                .schema(Some(group))
                .example(Some(json!("orders")))
                .build(),
        ]
    }
}

/// The optional `Idempotency-Key` header of a batch request.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(operations::MAX_IDEMPOTENCY_KEY_LEN))
            .pattern(Some("^[!-~]+$"));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Binds this key to the request within the namespace: the same key with \
                     the same request answers with the operation it created; with another \
                     request, 409. 1 to 255 printable ASCII characters. A single timer \
                     create checks the header but needs none: its id makes it idempotent.",
                ))
                .schema(Some(key))
                .example(Some(json!("import-2026-12-03")))
                .build(),
        ]
    }
}

/// What every route that needs a key may answer besides its own outcomes: 401, 403, 500
/// and 503.
pub struct KeyedRoute;

impl IntoResponses for KeyedRoute {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("401", Unauthorized::response().0),
            ("403", Forbidden::response().0),
            ("500", InternalError::response().0),
            ("503", Unavailable::response().0),
        ]
        .into_iter()
        .map(|(status, name)| (status.to_owned(), Ref::from_response_name(name).into()))
        .collect()
    }
}

/// What every route that reads a JSON body may answer about it: 400, 413 and 415.
pub struct JsonBodyRoute;

impl IntoResponses for JsonBodyRoute {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", BadRequest::response().0),
            ("413", PayloadTooLarge::response().0),
            ("415", UnsupportedMediaType::response().0),
        ]
        .into_iter()
        .map(|(status, name)| (status.to_owned(), Ref::from_response_name(name).into()))
        .collect()
    }
}

/// A problem answer: its description, examples and the headers its status calls for.
struct ProblemAnswer {
    description: &'static str,
    examples: Vec<(&'static str, Value)>,
    headers: Vec<(&'static str, &'static str)>,
}

impl ProblemAnswer {
    fn new(description: &'static str) -> Self {
        Self {
            description,
            examples: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// An example problem; its type's title is filled in from `kind`.
    fn example(mut self, name: &'static str, kind: &str, status: u16, detail: &str) -> Self {
        self.examples.push((name, problem(kind, status, detail)));
        self
    }

    fn with_example(mut self, name: &'static str, example: Value) -> Self {
        self.examples.push((name, example));
        self
    }

    fn header(mut self, name: &'static str, description: &'static str) -> Self {
        self.headers.push((name, description));
        self
    }

    fn build(self) -> RefOr<utoipa::openapi::Response> {
        let examples = self.examples.into_iter().map(|(name, value)| {
            let example = ExampleBuilder::new().value(Some(value)).build();
            (name, example)
        });
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(Problem::name())))
            .examples_from_iter(examples)
            .build();
        let mut response = ResponseBuilder::new()
            .description(self.description)
            .content(PROBLEM_CONTENT_TYPE, content);
        for (name, description) in self.headers {
            let header = HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(description))
                .build();
            response = response.header(name, header);
        }
        response.build().into()
    }
}

/// A problem body as the api writes it, with the title of its type.
fn problem(kind: &str, status: u16, detail: &str) -> Value {
    let title = match kind {
        "/problems/validation" => "Invalid request",
        "/problems/malformed-json" => "Malformed JSON",
        "/problems/unauthorized" => "Unauthorized",
        "/problems/forbidden" => "Forbidden",
        "/problems/not-found" => "Not found",
        "/problems/method-not-allowed" => "Method not allowed",
        "/problems/conflict" => "Conflict",
        "/problems/invalid-state" => "Not allowed in this state",
        "/problems/idempotency-key-reused" => "Idempotency key reused",
        "/problems/precondition-failed" => "Precondition failed",
        "/problems/payload-too-large" => "Request body too large",
        "/problems/unsupported-media-type" => "Unsupported media type",
        "/problems/unavailable" => "Service unavailable",
        _ => "Internal error",
    };
    json!({"type": kind, "title": title, "status": status, "detail": detail})
}

/// Declares a reusable problem answer, named after its type, as `answer` builds it.
macro_rules! problem_response {
    ($(#[$doc:meta])* $name:ident => $answer:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), $answer.build())
            }
        }
    };
}

const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
const RETRY_AFTER: &str = "Retry-After";

problem_response!(
    /// 400 for any request that does not meet the requirements.
    BadRequest => ProblemAnswer::new(
        "The request does not meet the requirements: fields, query parameters, headers or \
         the path (`/problems/validation`, naming each in `errors`), or a body that is not \
         JSON (`/problems/malformed-json`).",
    )
    .with_example("validation", json!({
        "type": "/problems/validation",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request has invalid fields: schedule.at, routing_key",
        "errors": [
            {"field": "schedule.at", "detail":
                "\"soon\" is not an RFC 3339 instant with an offset, such as \
                 \"2027-01-01T09:00:00Z\""},
            {"field": "routing_key", "detail": "is required"}
        ]
    }))
    .with_example("query", json!({
        "type": "/problems/validation",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request has invalid fields: limit",
        "errors": [{"field": "limit", "detail": "must be a whole number from 1 to 1000"}]
    }))
    .example(
        "malformed-json",
        "/problems/malformed-json",
        400,
        "the body is not valid JSON: EOF while parsing an object at line 1 column 22",
    )
);

problem_response!(
    /// 401 for a request without a valid key.
    Unauthorized => ProblemAnswer::new(
        "No `Authorization: Bearer` key, or one that is malformed, unknown or revoked.",
    )
    .example(
        "no-key",
        "/problems/unauthorized",
        401,
        "send an API key as `Authorization: Bearer <key>`",
    )
    .example(
        "invalid-key",
        "/problems/unauthorized",
        401,
        "the API key is malformed, unknown or revoked",
    )
    .header(WWW_AUTHENTICATE, "`Bearer`, or `Bearer error=\"invalid_token\"`.")
);

problem_response!(
    /// 403 for a key without the route's scope.
    Forbidden => ProblemAnswer::new("The key is valid but lacks the scope the route needs.")
        .example(
            "missing-scope",
            "/problems/forbidden",
            403,
            "this API key lacks the timers:write scope",
        )
        .header(
            WWW_AUTHENTICATE,
            "`Bearer error=\"insufficient_scope\", scope=\"<the scope needed>\"`.",
        )
);

problem_response!(
    /// 409 for `POST /v1/timers`.
    TimerConflict => ProblemAnswer::new(
        "A timer with this id exists with another definition (`/problems/conflict`), or the \
         `Idempotency-Key` was used with another batch (`/problems/idempotency-key-reused`).",
    )
    .example(
        "conflict",
        "/problems/conflict",
        409,
        "timer \"order-42-reminder\" already exists with a different definition",
    )
    .example(
        "idempotency-key-reused",
        "/problems/idempotency-key-reused",
        409,
        "this Idempotency-Key was used with a different request",
    )
);

problem_response!(
    /// 409 for a batch whose idempotency key was used with another request.
    IdempotencyKeyReused => ProblemAnswer::new(
        "The `Idempotency-Key` was used with another request in this namespace.",
    )
    .example(
        "idempotency-key-reused",
        "/problems/idempotency-key-reused",
        409,
        "this Idempotency-Key was used with a different request",
    )
);

problem_response!(
    /// 409 for an action the timer's state does not allow.
    InvalidState => ProblemAnswer::new(
        "The timer's state does not allow the action: a completed or failed timer cannot be \
         paused or resumed, and a failed one cannot be triggered.",
    )
    .example(
        "completed",
        "/problems/invalid-state",
        409,
        "timer \"order-42-reminder\" is completed and cannot be asked to pause",
    )
);

problem_response!(
    /// 412 for a conditional `PUT` whose condition does not hold.
    PreconditionFailed => ProblemAnswer::new(
        "`If-Match` names no version the timer is at (or there is no timer), or \
         `If-None-Match: *` met an existing timer. Nothing was changed.",
    )
    .example(
        "version-moved-on",
        "/problems/precondition-failed",
        412,
        "timer \"order-42-reminder\" is at version 3 (ETag \"3\"), which If-Match does not \
         name",
    )
);

problem_response!(
    /// 413 for a body over the limit.
    PayloadTooLarge => ProblemAnswer::new(
        "The body is larger than the configured limit (16 MiB by default).",
    )
    .example(
        "too-large",
        "/problems/payload-too-large",
        413,
        "the body is larger than 16777216 bytes",
    )
);

problem_response!(
    /// 415 for a body not declared as JSON.
    UnsupportedMediaType => ProblemAnswer::new(
        "The body is not declared as `application/json` (or an `application/*+json` type).",
    )
    .example(
        "text",
        "/problems/unsupported-media-type",
        415,
        "the body is \"text/plain\"; send application/json (or an application/*+json type)",
    )
);

problem_response!(
    /// 404 for a path that no route has; no route answers it.
    NotFound => ProblemAnswer::new(
        "No route has this path. (A timer or operation that does not exist is not a 404: \
         its route answers 200 with an empty body.)",
    )
    .example("no-route", "/problems/not-found", 404, "no such route")
);

problem_response!(
    /// 405 for a method that the path's route does not have.
    MethodNotAllowed => ProblemAnswer::new("The path's route does not have this method.")
        .example(
            "wrong-method",
            "/problems/method-not-allowed",
            405,
            "method not allowed on this route",
        )
);

problem_response!(
    /// 500 for an unexpected failure.
    InternalError => ProblemAnswer::new(
        "An unexpected failure; the cause is logged, not told.",
    )
    .example("internal", "/problems/internal", 500, "an unexpected error occurred")
);

problem_response!(
    /// 503 for a request that may be retried.
    Unavailable => ProblemAnswer::new(
        "The database cannot be reached in time, or the api is at capacity and sheds the \
         request. Retry after `Retry-After` seconds.",
    )
    .example(
        "database",
        "/problems/unavailable",
        503,
        "the database is unavailable; retry shortly",
    )
    .example(
        "overloaded",
        "/problems/unavailable",
        503,
        "the server is at capacity; retry shortly",
    )
    .header(RETRY_AFTER, "Seconds to wait before retrying: `1`.")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_a_bearer_scheme() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();

        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn the_body_of_a_batch_delete_is_optional_but_never_null() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let body = &document["paths"]["/v1/timers"]["delete"]["requestBody"];

        assert_eq!(body["required"], false);
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/DeleteTimers"})
        );
    }

    #[test]
    fn count_parameters_take_their_bounds_from_the_handlers_constants() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let parameters = &document["paths"]["/v1/timers"]["get"]["parameters"];
        let limit = parameters
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "limit")
            .unwrap();

        assert_eq!(limit["schema"]["maximum"], json!(listing::MAX_PAGE_SIZE));
        assert_eq!(
            limit["schema"]["default"],
            json!(listing::DEFAULT_PAGE_SIZE)
        );
    }
}
