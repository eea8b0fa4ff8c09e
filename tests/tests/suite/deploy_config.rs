//! The deployment files checked against each other and against the binaries they configure.
//! Every YAML and JSON file in `deploy/` and `docker-compose.yml` parses; the ports of probes,
//! Services, scrape targets and health checks are the ports the binaries listen on; every
//! environment variable a deployment sets is one its binary reads (as its `--help` lists
//! them); every metric an alert or a dashboard uses is exported by a running api or worker;
//! and the configuration table of `docs/operations.md` is what the binaries' `--help` says.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clockworks_tests::Stack;
use clockworks_tests::process::binary;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

/// Generous bound for a timer to fire and for every metric to appear on a busy machine.
const METRICS_LIMIT: Duration = Duration::from_secs(90);
/// Histograms are exported as these series; a dashboard may name any of them.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];
/// Labels that Prometheus adds to every scraped series, or that histograms carry.
const IMPLICIT_LABELS: [&str; 3] = ["instance", "job", "le"];
/// The port Prometheus listens on inside its container.
const PROMETHEUS_PORT: u16 = 9090;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// Every file under `dir`, in a stable order.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every document of a YAML file, with aliases resolved and `<<` merge keys applied, as JSON.
fn yaml_documents(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut value = serde_yaml_ng::Value::deserialize(document)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        value.apply_merge()?;
        documents.push(serde_json::to_value(&value)?);
    }
    Ok(documents)
}

fn yaml(relative: &str) -> Result<Value> {
    let mut documents = yaml_documents(&root().join(relative))?;
    ensure!(documents.len() == 1, "{relative} holds one document");
    Ok(documents.remove(0))
}

/// The Kubernetes object of `kind` named `name` in deploy/kubernetes.
fn kubernetes(kind: &str, name: &str) -> Result<Value> {
    for path in files_under(&root().join("deploy/kubernetes"))? {
        for object in yaml_documents(&path)? {
            if object["kind"] == kind && object["metadata"]["name"] == name {
                return Ok(object);
            }
        }
    }
    bail!("no {kind} {name} in deploy/kubernetes")
}

/// The settings of a command as its `--help` lists them: each environment variable, with its
/// default when it has one. The environment is cleared so no value shows through.
fn settings(name: &str, args: &[&str]) -> Result<BTreeMap<String, Option<String>>> {
    let output = std::process::Command::new(binary(name))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()?;
    ensure!(output.status.success(), "{name} {args:?} --help failed");
    Ok(parse_help(&String::from_utf8(output.stdout)?))
}

fn parse_help(help: &str) -> BTreeMap<String, Option<String>> {
    let mut settings = BTreeMap::new();
    let mut current = None;
    for line in help.lines().map(str::trim) {
        if line.starts_with('-') {
            current = None;
        }
        if let Some(env) = bracketed(line, "[env: ") {
            let name = env.split('=').next().unwrap_or_default().to_owned();
            settings.insert(name.clone(), None);
            current = Some(name);
        }
        if let (Some(default), Some(name)) = (bracketed(line, "[default: "), &current) {
            settings.insert(name.clone(), Some(default.to_owned()));
        }
    }
    settings
}

fn bracketed<'a>(line: &'a str, opening: &str) -> Option<&'a str> {
    let start = line.find(opening)? + opening.len();
    let end = start + line[start..].find(']')?;
    Some(&line[start..end])
}

fn port_of_address(address: &str) -> Result<u16> {
    let address: SocketAddr = address
        .parse()
        .with_context(|| format!("{address:?} is not an address"))?;
    Ok(address.port())
}

fn port_of_url(url: &str) -> Result<u16> {
    Url::parse(url)?
        .port_or_known_default()
        .with_context(|| format!("{url} has no port"))
}

fn text(value: &Value) -> Result<&str> {
    value
        .as_str()
        .with_context(|| format!("{value} is not a string"))
}

/// The ports a deployment's processes listen on: each setting's value where the deployment
/// sets it, the binary's default otherwise.
struct ListenPorts {
    api: u16,
    api_admin: u16,
    worker_admin: u16,
}

impl ListenPorts {
    fn from(set: &Value) -> Result<ListenPorts> {
        let api = settings("clockworks-api", &["serve"])?;
        let worker = settings("clockworks-worker", &["run"])?;
        let port = |defaults: &BTreeMap<String, Option<String>>, name: &str| -> Result<u16> {
            match set[name].as_str() {
                Some(value) => port_of_address(value),
                None => port_of_address(
                    defaults[name]
                        .as_deref()
                        .with_context(|| format!("{name} has no default"))?,
                ),
            }
        };
        Ok(ListenPorts {
            api: port(&api, "CLOCKWORKS_API_LISTEN")?,
            api_admin: port(&api, "CLOCKWORKS_API_ADMIN_LISTEN")?,
            worker_admin: port(&worker, "CLOCKWORKS_WORKER_ADMIN_LISTEN")?,
        })
    }
}

#[test]
fn every_yaml_and_json_file_of_the_deployment_parses() -> Result<()> {
    let mut files = files_under(&root().join("deploy"))?;
    files.push(root().join("docker-compose.yml"));

    let mut parsed = 0;
    for path in files {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("yml" | "yaml") => {
                let documents = yaml_documents(&path)?;
                ensure!(!documents.is_empty(), "{} is empty", path.display());
            }
            Some("json") => {
                serde_json::from_str::<Value>(&std::fs::read_to_string(&path)?)
                    .with_context(|| format!("{} is not valid JSON", path.display()))?;
            }
            _ => continue,
        }
        parsed += 1;
    }
    assert!(parsed >= 10, "only {parsed} files parsed");
    Ok(())
}

/// The container ports of a pod template's first container, by name.
fn container_ports(container: &Value) -> BTreeMap<String, u16> {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|port| {
            Some((
                port["name"].as_str()?.to_owned(),
                port["containerPort"].as_u64()?,
            ))
        })
        .map(|(name, port)| (name, port as u16))
        .collect()
}

/// A probe's or Service's port, which is a number or the name of a container port.
fn resolve_port(port: &Value, named: &BTreeMap<String, u16>) -> Result<u16> {
    match port {
        Value::Number(number) => Ok(number.as_u64().context("a port number")? as u16),
        Value::String(name) => named
            .get(name)
            .copied()
            .with_context(|| format!("no container port named {name}")),
        other => bail!("{other} is not a port"),
    }
}

/// Checks a Deployment's pod: its container ports, probes and scrape annotations.
fn check_pod(deployment: &Value, serves: &[(&str, u16)], admin: u16) -> Result<()> {
    let name = text(&deployment["metadata"]["name"])?;
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let ports = container_ports(container);

    for (port_name, port) in serves {
        assert_eq!(
            ports.get(*port_name),
            Some(port),
            "{name}: container port {port_name}"
        );
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        let port = resolve_port(&get["port"], &ports)?;
        assert!(
            serves.iter().any(|(_, served)| *served == port),
            "{name}: {probe} targets port {port}, which the process does not listen on"
        );
        let path = text(&get["path"])?;
        assert!(
            ["/healthz", "/readyz"].contains(&path),
            "{name}: {probe} path {path}"
        );
    }
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"], "/readyz",
        "{name}"
    );

    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"],
        admin.to_string(),
        "{name}"
    );
    assert_eq!(annotations["prometheus.io/path"], "/metrics", "{name}");
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        pod["metadata"]["labels"]["app.kubernetes.io/name"],
        "{name}: the selector matches the pods"
    );
    Ok(())
}

#[test]
fn kubernetes_probes_services_and_scrape_annotations_use_the_listen_ports() -> Result<()> {
    let config = kubernetes("ConfigMap", "clockworks")?;
    let ports = ListenPorts::from(&config["data"])?;
    let defaults = ListenPorts::from(&json!({}))?;
    assert_eq!(
        (ports.api, ports.api_admin, ports.worker_admin),
        (defaults.api, defaults.api_admin, defaults.worker_admin),
        "the ConfigMap's listen ports are the binaries' defaults"
    );

    let api = kubernetes("Deployment", "clockworks-api")?;
    check_pod(
        &api,
        &[("http", ports.api), ("admin", ports.api_admin)],
        ports.api_admin,
    )?;
    let worker = kubernetes("Deployment", "clockworks-worker")?;
    check_pod(
        &worker,
        &[("admin", ports.worker_admin)],
        ports.worker_admin,
    )?;

    let service = kubernetes("Service", "clockworks-api")?;
    let pod_ports = container_ports(&api["spec"]["template"]["spec"]["containers"][0]);
    for port in service["spec"]["ports"]
        .as_array()
        .context("Service ports")?
    {
        resolve_port(&port["targetPort"], &pod_ports)?;
    }
    assert_eq!(
        service["spec"]["selector"]["app.kubernetes.io/name"],
        api["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    );

    let autoscaler = kubernetes("HorizontalPodAutoscaler", "clockworks-worker")?;
    assert_eq!(
        autoscaler["spec"]["scaleTargetRef"]["name"],
        "clockworks-worker"
    );
    Ok(())
}

/// The binary and command a container or compose service runs: the image or build argument
/// names the binary, the first argument its command.
fn program(image_or_binary: &str, args: &Value) -> Result<(String, String)> {
    // `registry.example:5000/clockworks-api:1.2` runs clockworks-api.
    let image = image_or_binary.rsplit('/').next().unwrap_or_default();
    let binary = image.split(':').next().unwrap_or_default().to_owned();
    ensure!(
        ["clockworks-api", "clockworks-worker"].contains(&binary.as_str()),
        "{image_or_binary} is not a clockworks binary"
    );
    let command = text(&args[0])?.to_owned();
    Ok((binary, command))
}

#[test]
fn every_environment_variable_a_deployment_sets_is_one_its_binary_reads() -> Result<()> {
    // Kubernetes: the ConfigMap and Secret go to every container that names them, so each
    // variable must be read by at least one of those containers' commands.
    let mut readers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (kind, name) in [
        ("Deployment", "clockworks-api"),
        ("Deployment", "clockworks-worker"),
        ("Job", "clockworks-migrate"),
    ] {
        let object = kubernetes(kind, name)?;
        let container = &object["spec"]["template"]["spec"]["containers"][0];
        let (binary, command) = program(text(&container["image"])?, &container["args"])?;
        let accepted = settings(&binary, &[&command])?;
        for source in container["envFrom"].as_array().context("envFrom")? {
            let source = source["configMapRef"]["name"]
                .as_str()
                .map(|name| format!("ConfigMap {name}"))
                .or_else(|| Some(format!("Secret {}", source["secretRef"]["name"].as_str()?)))
                .context("an envFrom names a ConfigMap or a Secret")?;
            readers
                .entry(source)
                .or_default()
                .extend(accepted.keys().cloned());
        }
    }
    for (kind, field) in [("ConfigMap", "data"), ("Secret", "stringData")] {
        let object = kubernetes(kind, "clockworks")?;
        let accepted = &readers[&format!("{kind} clockworks")];
        for variable in object[field].as_object().context("variables")?.keys() {
            assert!(
                accepted.contains(variable),
                "{kind}: nothing reads {variable}"
            );
        }
    }

    // docker-compose: each clockworks service gets only what its own command reads.
    let compose = yaml("docker-compose.yml")?;
    let mut checked = 0;
    for (service, definition) in compose["services"].as_object().context("services")? {
        let Some(built) = definition["build"]["args"]["BINARY"].as_str() else {
            continue;
        };
        let (binary, command) = program(built, &definition["command"])?;
        let accepted = settings(&binary, &[&command])?;
        for variable in definition["environment"]
            .as_object()
            .context("environment")?
            .keys()
        {
            assert!(
                accepted.contains_key(variable),
                "docker-compose {service}: `{binary} {command}` does not read {variable}"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} clockworks services in docker-compose.yml"
    );
    Ok(())
}

#[test]
fn compose_health_checks_scrape_targets_and_grafana_use_the_listen_ports() -> Result<()> {
    let compose = yaml("docker-compose.yml")?;
    let services = compose["services"].as_object().context("services")?;

    // Each clockworks service's ports: what it listens on, which its health check and
    // published ports must use.
    let mut admin_ports = BTreeMap::new();
    for (service, definition) in services {
        let Some(built) = definition["build"]["args"]["BINARY"].as_str() else {
            continue;
        };
        let ports = ListenPorts::from(&definition["environment"])?;
        let (serving, admin) = match program(built, &definition["command"])? {
            (_, command) if command == "migrate" => continue,
            (binary, _) if binary == "clockworks-api" => {
                (vec![ports.api, ports.api_admin], ports.api_admin)
            }
            _ => (vec![ports.worker_admin], ports.worker_admin),
        };
        admin_ports.insert(service.clone(), admin);

        let check = &definition["healthcheck"]["test"];
        let url = text(&check[check.as_array().map_or(0, Vec::len).saturating_sub(1)])?;
        assert!(
            serving.contains(&port_of_url(url)?),
            "{service}: health check {url}"
        );
        assert!(url.ends_with("/readyz"), "{service}: health check {url}");
        for published in definition["ports"].as_array().into_iter().flatten() {
            let container_port: u16 = text(published)?
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .parse()?;
            assert!(
                serving.contains(&container_port),
                "{service}: publishes {published}"
            );
        }
    }

    let prometheus = yaml("deploy/prometheus/prometheus.yml")?;
    let mut targets = 0;
    for job in prometheus["scrape_configs"]
        .as_array()
        .context("scrape_configs")?
    {
        assert_eq!(job["metrics_path"], "/metrics");
        for config in job["static_configs"].as_array().context("static_configs")? {
            for target in config["targets"].as_array().context("targets")? {
                let (host, port) = text(target)?.rsplit_once(':').context("host:port")?;
                assert_eq!(
                    admin_ports.get(host),
                    Some(&port.parse()?),
                    "scrape target {target} is not a clockworks admin port"
                );
                targets += 1;
            }
        }
    }
    assert_eq!(
        targets,
        admin_ports.len(),
        "every api and worker is scraped"
    );

    // Files that one container reads are mounted where the other expects them.
    let mounts = |service: &str| -> Vec<String> {
        services[service]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|volume| volume.as_str()?.split(':').nth(1).map(str::to_owned))
            .collect()
    };
    for rules in prometheus["rule_files"].as_array().context("rule_files")? {
        assert!(
            mounts("prometheus").contains(&text(rules)?.to_owned()),
            "{rules}"
        );
    }
    let providers = yaml("deploy/grafana/provisioning/dashboards/clockworks.yml")?;
    let dashboards = text(&providers["providers"][0]["options"]["path"])?;
    assert!(
        mounts("grafana").contains(&dashboards.to_owned()),
        "{dashboards}"
    );

    let sources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml")?;
    let source = &sources["datasources"][0];
    let url = Url::parse(text(&source["url"])?)?;
    assert_eq!(url.host_str(), Some("prometheus"));
    assert_eq!(url.port_or_known_default(), Some(PROMETHEUS_PORT));
    assert!(services.contains_key("prometheus"));
    for dashboard in dashboard_files()? {
        for panel in dashboard["panels"].as_array().context("panels")? {
            assert_eq!(
                panel["datasource"]["uid"], source["uid"],
                "{}",
                panel["title"]
            );
        }
    }
    Ok(())
}

fn dashboard_files() -> Result<Vec<Value>> {
    files_under(&root().join("deploy/grafana/dashboards"))?
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|path| Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?))
        .collect()
}

/// Every PromQL expression of the alert rules and the dashboards, with where it comes from.
fn expressions() -> Result<Vec<(String, String)>> {
    let mut expressions = Vec::new();
    let alerts = yaml("deploy/prometheus/alerts.yml")?;
    for group in alerts["groups"].as_array().context("groups")? {
        for rule in group["rules"].as_array().context("rules")? {
            let name = text(&rule["alert"])?.to_owned();
            expressions.push((name, text(&rule["expr"])?.to_owned()));
        }
    }
    for dashboard in dashboard_files()? {
        for panel in dashboard["panels"].as_array().context("panels")? {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let name = format!("panel {}", panel["title"]);
                expressions.push((name, text(&target["expr"])?.to_owned()));
            }
        }
    }
    Ok(expressions)
}

/// The clockworks metric names in a PromQL expression, and the labels it groups or filters
/// by.
fn metrics_and_labels(expression: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut metrics = BTreeSet::new();
    let mut rest = expression;
    while let Some(start) = rest.find("clockworks_") {
        let name: String = rest[start..].chars().take_while(|c| is_name(*c)).collect();
        rest = &rest[start + name.len()..];
        metrics.insert(name);
    }

    let mut labels = BTreeSet::new();
    for (opening, closing) in [("by (", ')'), ("{", '}')] {
        let mut rest = expression;
        while let Some(start) = rest.find(opening) {
            rest = &rest[start + opening.len()..];
            let inside = &rest[..rest.find(closing).unwrap_or(rest.len())];
            for matcher in inside.split(',') {
                let label: String = matcher.trim().chars().take_while(|c| is_name(*c)).collect();
                if !label.is_empty() {
                    labels.insert(label);
                }
            }
        }
    }
    (metrics, labels)
}

/// The series of a Prometheus text exposition: each metric name with its label names.
fn exported(exposition: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in exposition.lines().filter(|line| !line.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = into.entry(line[..end].to_owned()).or_default();
        if let Some(inside) = line[end..]
            .strip_prefix('{')
            .and_then(|rest| rest.split_once('}'))
        {
            for pair in inside.0.split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.to_owned());
                }
            }
        }
    }
}

/// What is wrong with `expression` given the exported series: unknown metrics, or labels
/// its one metric does not carry.
fn problems(
    source: &str,
    expression: &str,
    series: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let (metrics, labels) = metrics_and_labels(expression);
    let mut problems = Vec::new();
    for metric in &metrics {
        let names: Vec<String> = std::iter::once(metric.clone())
            .chain(
                HISTOGRAM_SUFFIXES
                    .iter()
                    .map(|suffix| format!("{metric}{suffix}")),
            )
            .collect();
        let carried: BTreeSet<&String> = names
            .iter()
            .filter_map(|name| series.get(name))
            .flatten()
            .collect();
        if !names.iter().any(|name| series.contains_key(name)) {
            problems.push(format!("{source}: {metric} is not exported"));
        } else if metrics.len() == 1 {
            for label in &labels {
                if !carried.contains(label) && !IMPLICIT_LABELS.contains(&label.as_str()) {
                    problems.push(format!("{source}: {metric} has no label {label}"));
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_metric_of_the_alerts_and_dashboards_is_exported_by_the_binaries() -> Result<()> {
    let expressions = expressions()?;
    assert!(expressions.len() >= 10, "{expressions:?}");
    let stack = Stack::start(1).await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;

    // One fire, so that the fire counters and histograms have a series.
    let timer = json!({"id": "metrics-1", "schedule": {"after": "0s"}, "routing_key": "m"});
    let created = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(&key)
        .json(&timer)
        .send()
        .await?;
    ensure!(
        created.status() == 201,
        "creating the timer: {}",
        created.status()
    );

    let deadline = tokio::time::Instant::now() + METRICS_LIMIT;
    let mut remaining = loop {
        let mut series = BTreeMap::new();
        let admin_urls = std::iter::once(&stack.api().admin_url)
            .chain(stack.workers.iter().map(|worker| &worker.admin_url));
        for admin_url in admin_urls {
            let exposition = stack
                .http
                .get(format!("{admin_url}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            exported(&exposition, &mut series);
        }
        let remaining: Vec<String> = expressions
            .iter()
            .flat_map(|(source, expression)| problems(source, expression, &series))
            .collect();
        if remaining.is_empty() || tokio::time::Instant::now() > deadline {
            break remaining;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    remaining.dedup();
    assert!(remaining.is_empty(), "{remaining:#?}");

    stack.shutdown().await
}

/// The rows of the first Markdown table whose header starts with `Variable`: each variable
/// with its default cell.
fn configuration_table(markdown: &str) -> Result<BTreeMap<String, String>> {
    let mut rows = BTreeMap::new();
    let mut default_column = None;
    for line in markdown.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        match default_column {
            None if cells.first() == Some(&"Variable") => {
                default_column = cells.iter().position(|cell| *cell == "Default");
            }
            None => {}
            Some(_) if !line.starts_with('|') => break,
            Some(column) => {
                let Some(variable) = cells[0].strip_prefix('`').and_then(|v| v.strip_suffix('`'))
                else {
                    continue;
                };
                rows.insert(
                    variable.to_owned(),
                    cells.get(column).unwrap_or(&"").to_string(),
                );
            }
        }
    }
    ensure!(!rows.is_empty(), "no `| Variable | ... | Default |` table");
    Ok(rows)
}

#[test]
fn the_configuration_table_of_operations_md_is_what_the_binaries_accept() -> Result<()> {
    let markdown = std::fs::read_to_string(root().join("docs/operations.md"))?;
    let table = configuration_table(&markdown)?;

    let mut accepted = BTreeMap::new();
    for (name, args) in [
        ("clockworks-api", &["serve"][..]),
        ("clockworks-worker", &["run"][..]),
        ("clockworks", &["timers"][..]),
    ] {
        for (variable, default) in settings(name, args)? {
            if let Some(earlier) = accepted.insert(variable.clone(), default.clone()) {
                assert_eq!(earlier, default, "{variable} has two defaults");
            }
        }
    }

    let documented: BTreeSet<&String> = table.keys().collect();
    let read: BTreeSet<&String> = accepted.keys().collect();
    assert_eq!(
        documented, read,
        "the table lists exactly the variables the binaries read"
    );
    for (variable, default) in &accepted {
        let cell = &table[variable];
        match default {
            Some(default) => assert!(
                cell.starts_with(&format!("`{default}`")),
                "{variable}: the table says {cell}, --help says {default}"
            ),
            None => assert!(
                !cell.contains('`'),
                "{variable} has no default, the table says {cell}"
            ),
        }
    }
    Ok(())
}

#[test]
fn help_settings_are_read_with_their_defaults() {
    let help = "      --listen <LISTEN>\n          Address\n\n          [env: A_LISTEN]\n\
                \x20         [default: 0.0.0.0:8080]\n\n      --flag\n          [env: A_FLAG]\n";
    let settings = parse_help(help);
    assert_eq!(settings["A_LISTEN"].as_deref(), Some("0.0.0.0:8080"));
    assert_eq!(settings["A_FLAG"], None);
}

#[test]
fn metric_names_and_labels_are_found_in_an_expression() {
    let (metrics, labels) = metrics_and_labels(
        r#"sum by (le, route) (rate(clockworks_x_bucket{status=~"5.."}[1m])) / clockworks_y"#,
    );
    assert_eq!(
        metrics,
        BTreeSet::from(["clockworks_x_bucket".into(), "clockworks_y".into()])
    );
    assert_eq!(
        labels,
        BTreeSet::from(["le".into(), "route".into(), "status".into()])
    );
}

#[test]
fn an_unknown_metric_or_a_label_it_lacks_is_reported_and_histogram_series_are_known() {
    let mut series = BTreeMap::new();
    exported(
        "# TYPE clockworks_fires_total counter\nclockworks_fires_total{outcome=\"delivered\"} 1\n\
         clockworks_lateness_seconds_bucket{le=\"0.1\"} 1\nclockworks_lateness_seconds_sum 0.01\n",
        &mut series,
    );

    assert!(
        problems(
            "a",
            "sum by (outcome) (rate(clockworks_fires_total[1m]))",
            &series
        )
        .is_empty()
    );
    let quantile = "histogram_quantile(0.99, rate(clockworks_lateness_seconds_bucket[5m]))";
    assert!(problems("b", quantile, &series).is_empty());
    assert_eq!(
        problems("c", "sum by (route) (clockworks_fires_total)", &series),
        ["c: clockworks_fires_total has no label route"]
    );
    assert_eq!(
        problems("d", "max(clockworks_missing)", &series),
        ["d: clockworks_missing is not exported"]
    );
}
