//! `render.yaml` against the binary: every service runs a real subcommand, and passes the
//! binary's own configuration check (`audiolab <tier> --check-config`) in the environment the
//! blueprint gives it — Render's generated values as placeholders, the dashboard's as an
//! operator would type them — so the blueprint and the code cannot drift apart; and every
//! tier can run several instances.

use audiolab::cli::Cli;
use clap::Parser;
use serde_yaml::Value;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_audiolab");

fn blueprint() -> Value {
    serde_yaml::from_str(include_str!("../render.yaml")).expect("render.yaml parses")
}

fn services(blueprint: &Value) -> Vec<&Value> {
    blueprint["services"].as_sequence().expect("services").iter().collect()
}

fn service<'a>(blueprint: &'a Value, name: &str) -> &'a Value {
    services(blueprint).into_iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no service {name}"))
}

/// The audiolab services (every service but the Key Value instance).
fn tiers(blueprint: &Value) -> Vec<&Value> {
    services(blueprint).into_iter().filter(|s| s["type"] != "keyvalue").collect()
}

/// Parses a `./target/release/audiolab …` command line with the real CLI.
fn parse_command(line: &str) -> Cli {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words[0].ends_with("/audiolab"), "{line} does not run the audiolab binary");
    Cli::try_parse_from(&words).unwrap_or_else(|err| panic!("{line}: {err}"))
}

/// What an operator types in the dashboard for a `sync: false` variable.
fn operator_value(key: &str) -> &'static str {
    match key {
        "AUDIOLAB_STORAGE_URL" => "s3://audiolab-audio/production",
        "AWS_ENDPOINT_URL" => "https://objects.example.com",
        "AWS_REGION" => "auto",
        "AWS_ACCESS_KEY_ID" => "EXAMPLEKEYID",
        "AWS_SECRET_ACCESS_KEY" => "example-secret-access-key",
        other => panic!("{other} is set in the dashboard: give this test the value an operator would type"),
    }
}

/// The value Render gives `property` of the database or service `name`.
fn generated(kind: &str, name: &str, property: &str) -> String {
    match (kind, property) {
        ("database", "connectionString") => format!("postgresql://audiolab:generated@{name}-a/audiolab"),
        ("keyvalue", "connectionString") => format!("redis://{name}:6379"),
        (_, "host") => name.to_owned(),
        (_, "port") => "7000".to_owned(),
        (_, "hostport") => format!("{name}:7000"),
        (kind, property) => panic!("a {kind}'s {property}: give this test the value Render generates"),
    }
}

/// The environment a service's instances get: Render's own variables, then the blueprint's
/// (groups expanded). Panics on a reference to something the blueprint does not define.
fn environment(blueprint: &Value, service: &Value) -> Vec<(String, String)> {
    let name = service["name"].as_str().unwrap();
    let mut env = vec![
        ("RENDER".to_owned(), "true".to_owned()),
        ("RENDER_SERVICE_NAME".to_owned(), name.to_owned()),
        ("RENDER_INSTANCE_ID".to_owned(), format!("{name}-5d8f7c9b4-x2x7q")),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
    ];
    if service["type"] == "web" {
        env.push(("PORT".to_owned(), "10000".to_owned()));
    }
    add_variables(blueprint, service["envVars"].as_sequence().expect("envVars"), &mut env);
    env
}

fn add_variables(blueprint: &Value, variables: &[Value], env: &mut Vec<(String, String)>) {
    for variable in variables {
        if let Some(group) = variable["fromGroup"].as_str() {
            let groups = blueprint["envVarGroups"].as_sequence().unwrap();
            let group = groups.iter().find(|g| g["name"] == group).unwrap_or_else(|| panic!("no group {group}"));
            add_variables(blueprint, group["envVars"].as_sequence().unwrap(), env);
            continue;
        }
        let key = variable["key"].as_str().expect("a key").to_owned();
        let value = if let Some(value) = variable.get("value") {
            match value {
                Value::String(text) => text.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            }
        } else if let Some(from) = variable.get("fromDatabase") {
            let name = from["name"].as_str().unwrap();
            let databases = blueprint["databases"].as_sequence().unwrap();
            assert!(databases.iter().any(|d| d["name"] == name), "{key}: no database {name}");
            generated("database", name, from["property"].as_str().unwrap())
        } else if let Some(from) = variable.get("fromService") {
            let (kind, name) = (from["type"].as_str().unwrap(), from["name"].as_str().unwrap());
            let target = services(blueprint).into_iter().find(|s| s["name"] == name);
            assert_eq!(target.map(|s| &s["type"]), Some(&from["type"]), "{key}: no {kind} service {name}");
            generated(kind, name, from["property"].as_str().unwrap())
        } else if variable["generateValue"] == true {
            "generated-8c1f0e7a2b9d4c6e5f3a1b0c9d8e7f6a".to_owned()
        } else if variable["sync"] == false {
            operator_value(&key).to_owned()
        } else {
            panic!("{key}: no value, reference, generated value or dashboard entry");
        };
        env.push((key, value));
    }
}

/// Runs `line` (a blueprint command) with `--check-config` in exactly `env`.
fn check(line: &str, env: &[(String, String)]) -> Output {
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    Command::new(BINARY)
        .args(words)
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn every_tier_passes_the_binarys_configuration_check_in_the_blueprints_environment() {
    let blueprint = blueprint();
    let mut roles = Vec::new();
    for service in tiers(&blueprint) {
        let name = service["name"].as_str().unwrap();
        assert_eq!(service["buildCommand"], "cargo build --release --locked", "{name}");
        let env = environment(&blueprint, service);
        let start = service["startCommand"].as_str().unwrap();
        roles.push(format!("{:?}", parse_command(start).command()));
        let output = check(start, &env);
        assert!(output.status.success(), "{name}: {}", text(&output));
        assert!(text(&output).contains("the configuration is complete"), "{name}: {}", text(&output));
        if let Some(pre) = service["preDeployCommand"].as_str() {
            assert_eq!(format!("{:?}", parse_command(pre).command()), "Migrate", "{name}");
            let output = check(pre, &env);
            assert!(output.status.success(), "{name} before deploy: {}", text(&output));
        }
    }
    roles.sort();
    assert_eq!(roles, ["Api", "Node", "Worker"]);
}

#[test]
fn the_check_fails_when_the_blueprint_and_the_binary_disagree() {
    let blueprint = blueprint();
    let api = service(&blueprint, "audiolab-api");
    let start = api["startCommand"].as_str().unwrap();
    let env = environment(&blueprint, api);
    let without = |key: &str| -> Vec<(String, String)> { env.iter().filter(|(k, _)| k != key).cloned().collect() };

    // A secret the api requires with auth on, missing.
    let output = check(start, &without("AUDIOLAB_INTERNAL_SECRET"));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("internal_secret: must be set"), "{}", text(&output));

    // A variable renamed on one side only: ignored by the settings, caught by the check.
    let mut renamed = without("AUDIOLAB_INTERNAL_SECRET");
    renamed.push(("AUDIOLAB_INTERNAL_SECRT".into(), "generated-8c1f0e7a2b9d4c6e5f3a1b0c9d8e7f6a".into()));
    let output = check(start, &renamed);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("AUDIOLAB_INTERNAL_SECRT is not a setting"), "{}", text(&output));
    assert!(text(&output).contains("did you mean AUDIOLAB_INTERNAL_SECRET?"), "{}", text(&output));

    // The tiers share jobs through Key Value and audio through the bucket.
    for (key, setting) in [("REDIS_URL", "redis_url"), ("AUDIOLAB_STORAGE_URL", "storage_url")] {
        let output = check(start, &without(key));
        assert_eq!(output.status.code(), Some(2), "{key}: {}", text(&output));
        assert!(text(&output).contains(&format!("{setting}: ")), "{key}: {}", text(&output));
    }
    // Bound to the loopback, no load balancer reaches it; a bucket without keys fails at run time.
    let output = check("./target/release/audiolab api", &env);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("host: bound to a loopback address"), "{}", text(&output));
    let output = check(start, &without("AWS_SECRET_ACCESS_KEY"));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("the bucket needs credentials"), "{}", text(&output));
    // A value the settings cannot read names its setting too.
    let mut bad = env.clone();
    bad.push(("AUDIOLAB_MAX_ENGINES".into(), "many".into()));
    let output = check(start, &bad);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).to_lowercase().contains("max_engines"), "{}", text(&output));
    // Nothing leaks: the database password is never printed.
    let output = check(start, &env);
    assert!(!text(&output).contains(":generated@"), "{}", text(&output));
}

#[test]
fn every_tier_runs_several_instances_and_no_node_keeps_a_disk() {
    let blueprint = blueprint();
    let instances = |service: &Value| -> u64 {
        match (&service["scaling"], service["numInstances"].as_u64()) {
            (Value::Mapping(scaling), None) => {
                let (min, max) = (scaling["minInstances"].as_u64().unwrap(), scaling["maxInstances"].as_u64().unwrap());
                assert!(min >= 1 && max > min, "{:?}: {min}..{max}", service["name"]);
                let targets = ["targetCPUPercent", "targetMemoryPercent"];
                assert!(targets.iter().any(|t| scaling.contains_key(*t)), "{:?} scales on nothing", service["name"]);
                max
            }
            (Value::Null, Some(count)) => count,
            _ => panic!("{:?}: scaling or numInstances, one of them", service["name"]),
        }
    };
    for service in tiers(&blueprint) {
        assert!(instances(service) >= 2, "{:?} cannot run a second instance", service["name"]);
        // Render runs a service with a disk as one instance at most.
        assert!(service.get("disk").is_none(), "{:?} has a disk", service["name"]);
    }
    let api = service(&blueprint, "audiolab-api");
    assert_eq!(api["healthCheckPath"], "/health");
    assert!(api["scaling"].is_mapping(), "the api autoscales");
    assert!(service(&blueprint, "audiolab-worker")["scaling"].is_mapping(), "the workers autoscale");
    // The node listens on a port of its own on the private network (Render keeps 10000 for
    // web services' public traffic).
    let node = parse_command(service(&blueprint, "audiolab-node")["startCommand"].as_str().unwrap());
    assert!(node.port.is_some_and(|port| port != 10_000), "{:?}", node.port);
    assert!(node.host.is_some_and(|host| host.is_unspecified()), "reachable from the api instances");
}

#[test]
fn the_queue_is_a_private_key_value_instance_that_never_evicts() {
    let blueprint = blueprint();
    let stores: Vec<&Value> = services(&blueprint).into_iter().filter(|s| s["type"] == "keyvalue").collect();
    assert_eq!(stores.len(), 1);
    assert_eq!(stores[0]["maxmemoryPolicy"], "noeviction", "a job queue must not lose keys");
    assert_eq!(stores[0]["ipAllowList"], Value::Sequence(vec![]), "reached on the private network only");
    assert!(services(&blueprint).iter().all(|s| s["type"] != "redis"), "`redis` is Render's former type");
    assert_eq!(blueprint["databases"].as_sequence().unwrap().len(), 1);
}

#[test]
fn the_api_and_the_nodes_share_one_generated_internal_secret_and_every_tier_the_bucket() {
    let blueprint = blueprint();
    for service in tiers(&blueprint) {
        let vars = service["envVars"].as_sequence().unwrap();
        let shares = |group: &str| vars.iter().any(|v| v["fromGroup"] == group);
        let needs = matches!(service["name"].as_str(), Some("audiolab-api" | "audiolab-node"));
        assert_eq!(shares("audiolab-internal"), needs, "{:?}", service["name"]);
        assert!(shares("audiolab-storage"), "{:?} does not share the audio bucket", service["name"]);
    }
    let groups = blueprint["envVarGroups"].as_sequence().unwrap();
    let secret = &groups.iter().find(|g| g["name"] == "audiolab-internal").unwrap()["envVars"][0];
    assert_eq!(secret["generateValue"], true);
}
