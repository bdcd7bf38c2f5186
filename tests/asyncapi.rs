//! The committed AsyncAPI document matches the code, is served, and describes real frames.

mod common;

use serde_json::Value;

const COMMITTED: &str = include_str!("../openapi/asyncapi.json");

#[test]
fn committed_asyncapi_is_up_to_date() {
    let generated = audiolab_node::protocol::asyncapi_json();
    assert!(generated == COMMITTED, "openapi/asyncapi.json is stale: run `cargo run -- openapi` and commit the result");
}

#[test]
fn every_command_and_server_message_is_in_the_document() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(document["asyncapi"], "3.0.0");
    let schemas = &document["components"]["schemas"];
    let constants = |schema: &Value, field: &str| -> Vec<String> {
        schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["properties"][field]["const"].as_str().unwrap().to_owned())
            .collect()
    };
    let commands = constants(&schemas["ControlCommand"], "command");
    for wanted in [
        "play",
        "pause",
        "resume",
        "stop",
        "seek",
        "record_start",
        "record_stop",
        "loop_enable",
        "loop_disable",
        "set_track",
    ] {
        assert!(commands.iter().any(|c| c == wanted), "{wanted} missing from {commands:?}");
    }
    let messages = constants(&schemas["ServerMessage"], "type");
    for wanted in [
        "pong",
        "error",
        "control_response",
        "position_update",
        "loop_event",
        "recording_status",
        "track_update",
        "model_changed",
        "job_progress",
        "clip_ready",
    ] {
        assert!(messages.iter().any(|m| m == wanted), "{wanted} missing from {messages:?}");
    }
    let codes: Vec<&str> = schemas["ErrorCode"]["oneOf"].as_array().map_or_else(
        || schemas["ErrorCode"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect(),
        |variants| variants.iter().map(|v| v["const"].as_str().or(v["enum"][0].as_str()).unwrap()).collect(),
    );
    assert_eq!(codes, ["invalid", "not_found", "conflict", "forbidden", "unavailable", "internal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_beside_the_openapi_one() {
    let app = common::TestApp::sqlite().await;
    let response = app.client.get(app.url("/asyncapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), COMMITTED);
    app.stop().await;
}
