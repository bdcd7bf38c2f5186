//! The committed AsyncAPI document matches the code, is served, and describes real frames.

mod common;

use serde_json::Value;

const COMMITTED: &str = include_str!("../openapi/asyncapi.json");

#[test]
fn committed_asyncapi_is_up_to_date() {
    let generated = audiolab_transport::protocol::asyncapi_json();
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

/// Every property name a schema (and the schemas it refers to) can carry.
fn property_names(schema: &Value, schemas: &Value, names: &mut std::collections::BTreeSet<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return property_names(&schemas[name], schemas, names, depth + 1);
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            names.insert(name.clone());
            property_names(property, schemas, names, depth + 1);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for variant in schema[key].as_array().into_iter().flatten() {
            property_names(variant, schemas, names, depth + 1);
        }
    }
    property_names(&schema["items"], schemas, names, depth + 1);
}

/// The quoted words after each occurrence of `marker` in `source` (`case 'x'` → `x`).
fn quoted_after(source: &str, marker: &str) -> Vec<String> {
    source
        .match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &source[at + marker.len()..];
            let word: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            (!word.is_empty()).then_some(word)
        })
        .collect()
}

/// The words of the JavaScript string list after `marker` in `source`, up to its closing `]`.
fn quoted_list(source: &str, marker: &str) -> Vec<String> {
    let start = source.find(marker).unwrap_or_else(|| panic!("{marker} not found")) + marker.len();
    let list = &source[start..start + source[start..].find(']').unwrap()];
    list.split(',').map(|w| w.trim().trim_matches('\'').to_owned()).filter(|w| !w.is_empty()).collect()
}

/// The studio and the reference client speak the published document (§4): the studio's
/// socket module lists exactly the server messages the document lists (and the studio refuses
/// to start without a handler for each), the studio's handlers are those, and every field
/// they read from a message's `data` is a field of some server message.
#[test]
fn the_studio_and_the_reference_client_speak_the_document() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &document["components"]["schemas"];
    let mut listed: Vec<String> = schemas["ServerMessage"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["type"]["const"].as_str().unwrap().to_owned())
        .collect();
    let mut fields = std::collections::BTreeSet::new();
    property_names(&schemas["ServerMessage"], schemas, &mut fields, 0);

    let socket = include_str!("../web/studio/socket.js");
    let mut known = quoted_list(socket, "export const SERVER_MESSAGES = [");
    known.sort();
    listed.sort();
    assert_eq!(known, listed, "web/studio/socket.js's SERVER_MESSAGES and the document's server messages");

    let studio = include_str!("../web/studio/studio.js");
    let start = studio.find("      handlers: {").expect("the studio's message handlers");
    let end = start + studio[start..].find("\n      },\n").unwrap();
    let handlers = &studio[start..end];
    let mut handled: Vec<String> = handlers
        .lines()
        .filter_map(|line| line.strip_prefix("        ").and_then(|rest| rest.split_once(':')).map(|(key, _)| key))
        .filter(|key| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    handled.sort();
    assert_eq!(handled, listed, "the studio's handlers and the document's server messages");
    // The device's own messages are the reference client's to handle.
    let worker = include_str!("../web/client/device-worker.js");
    for kind in ["attached", "device_changed", "mic_ack", "detached"] {
        assert!(worker.contains(&format!("message.type === '{kind}'")), "the reference client handles `{kind}`");
    }

    let recorder = include_str!("../web/studio/recorder.js");
    let recording = &recorder[recorder.find("  event(data) {").expect("the recorder's event handler")..];
    let recording = &recording[..recording.find("\n  }\n").unwrap()];
    let device = include_str!("../web/client/device.js");
    let mut read = quoted_after(handlers, "data.");
    read.extend(quoted_after(handlers, "data?."));
    read.extend(quoted_after(recording, "data."));
    read.extend(quoted_after(worker, "message.data."));
    read.extend(quoted_after(device, "m.message.data."));
    for field in read.iter().map(|f| f.trim_end_matches('_')) {
        assert!(fields.contains(field), "a client reads `data.{field}`, which no server message has");
    }
}

/// Each command says what its `control_response` carries (§4, a typed result per command),
/// and what it names is in the document.
#[test]
fn every_command_names_the_result_it_answers_with() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &document["components"]["schemas"];
    for variant in schemas["ControlCommand"]["oneOf"].as_array().unwrap() {
        let command = variant["properties"]["command"]["const"].as_str().unwrap();
        let result = &variant["x-result"];
        match result["$ref"].as_str() {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap();
                assert!(schemas[name].is_object(), "{command}: its result {name} is not in the document");
            }
            None => assert_eq!(result["type"], "null", "{command} names no result"),
        }
    }
    assert_eq!(schemas["ControlCommand"]["oneOf"][0]["x-result"]["$ref"], "#/components/schemas/LoadSummary");
}
