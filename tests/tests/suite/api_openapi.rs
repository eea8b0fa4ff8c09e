//! The OpenAPI document against the real api: it is served without a key as OpenAPI 3.1,
//! documents every route of the router with its methods (read from `api/src/app.rs`, so a
//! route added without docs fails here), every example in it validates against its schema
//! and is accepted by the api, and real answers, problems included, validate against the
//! schemas the document gives them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clockworks_tests::Stack;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// The source of the public router and of the problem types, read at compile time.
const APP_SOURCE: &str = include_str!("../../../api/src/app.rs");
const PROBLEM_SOURCE: &str = include_str!("../../../api/src/problem.rs");

/// The function of `app.rs` that builds the public router.
const ROUTER_FUNCTION: &str = "pub fn router(";

/// The method routers this test reads in `app.rs`.
const METHODS: [&str; 8] = [
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

/// The body limit of the api in these tests, in bytes, small enough to exceed cheaply.
const MAX_BODY_BYTES: usize = 4096;

/// How long a worker may take to fire a due timer or apply an operation.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A stack with an api (small body limit), `workers` workers, a read-write key and a
/// read-only key.
async fn stack(workers: usize) -> Result<(Stack, String, String)> {
    let mut stack = Stack::new().await?;
    let limit = MAX_BODY_BYTES.to_string();
    stack
        .start_api(&[("CLOCKWORKS_MAX_BODY_BYTES", limit.as_str())])
        .await?;
    for _ in 0..workers {
        stack.start_worker(&[]).await?;
    }
    let writer = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    let reader = stack.create_key("acme", &["timers:read"]).await?;
    Ok((stack, writer, reader))
}

async fn document(stack: &Stack) -> Result<Value> {
    let response = stack.http.get(stack.url("/openapi.json")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(response.json().await?)
}

async fn send(
    stack: &Stack,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Response> {
    let mut request = stack.http.request(method, stack.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Ok(request.send().await?)
}

/// Sends a request and returns the status and JSON body of its answer.
async fn call(
    stack: &Stack,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value)> {
    let response = send(stack, Some(key), method, path, body).await?;
    let status = response.status();
    let text = response.text().await?;
    let body = serde_json::from_str(&text)
        .with_context(|| format!("{path} answered {status} with {text:?}, not JSON"))?;
    Ok((status, body))
}

/// Checks `instance` against `schema`, resolving its `$ref`s in the document's components.
fn check(document: &Value, schema: &Value, instance: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|err| panic!("the schema of {what} does not compile: {err}"));
    let errors = validator.iter_errors(instance).into_errors();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{errors}\n{instance:#}"
    );
}

/// Checks `instance` against the named component schema.
fn check_named(document: &Value, name: &str, instance: &Value) {
    let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    check(document, &schema, instance, name);
}

/// Everything between the parentheses that open `text`, skipping string literals.
fn parenthesized(text: &str) -> &str {
    assert!(
        text.starts_with('('),
        "expected a parenthesis at {text:.40}"
    );
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return &text[1..at];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses at {text:.40}");
}

/// The body of the function whose signature starts with `signature`.
fn function_body<'a>(source: &'a str, signature: &str) -> &'a str {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("app.rs has no `{signature}`"));
    let open = start + source[start..].find('{').expect("a function has a body");
    let mut depth = 0;
    for (at, c) in source[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &source[open..open + at];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in `{signature}`");
}

/// The functions a method-router expression calls, leaving out paths such as `timers::get`.
fn calls(expression: &str) -> Vec<&str> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = expression;
    let mut offset = 0;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let end = rest[start..]
            .find(|c| !is_word(c))
            .map_or(rest.len(), |n| start + n);
        let word = &rest[start..end];
        let is_path = expression[..offset + start].ends_with("::");
        if !is_path && rest[end..].trim_start().starts_with('(') {
            found.push(word);
        }
        offset += end;
        rest = &rest[end..];
    }
    found
}

/// The routes of the public router as `app.rs` declares them: path to methods. Anything in
/// the router this reading does not understand fails the test rather than being skipped.
fn router_routes() -> BTreeMap<String, BTreeSet<String>> {
    let body = function_body(APP_SOURCE, ROUTER_FUNCTION);
    for unread in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !body.contains(unread),
            "the router uses `{unread}`, which this test does not read yet"
        );
    }

    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rest = body;
    while let Some(at) = rest.find(".route(") {
        let arguments = parenthesized(&rest[at + ".route".len()..]);
        let (path, method_router) = arguments
            .split_once(',')
            .unwrap_or_else(|| panic!("a route without a method router: {arguments}"));
        let path = path.trim().trim_matches('"').to_owned();
        let methods = calls(method_router);
        assert!(!methods.is_empty(), "no method read in route {path}");
        for method in methods {
            assert!(
                METHODS.contains(&method),
                "route {path} uses `{method}(`, which this test does not read yet"
            );
            routes
                .entry(path.clone())
                .or_default()
                .insert(method.to_owned());
        }
        rest = &rest[at + ".route".len() + arguments.len()..];
    }
    assert!(
        routes.len() > 10,
        "too few routes read from app.rs: {routes:?}"
    );
    routes
}

/// The documented operations: path to methods.
fn documented_routes(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// An example found in the document, with the schema it must validate against.
struct Example {
    location: String,
    schema: Value,
    value: Value,
}

fn schema_examples(location: &str, schema: &Value, found: &mut Vec<Example>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let mut add = |value: &Value| {
        found.push(Example {
            location: location.to_owned(),
            schema: schema.clone(),
            value: value.clone(),
        })
    };
    if let Some(Value::Array(values)) = object.get("examples") {
        values.iter().for_each(&mut add);
    }
    if let Some(value) = object.get("example") {
        add(value);
    }
    if let Some(Value::Object(properties)) = object.get("properties") {
        for (name, property) in properties {
            schema_examples(&format!("{location}.{name}"), property, found);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(inner) = object.get(nested) {
            schema_examples(&format!("{location}.{nested}"), inner, found);
        }
    }
    for list in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(schemas)) = object.get(list) {
            for (index, inner) in schemas.iter().enumerate() {
                schema_examples(&format!("{location}.{list}[{index}]"), inner, found);
            }
        }
    }
}

fn media_examples(location: &str, content: &Value, found: &mut Vec<Example>) {
    let Some(media) = content.as_object() else {
        return;
    };
    for (media_type, entry) in media {
        let location = format!("{location} {media_type}");
        let schema = entry.get("schema").cloned().unwrap_or(json!({}));
        schema_examples(&location, &schema, found);
        let mut add = |name: &str, value: &Value| {
            found.push(Example {
                location: format!("{location} example {name}"),
                schema: schema.clone(),
                value: value.clone(),
            })
        };
        if let Some(value) = entry.get("example") {
            add("example", value);
        }
        if let Some(Value::Object(named)) = entry.get("examples") {
            for (name, example) in named {
                add(name, &example["value"]);
            }
        }
    }
}

/// Every example of the document: of schemas, parameters, request bodies and responses.
fn examples(document: &Value) -> Vec<Example> {
    let mut found = Vec::new();
    let components = &document["components"];
    for (name, schema) in components["schemas"].as_object().into_iter().flatten() {
        schema_examples(&format!("schema {name}"), schema, &mut found);
    }
    for (name, response) in components["responses"].as_object().into_iter().flatten() {
        media_examples(
            &format!("response {name}"),
            &response["content"],
            &mut found,
        );
    }
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let at = format!("{} {path}", method.to_uppercase());
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let location = format!("{at} parameter {}", parameter["name"]);
                let schema = parameter.get("schema").cloned().unwrap_or(json!({}));
                schema_examples(&location, &schema, &mut found);
                if let Some(value) = parameter.get("example") {
                    found.push(Example {
                        location,
                        schema,
                        value: value.clone(),
                    });
                }
            }
            let body = &operation["requestBody"]["content"];
            media_examples(&format!("{at} request"), body, &mut found);
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                media_examples(&format!("{at} {status}"), &response["content"], &mut found);
            }
        }
    }
    found
}

/// The named examples of an operation's request body.
fn request_examples(document: &Value, path: &str, method: &str) -> Vec<(String, Value)> {
    let examples =
        &document["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"];
    let examples = examples
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} has no request examples"));
    examples
        .iter()
        .map(|(name, example)| (name.clone(), example["value"].clone()))
        .collect()
}

/// The examples a component schema lists.
fn schema_example_values(document: &Value, name: &str) -> Vec<Value> {
    document["components"]["schemas"][name]["examples"]
        .as_array()
        .unwrap_or_else(|| panic!("schema {name} has no examples"))
        .clone()
}

/// The title the document's problem examples give each problem type.
fn documented_titles(document: &Value) -> BTreeMap<String, String> {
    let mut titles = BTreeMap::new();
    for example in examples(document) {
        if let (Some(kind), Some(title)) = (
            example.value["type"].as_str(),
            example.value["title"].as_str(),
        ) && kind.starts_with("/problems/")
        {
            let previous = titles.insert(kind.to_owned(), title.to_owned());
            assert!(
                previous.is_none_or(|previous| previous == title),
                "{kind} has two titles in the document"
            );
        }
    }
    titles
}

/// Polls `path` until `done` holds for its body.
async fn settle(
    stack: &Stack,
    key: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let (status, body) = call(stack, key, Method::GET, path, None).await?;
        assert_eq!(status, StatusCode::OK);
        if done(&body) {
            return Ok(body);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{path} did not settle: {body}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_served_with_a_page_without_a_key() -> Result<()> {
    let (stack, _, _) = stack(0).await?;

    let response = stack.http.get(stack.url("/openapi.json")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await?;
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut operation_ids = BTreeSet::new();
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(operation_ids.insert(id.to_owned()), "{id} is used twice");
        }
    }

    let page = stack.http.get(stack.url("/docs")).send().await?;
    assert_eq!(page.status(), StatusCode::OK);
    let content_type = page.headers()["content-type"].to_str()?.to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await?;
    assert!(
        html.contains("fetch(\"openapi.json\")"),
        "the page loads no document"
    );
    assert!(
        !html.contains("://"),
        "the page loads something from elsewhere"
    );
    stack.shutdown().await
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_with_its_methods() -> Result<()> {
    let (stack, _, _) = stack(0).await?;
    let document = document(&stack).await?;

    let routes = router_routes();
    let documented = documented_routes(&document);
    assert_eq!(
        documented, routes,
        "the document and app.rs list different routes"
    );

    // The document lists no route the api does not have: asked without a key, each answers
    // 200 if public and 401 otherwise, never 404 or 405.
    for (path, item) in document["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", "probe").replace("{group}", "probe");
        for (method, operation) in item.as_object().expect("a path item") {
            let public = operation["security"]
                .as_array()
                .is_some_and(|requirements| requirements.iter().all(|r| r == &json!({})));
            let method = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let response = send(&stack, None, method.clone(), &concrete, None).await?;
            let expected = if public {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(response.status(), expected, "{method} {concrete}");
        }
    }
    stack.shutdown().await
}

#[tokio::test]
async fn every_problem_type_the_api_can_answer_is_listed_in_the_document() -> Result<()> {
    let (stack, _, _) = stack(0).await?;
    let document = document(&stack).await?;

    let mut in_source = BTreeSet::new();
    for piece in PROBLEM_SOURCE.split('"').skip(1).step_by(2) {
        if piece.starts_with("/problems/") {
            in_source.insert(piece.to_owned());
        }
    }
    let listed: BTreeSet<String> = document["components"]["schemas"]["ProblemType"]["enum"]
        .as_array()
        .expect("the problem types are an enum")
        .iter()
        .map(|kind| {
            kind.as_str()
                .expect("a problem type is a string")
                .to_owned()
        })
        .collect();
    assert!(
        in_source.len() > 10,
        "too few problem types read: {in_source:?}"
    );
    assert_eq!(listed, in_source);

    let description = document["components"]["schemas"]["ProblemType"]["description"]
        .as_str()
        .expect("the problem types are described");
    for kind in &listed {
        assert!(
            description.contains(kind.as_str()),
            "{kind} is not described"
        );
    }
    stack.shutdown().await
}

#[tokio::test]
async fn every_example_in_the_document_validates_against_its_schema() -> Result<()> {
    let (stack, _, _) = stack(0).await?;
    let document = document(&stack).await?;

    let examples = examples(&document);
    for example in &examples {
        check(
            &document,
            &example.schema,
            &example.value,
            &example.location,
        );
    }

    // Enough to know the walk found the examples of schemas, bodies and problems.
    assert!(
        examples.len() > 50,
        "only {} examples found",
        examples.len()
    );
    stack.shutdown().await
}

#[tokio::test]
async fn the_request_examples_are_accepted_by_the_api() -> Result<()> {
    let (stack, key, _) = stack(0).await?;
    let document = document(&stack).await?;

    for (name, body) in request_examples(&document, "/v1/timers", "post") {
        let (status, answer) = call(&stack, &key, Method::POST, "/v1/timers", Some(&body)).await?;
        if body.is_array() {
            assert_eq!(status, StatusCode::ACCEPTED, "example {name}: {answer}");
            check_named(&document, "Operation", &answer);
        } else {
            assert_eq!(status, StatusCode::CREATED, "example {name}: {answer}");
            check_named(&document, "Timer", &answer);
        }
    }

    // The schema's own examples: new timers, or safe retries of the ones above.
    for body in schema_example_values(&document, "TimerInput") {
        let (status, answer) = call(&stack, &key, Method::POST, "/v1/timers", Some(&body)).await?;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{body}: {status} {answer}"
        );
    }

    for (name, body) in request_examples(&document, "/v1/timers/{id}", "put") {
        let path = format!("/v1/timers/put-example-{name}");
        let (status, answer) = call(&stack, &key, Method::PUT, &path, Some(&body)).await?;
        assert_eq!(status, StatusCode::CREATED, "example {name}: {answer}");
    }

    let mut replaces: Vec<Value> = request_examples(&document, "/v1/timers", "put")
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    replaces.extend(
        schema_example_values(&document, "ReplaceItem")
            .into_iter()
            .map(|item| json!([item])),
    );
    for body in replaces {
        let (status, answer) = call(&stack, &key, Method::PUT, "/v1/timers", Some(&body)).await?;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {answer}");
    }

    // Every schedule example is checked by the same validation as a timer's schedule.
    let mut previews: Vec<Value> = request_examples(&document, "/v1/schedules/preview", "post")
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    previews.extend(schema_example_values(&document, "PreviewRequest"));
    for kind in [
        "AtSchedule",
        "AfterSchedule",
        "EverySchedule",
        "CronSchedule",
    ] {
        previews.extend(
            schema_example_values(&document, kind)
                .into_iter()
                .map(|schedule| json!({"schedule": schedule})),
        );
    }
    for body in previews {
        let path = "/v1/schedules/preview";
        let (status, answer) = call(&stack, &key, Method::POST, path, Some(&body)).await?;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        check_named(&document, "NextFires", &answer);
    }

    let mut deletes: Vec<Value> = request_examples(&document, "/v1/timers", "delete")
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    deletes.extend(schema_example_values(&document, "DeleteTimers"));
    for body in deletes {
        let (status, answer) =
            call(&stack, &key, Method::DELETE, "/v1/timers", Some(&body)).await?;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {answer}");
    }
    stack.shutdown().await
}

#[tokio::test]
async fn answers_of_the_api_match_the_schemas_the_document_gives_them() -> Result<()> {
    let (stack, key, _) = stack(1).await?;
    let document = document(&stack).await?;
    let timer = |id: &str, group: &str, schedule: Value| {
        json!({"id": id, "group": group, "schedule": schedule, "routing_key": "orders.reminder",
               "payload": {"order": 42}, "headers": {"trace-id": "abc"}})
    };

    let past = timer("fired", "orders", json!({"at": "2020-01-01T00:00:00Z"}));
    let every = timer("every", "reports", json!({"every": "1m", "max_fires": 5}));
    let cron = timer(
        "cron",
        "reports",
        json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"}),
    );
    for body in [&past, &every, &cron] {
        let (status, answer) = call(&stack, &key, Method::POST, "/v1/timers", Some(body)).await?;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        check_named(&document, "Timer", &answer);
    }

    for action in ["pause", "trigger", "resume"] {
        let path = format!("/v1/timers/every/{action}");
        let (status, answer) = call(&stack, &key, Method::POST, &path, None).await?;
        assert_eq!(status, StatusCode::OK, "{action}: {answer}");
        check_named(&document, "Timer", &answer);
    }

    let fired = settle(&stack, &key, "/v1/timers/fired", |timer| {
        timer["state"] == "completed"
    })
    .await?;
    check_named(&document, "Timer", &fired);
    let (_, fires) = call(&stack, &key, Method::GET, "/v1/timers/fired/fires", None).await?;
    check_named(&document, "FireHistory", &fires);
    assert_eq!(fires["fires"].as_array().map(Vec::len), Some(1), "{fires}");

    for (path, schema) in [
        ("/v1/timers", "TimerPage"),
        ("/v1/timers?limit=1", "TimerPage"),
        ("/v1/timers/every/preview?count=3", "NextFires"),
        ("/v1/groups", "GroupPage"),
        ("/v1/groups?limit=1", "GroupPage"),
    ] {
        let (status, answer) = call(&stack, &key, Method::GET, path, None).await?;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        check_named(&document, schema, &answer);
    }

    let batch = json!([
        timer("batch-1", "batch", json!({"after": "1h"})),
        timer("cron", "reports", json!({"after": "1h"})),
    ]);
    let (status, accepted) = call(&stack, &key, Method::POST, "/v1/timers", Some(&batch)).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    check_named(&document, "Operation", &accepted);
    let path = format!("/v1/operations/{}", accepted["id"].as_str().expect("an id"));
    let finished = settle(&stack, &key, &path, |operation| {
        operation["status"] == "succeeded"
    })
    .await?;
    check_named(&document, "Operation", &finished);
    assert_eq!(finished["counts"]["conflict"], 1, "{finished}");
    for path in [format!("{path}?items=false"), format!("{path}?limit=1")] {
        let (_, answer) = call(&stack, &key, Method::GET, &path, None).await?;
        check_named(&document, "Operation", &answer);
    }

    let (status, paused) =
        call(&stack, &key, Method::POST, "/v1/groups/reports/pause", None).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{paused}");
    check_named(&document, "Operation", &paused);
    for path in ["/v1/operations", "/v1/operations?limit=1"] {
        let (_, answer) = call(&stack, &key, Method::GET, path, None).await?;
        check_named(&document, "OperationPage", &answer);
    }
    stack.shutdown().await
}

#[tokio::test]
async fn problems_of_the_api_match_the_problem_schema_and_the_documented_titles() -> Result<()> {
    let (stack, writer, reader) = stack(0).await?;
    let document = document(&stack).await?;
    let titles = documented_titles(&document);
    let valid = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let (status, _) = call(&stack, &writer, Method::POST, "/v1/timers", Some(&valid)).await?;
    assert_eq!(status, StatusCode::CREATED);
    let batch = json!([{"schedule": {"after": "1h"}, "routing_key": "k"}]);
    let once = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(&writer)
        .header("idempotency-key", "k-1")
        .json(&batch)
        .send()
        .await?;
    assert_eq!(once.status(), StatusCode::ACCEPTED);

    let url = |path: &str| stack.url(path);
    let http = &stack.http;
    let padding = " ".repeat(MAX_BODY_BYTES);
    let requests = [
        (StatusCode::UNAUTHORIZED, http.get(url("/v1/timers"))),
        (
            StatusCode::UNAUTHORIZED,
            http.get(url("/v1/timers")).bearer_auth("cw_not_a_key"),
        ),
        (
            StatusCode::FORBIDDEN,
            http.post(url("/v1/timers"))
                .bearer_auth(&reader)
                .json(&valid),
        ),
        (StatusCode::NOT_FOUND, http.get(url("/v1/nothing"))),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            http.patch(url("/v1/timers")),
        ),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .header("content-type", "text/plain")
                .body("hello"),
        ),
        (
            StatusCode::BAD_REQUEST,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .json(&json!({"schedule": {"at": "soon"}})),
        ),
        (
            StatusCode::BAD_REQUEST,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .header("content-type", "application/json")
                .body("{\"schedule\": "),
        ),
        (
            StatusCode::BAD_REQUEST,
            http.get(url("/v1/timers?limit=0")).bearer_auth(&writer),
        ),
        (
            StatusCode::CONFLICT,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .json(&json!({"id": "t1", "schedule": {"after": "2h"}, "routing_key": "k"})),
        ),
        (
            StatusCode::CONFLICT,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .header("idempotency-key", "k-1")
                .json(&json!([{"schedule": {"after": "2h"}, "routing_key": "k"}])),
        ),
        (
            StatusCode::PRECONDITION_FAILED,
            http.put(url("/v1/timers/t1"))
                .bearer_auth(&writer)
                .header("if-match", "\"99\"")
                .json(&json!({"schedule": {"after": "1h"}, "routing_key": "k"})),
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            http.post(url("/v1/timers"))
                .bearer_auth(&writer)
                .header("content-type", "application/json")
                .body(format!("{{\"routing_key\": \"k\"{padding}}}")),
        ),
    ];

    let mut seen = BTreeSet::new();
    for (expected, request) in requests {
        let response = request.send().await?;
        assert_eq!(response.status(), expected);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await?;
        check_named(&document, "Problem", &problem);
        assert_eq!(problem["status"], expected.as_u16(), "{problem}");
        let kind = problem["type"].as_str().expect("a type").to_owned();
        assert_eq!(
            titles.get(&kind).map(String::as_str),
            problem["title"].as_str(),
            "the document's examples give {kind} another title"
        );
        seen.insert(kind);
    }
    assert_eq!(seen.len(), 11, "{seen:?}");
    stack.shutdown().await
}
