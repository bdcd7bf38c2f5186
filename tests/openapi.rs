//! The committed OpenAPI document matches the code, and documents every operation and field.

use serde_json::Value;

const COMMITTED: &str = include_str!("../openapi/openapi.json");

#[test]
fn committed_spec_is_up_to_date() {
    let generated = audiolab_api::openapi_json();
    assert!(generated == COMMITTED, "openapi/openapi.json is stale: run `cargo run -- openapi` and commit the result");
}

#[test]
fn every_operation_parameter_and_field_is_described() {
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut missing = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if operation["summary"].as_str().is_none_or(str::is_empty) {
                missing.push(format!("{method} {path}: summary"));
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{method} {path}: parameter {}", parameter["name"]));
                }
            }
        }
    }
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let has_description = |value: &Value| value["description"].as_str().is_some_and(|d| !d.is_empty());
    for (name, schema) in schemas {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            // A field that is only a reference (the enums of states) is described by the schema
            // it names; an `allOf` wrapper carries its own description.
            let referenced =
                property["$ref"].as_str().and_then(|r| schemas.get(r.trim_start_matches("#/components/schemas/")));
            let described = has_description(property) || referenced.is_some_and(has_description);
            if !described {
                missing.push(format!("schema {name}.{field}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}

#[test]
fn the_contract_paths_exist() {
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    let paths = &spec["paths"];
    for (path, method) in [
        ("/health", "get"),
        ("/api/audio/devices", "get"),
        ("/api/projects", "post"),
        ("/api/projects/{id}", "get"),
        ("/api/projects/{id}", "patch"),
        ("/api/projects/{id}", "delete"),
        ("/api/tracks", "post"),
        ("/api/tracks/{id}", "get"),
        ("/api/projects/{id}/tracks", "get"),
        ("/api/audio/tracks/{id}/volume", "post"),
        ("/api/audio/tracks/{id}/pan", "post"),
        ("/api/audio/tracks/{id}/mute", "post"),
        ("/api/audio/tracks/{id}/solo", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing from the spec");
    }
    assert!(paths["/api/projects"]["post"]["responses"]["201"].is_object());
}

#[test]
fn every_path_appears_once_so_strict_parsers_read_the_document() {
    // Two API groups declaring operations on one path would each write the path's key; JSON
    // parsers that keep the last key (or YAML ones that refuse duplicates) then lose operations.
    let mut seen = std::collections::HashSet::new();
    for line in COMMITTED.lines() {
        if let Some(path) = line.strip_prefix("    \"/").and_then(|rest| rest.strip_suffix("\": {")) {
            assert!(seen.insert(path.to_owned()), "/{path} appears twice in openapi/openapi.json");
        }
    }
    assert!(seen.len() > 40, "{} paths", seen.len());
}
