//! `render.yaml` deploys every service with subcommands and flags the binary really has.

use audiolab::cli::Cli;
use clap::Parser;
use serde_yaml::Value;

fn blueprint() -> Value {
    serde_yaml::from_str(include_str!("../render.yaml")).expect("render.yaml parses")
}

/// Parses a `./target/release/audiolab …` command line with the real CLI.
fn parse_command(line: &str) -> Cli {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words[0].ends_with("/audiolab"), "{line} does not run the audiolab binary");
    Cli::try_parse_from(&words).unwrap_or_else(|err| panic!("{line}: {err}"))
}

#[test]
fn every_service_runs_a_real_subcommand() {
    let blueprint = blueprint();
    let services = blueprint["services"].as_sequence().unwrap();
    let mut roles = Vec::new();
    for service in services.iter().filter(|s| s["type"] != "redis") {
        let name = service["name"].as_str().unwrap();
        assert_eq!(service["buildCommand"], "cargo build --release --locked", "{name}");
        let start = parse_command(service["startCommand"].as_str().unwrap());
        roles.push(format!("{:?}", start.command()));
        if let Some(pre) = service["preDeployCommand"].as_str() {
            assert_eq!(format!("{:?}", parse_command(pre).command()), "Migrate", "{name}");
        }
        let vars = service["envVars"].as_sequence().unwrap();
        let keys: Vec<&str> = vars.iter().filter_map(|v| v["key"].as_str()).collect();
        assert!(keys.contains(&"DATABASE_URL") && keys.contains(&"REDIS_URL"), "{name} lacks its dependencies");
        assert!(vars.iter().any(|v| v["fromGroup"] == "audiolab-storage"), "{name} does not share the audio bucket");
    }
    roles.sort();
    assert_eq!(roles, ["Api", "Node", "Worker"]);
}

#[test]
fn the_shared_storage_is_an_s3_bucket_with_its_credentials() {
    let blueprint = blueprint();
    let group = &blueprint["envVarGroups"].as_sequence().unwrap()[0];
    let keys: Vec<&str> = group["envVars"].as_sequence().unwrap().iter().map(|v| v["key"].as_str().unwrap()).collect();
    for key in ["AUDIOLAB_STORAGE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        assert!(keys.contains(&key), "{key}");
    }
}

#[test]
fn the_api_has_a_health_check_and_migrations_run_first() {
    let blueprint = blueprint();
    let api = blueprint["services"].as_sequence().unwrap().iter().find(|s| s["name"] == "audiolab-api").unwrap();
    assert_eq!(api["healthCheckPath"], "/health");
    assert!(api["preDeployCommand"].as_str().unwrap().contains("migrate"));
    assert_eq!(blueprint["databases"].as_sequence().unwrap().len(), 1);
    assert!(blueprint["services"].as_sequence().unwrap().iter().any(|s| s["type"] == "redis"));
}

#[test]
fn the_api_and_the_nodes_share_one_generated_internal_secret() {
    let blueprint = blueprint();
    let group = blueprint["envVarGroups"].as_sequence().unwrap().iter().find(|g| g["name"] == "audiolab-internal");
    let secret = &group.expect("the internal group")["envVars"][0];
    assert_eq!(
        (secret["key"].as_str(), secret["generateValue"].as_bool()),
        (Some("AUDIOLAB_INTERNAL_SECRET"), Some(true))
    );
    for service in blueprint["services"].as_sequence().unwrap() {
        let shares = service["envVars"]
            .as_sequence()
            .is_some_and(|vars| vars.iter().any(|v| v["fromGroup"] == "audiolab-internal"));
        let needs = matches!(service["name"].as_str(), Some("audiolab-api" | "audiolab-node"));
        assert_eq!(shares, needs, "{:?}", service["name"]);
    }
}
