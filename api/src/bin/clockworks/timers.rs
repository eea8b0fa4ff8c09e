//! `clockworks timers ...`: one request per command (a loop of pages for `list --all`),
//! printed as a table or as the api's JSON. A timer that is not in the key's namespace is
//! an error, so a script can tell it from success by the exit status.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::cli::{CreateArgs, DEFAULT_WAIT_TIMEOUT_SECS, ListArgs, ScheduleArgs, TimersCommand};
use crate::client::{Answer, Client};
use crate::table::{Table, cell, fields};
use crate::{operations, print};

/// Runs one `timers` command.
pub async fn run(command: TimersCommand, client: &Client, json: bool) -> Result<()> {
    match command {
        TimersCommand::Create(args) => create(&args, client, json).await,
        TimersCommand::Get(timer) => {
            let url = client.url(&["v1", "timers", &timer.id], &[]);
            let answer = client.send(Method::GET, url, None).await?;
            show_timer(&timer.id, answer, json)
        }
        TimersCommand::List(args) => list(&args, client, json).await,
        TimersCommand::Pause(timer) => act(client, &timer.id, "pause", json).await,
        TimersCommand::Resume(timer) => act(client, &timer.id, "resume", json).await,
        TimersCommand::Trigger(timer) => act(client, &timer.id, "trigger", json).await,
        TimersCommand::Delete(timer) => {
            let url = client.url(&["v1", "timers", &timer.id], &[]);
            let answer = client.send(Method::DELETE, url, None).await?;
            let deleted = found(&timer.id, answer.body)?;
            if json {
                print(&pretty(&deleted));
            } else {
                print(&format!("deleted timer {}\n", cell(&deleted["id"])));
            }
            Ok(())
        }
    }
}

/// Creates one timer (201, or 200 when the same definition was already there) or submits a
/// batch (202), which `--wait` follows to its end.
async fn create(args: &CreateArgs, client: &Client, json: bool) -> Result<()> {
    let definition = match &args.file {
        Some(path) => read_definition(path)?,
        None => definition_from_flags(args)?,
    };

    let url = client.url(&["v1", "timers"], &[]);
    let answer = client.send(Method::POST, url, Some(&definition)).await?;

    if answer.status == StatusCode::ACCEPTED {
        let operation = answer
            .body
            .context("the api accepted a batch without a body")?;
        let id = operation["id"]
            .as_str()
            .context("the accepted operation has no id")?
            .to_owned();
        if args.wait {
            return operations::wait(client, &id, DEFAULT_WAIT_TIMEOUT_SECS, json).await;
        }
        if json {
            print(&pretty(&operation));
        } else {
            print(&format!(
                "accepted as operation {id}; follow it with `clockworks operations wait {id}`\n"
            ));
        }
        return Ok(());
    }
    if answer.status == StatusCode::OK {
        eprintln!("the timer already existed with this definition; nothing was changed");
    }
    let id = definition["id"].as_str().unwrap_or_default().to_owned();
    show_timer(&id, answer, json)
}

/// The definition in a file (or standard input for `-`), which must be JSON.
fn read_definition(path: &Path) -> Result<Value> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the definition from standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The JSON definition the flags describe. Only what was given is sent, so the api's
/// defaults and its validation apply as they would to any client.
fn definition_from_flags(args: &CreateArgs) -> Result<Value> {
    let mut timer = Map::new();
    insert_some(&mut timer, "id", args.id.clone().map(Value::from));
    insert_some(&mut timer, "group", args.group.clone().map(Value::from));
    timer.insert("schedule".into(), schedule(&args.schedule));
    insert_some(
        &mut timer,
        "routing_key",
        args.routing_key.clone().map(Value::from),
    );

    if let Some(payload) = &args.payload {
        let payload: Value = serde_json::from_str(payload)
            .map_err(|err| anyhow!("--payload is not valid JSON: {err}"))?;
        timer.insert("payload".into(), payload);
    }
    if !args.headers.is_empty() {
        let mut headers = Map::new();
        for header in &args.headers {
            let (name, value) = header
                .split_once('=')
                .ok_or_else(|| anyhow!("--header {header:?} is not NAME=VALUE"))?;
            headers.insert(name.to_owned(), Value::from(value));
        }
        timer.insert("headers".into(), Value::Object(headers));
    }
    insert_some(
        &mut timer,
        "expire_after",
        args.expire_after.clone().map(Value::from),
    );
    Ok(Value::Object(timer))
}

fn schedule(args: &ScheduleArgs) -> Value {
    let mut schedule = Map::new();
    let kinds = [
        ("at", &args.at),
        ("after", &args.after),
        ("every", &args.every),
        ("cron", &args.cron),
    ];
    for (kind, value) in kinds {
        insert_some(&mut schedule, kind, value.clone().map(Value::from));
    }
    insert_some(
        &mut schedule,
        "timezone",
        args.timezone.clone().map(Value::from),
    );
    insert_some(
        &mut schedule,
        "start_at",
        args.start_at.clone().map(Value::from),
    );
    insert_some(
        &mut schedule,
        "end_at",
        args.end_at.clone().map(Value::from),
    );
    insert_some(&mut schedule, "max_fires", args.max_fires.map(Value::from));
    let options = [
        ("on_missed", &args.on_missed),
        ("dst_gap", &args.dst_gap),
        ("dst_overlap", &args.dst_overlap),
    ];
    for (option, value) in options {
        insert_some(&mut schedule, option, value.clone().map(Value::from));
    }
    Value::Object(schedule)
}

fn insert_some(object: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(name.to_owned(), value);
    }
}

/// `list`: one page, or every page with `--all`. Without `--all`, the cursor of the next
/// page goes to standard error, so the table on standard output stays clean.
async fn list(args: &ListArgs, client: &Client, json: bool) -> Result<()> {
    let mut timers = Vec::new();
    let mut cursor = args.cursor.clone();
    let next_cursor = loop {
        let mut query = Vec::new();
        query.extend(args.group.clone().map(|group| ("group", group)));
        query.extend(args.state.clone().map(|state| ("state", state)));
        query.extend(args.limit.map(|limit| ("limit", limit.to_string())));
        query.extend(cursor.take().map(|cursor| ("cursor", cursor)));
        let url = client.url(&["v1", "timers"], &query);

        let page = client
            .send(Method::GET, url, None)
            .await?
            .body
            .context("the api answered the list with an empty body")?;
        timers.extend(page["timers"].as_array().cloned().unwrap_or_default());
        let next = page["next_cursor"].as_str().map(str::to_owned);
        match next {
            Some(next) if args.all => cursor = Some(next),
            next => break next,
        }
    };

    if json {
        print(&pretty(
            &json!({ "timers": timers, "next_cursor": next_cursor }),
        ));
        return Ok(());
    }
    let mut table = Table::new(&["ID", "GROUP", "STATE", "NEXT FIRE", "FIRES", "SCHEDULE"]);
    for timer in &timers {
        table.push(vec![
            cell(&timer["id"]),
            cell(&timer["group"]),
            cell(&timer["state"]),
            cell(&timer["next_fire_at"]),
            cell(&timer["fire_count"]),
            schedule_text(&timer["schedule"]),
        ]);
    }
    print(&table.render());
    if let Some(next) = next_cursor {
        eprintln!("more timers follow: add --cursor {next} (or --all)");
    }
    Ok(())
}

/// `pause`, `resume` or `trigger`: the timer as it is afterwards.
async fn act(client: &Client, id: &str, action: &str, json: bool) -> Result<()> {
    let url = client.url(&["v1", "timers", id, action], &[]);
    let answer = client.send(Method::POST, url, None).await?;
    show_timer(id, answer, json)
}

fn show_timer(id: &str, answer: Answer, json: bool) -> Result<()> {
    let timer = found(id, answer.body)?;
    if json {
        print(&pretty(&timer));
    } else {
        print(&timer_fields(&timer));
    }
    Ok(())
}

/// The timer of an answer; an empty answer means the namespace has no such timer.
fn found(id: &str, body: Option<Value>) -> Result<Value> {
    match body {
        Some(timer) => Ok(timer),
        None => bail!("no timer {id:?} in this key's namespace"),
    }
}

fn timer_fields(timer: &Value) -> String {
    let mut pairs = vec![
        ("id", cell(&timer["id"])),
        ("group", cell(&timer["group"])),
        ("state", cell(&timer["state"])),
        ("schedule", schedule_text(&timer["schedule"])),
        ("routing_key", cell(&timer["routing_key"])),
        ("next_fire_at", cell(&timer["next_fire_at"])),
        ("fire_count", cell(&timer["fire_count"])),
        ("last_fired_at", cell(&timer["last_fired_at"])),
        ("payload", cell(&timer["payload"])),
        ("headers", cell(&timer["headers"])),
        ("expire_after", cell(&timer["expire_after"])),
    ];
    for optional in ["triggered_at", "failure_reason"] {
        if !timer[optional].is_null() {
            pairs.push((optional, cell(&timer[optional])));
        }
    }
    pairs.extend([
        ("created_at", cell(&timer["created_at"])),
        ("updated_at", cell(&timer["updated_at"])),
        ("version", cell(&timer["version"])),
    ]);
    fields(&pairs)
}

/// A schedule in one cell: its kind and value first (`every 5m`), then its options.
fn schedule_text(schedule: &Value) -> String {
    let Some(object) = schedule.as_object() else {
        return cell(schedule);
    };
    let kind = ["at", "after", "every", "cron"]
        .into_iter()
        .find(|kind| object.contains_key(*kind));
    let mut words: Vec<String> = kind
        .map(|kind| format!("{kind} {}", cell(&object[kind])))
        .into_iter()
        .collect();
    let mut options: Vec<String> = object
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != kind)
        .map(|(name, value)| format!("{name}={}", cell(value)))
        .collect();
    options.sort();
    words.extend(options);
    words.join(" ")
}

/// JSON for `--json`: indented, with a final line break.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_reads_kind_first_then_its_options() {
        let schedule = json!({"cron": "0 9 * * *", "timezone": "Europe/Paris", "max_fires": 3});
        assert_eq!(
            schedule_text(&schedule),
            "cron 0 9 * * * max_fires=3 timezone=Europe/Paris"
        );
    }

    #[test]
    fn every_definition_flag_reaches_the_timer_sent() {
        use clap::Parser;

        let cli = crate::cli::Cli::try_parse_from([
            "clockworks",
            "timers",
            "create",
            "--id",
            "nightly",
            "--routing-key",
            "reports.nightly",
            "--cron",
            "30 2 * * *",
            "--timezone",
            "America/New_York",
            "--dst-gap",
            "skip",
            "--dst-overlap",
            "both",
            "--on-missed",
            "skip",
            "--expire-after",
            "1h",
            "--header",
            "trace=abc",
        ])
        .unwrap();
        let crate::cli::Command::Timers(TimersCommand::Create(args)) = cli.command else {
            panic!("expected timers create");
        };

        assert_eq!(
            definition_from_flags(&args).unwrap(),
            json!({
                "id": "nightly",
                "routing_key": "reports.nightly",
                "schedule": {
                    "cron": "30 2 * * *",
                    "timezone": "America/New_York",
                    "dst_gap": "skip",
                    "dst_overlap": "both",
                    "on_missed": "skip",
                },
                "headers": {"trace": "abc"},
                "expire_after": "1h",
            })
        );
    }
}
