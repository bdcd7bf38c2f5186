//! The socket's AsyncAPI document, generated from the protocol's types.

use super::{Attach, ControlCommand, Played, ServerMessage};
use serde_json::Value;

/// What a third-party client needs to be a project's audio device (§10), beyond the schemas.
const DEVICE_GUIDE: &str = "**Being the project's audio device.** \
1. *Attach first*: send `attach` (role `device`) and wait for `attached`; `MIC` frames sent before it \
are refused with an `error`. `MON` frames of stream `attached.monitor_stream` follow while the \
transport rolls; drop any other stream. \
2. *Your microphone stream*: the client chooses the `stream` id of its `MIC` frames (any u32, one \
per microphone, kept across reconnects) and counts `seq` from 0 per stream; `mic_ack` says, per \
stream, the `next_seq` before which everything arrived: keep every frame from there until it is \
acknowledged, and after a reconnect resend from `attached.microphone[].next_seq`. A `MIC` frame's \
`frame` is your audio clock's frame of its first sample; the clock runs on whether or not anything \
plays. \
3. *Report what you play*: `played.consumed` is the total of `MON` frames played since the device \
first attached (a resume continues the count; `attached.consumed` is what the node has); \
`played.runs` are increments, only the runs not reported before, each `{client, timeline, frames}`: \
your clock's frames `client..client+frames` played timeline frames `timeline..`. A run that goes \
back over reported frames is refused. The node renders only `lookahead_frames` beyond `consumed`, so \
report at least every quarter of it (the reference client reports every `MON` frame it plays). \
4. *While the transport stands* nothing plays: keep sending `MIC` frames (they are kept only where \
they were heard against the timeline) and send `played` with the same `consumed` and no runs when \
you like; no stray take can come of it — a take holds only what was heard after it started. \
5. *Where a take lands*: a microphone sample captured at your frame `c` was heard against the \
timeline frame you played at `c − L`, `L` being `attached.latency_frames` (the round trip). \
6. *Stopping*: a take ends with what had been heard when `record_stop` (or `stop`) came — `L` \
frames before what you had reported played; keep sending `MIC` frames until the answer. The node \
waits up to 3 s for microphone audio still on its way, then saves the take with the holes silent and \
counted in `missing_frames`. To give up on a take's missing audio at once, `detach`: the take keeps \
what arrived. \
7. *What `MON` carries*: the project's mix as it should be played — every track through its fader \
and its pan (equal power: a centred mono track at 1/√2 in each channel), mute and solo applied, the \
metronome and count-in clicks included — stereo, at the project's sample rate. \
8. *Listeners* (role `listener`) receive the device's `MON` frames; when the device changes they \
get `device_changed` first, and the new device's frames come on a stream of its own with `seq` \
from 0, so they can never be taken for the old device's. \
9. *Results*: each command's `control_response.result` has the schema the command's `x-result` \
names.";

/// The AsyncAPI 3 document of the socket, generated from the types above, as committed under
/// `openapi/asyncapi.json` and served at `/asyncapi.json`.
pub fn asyncapi_json() -> String {
    let settings = schemars::generate::SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut generator = settings.for_serialize().into_generator();
    let server = generator.subschema_for::<ServerMessage>();
    let mut schemas = generator.take_definitions(true);
    let mut generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    let command = generator.subschema_for::<ControlCommand>();
    let attach = generator.subschema_for::<Attach>();
    let played = generator.subschema_for::<Played>();
    schemas.extend(generator.take_definitions(true));
    // A command is read from inside the `control` frame, beside `type` and `id`, and `data`
    // may be left out (it is then `{}`): say so, or validators would refuse real frames.
    if let Some(variants) = schemas.get_mut("ControlCommand").and_then(|c| c["oneOf"].as_array_mut()) {
        for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
            variant.remove("additionalProperties");
            variant.insert("required".into(), serde_json::json!(["command"]));
            // What the command's `control_response` carries in `result` when it succeeds.
            let name = variant.get("properties").and_then(|p| p["command"]["const"].as_str()).unwrap_or_default();
            let result = match ControlCommand::result_schema(name) {
                Some(schema) => serde_json::json!({"$ref": format!("#/components/schemas/{schema}")}),
                None => serde_json::json!({"type": "null"}),
            };
            variant.insert("x-result".into(), result);
        }
    }
    let kind = |name: &str| serde_json::json!({"type": "string", "const": name});
    let client = serde_json::json!({
        "oneOf": [
            {"title": "ping", "description": "Answered by `pong`.", "type": "object",
             "properties": {"type": kind("ping")}, "required": ["type"]},
            {"title": "subscribe", "description": "Join the project's broadcasts without a command. With `data.since` (a revision), first get `missed` with every change after it, or `resync` when too much changed.",
             "type": "object", "properties": {"type": kind("subscribe"), "data": {"type": "object",
                "properties": {"since": {"type": ["integer", "null"], "minimum": 0}}}}, "required": ["type"]},
            {"title": "attach", "description": "Become the project's audio device (answered by `attached`): the client plays `MON` binary frames, sends `MIC` ones, and reports what it played; it is then the project's clock.",
             "type": "object", "properties": {"type": kind("attach"), "data": attach.to_value()}, "required": ["type", "data"]},
            {"title": "played", "description": "What the attached device played: `consumed` MON frames in all, and runs of its clock frames against timeline frames.",
             "type": "object", "properties": {"type": kind("played"), "data": played.to_value()}, "required": ["type", "data"]},
            {"title": "detach", "description": "Stop being the project's device (answered by `detached`).",
             "type": "object", "properties": {"type": kind("detach")}, "required": ["type"]},
            {"title": "control", "description": "One command, answered by one `control_response` carrying `id`.",
             "allOf": [
                {"type": "object", "properties": {"type": kind("control"),
                  "id": {"description": "Any JSON value, echoed in the response."}}, "required": ["type"]},
                command.to_value(),
             ]},
        ]
    });
    schemas.insert("ClientMessage".into(), client);
    let document = serde_json::json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "AudioLab transport",
            "version": env!("CARGO_PKG_VERSION"),
            "description": ("The WebSocket of one project: JSON text frames `{\"type\", \"data\"}`. \
                The server sends nothing until the client speaks; `ping` is answered by `pong`, the first \
                frame of the connection. Each `control` message gets one `control_response`; broadcasts \
                go to every client that has spoken. Malformed frames get an `error` and the connection \
                stays open; frames over 64 KiB close it with 1009. Deleting the project closes it with \
                code 1000 and the reason. Binary frames carry audio (§10): a 32-byte little-endian header \
                (u8 magic 0xA7, u8 version 1, u8 kind 1 MIC | 2 MON, u8 format 1 f32 | 2 i16, u16 channels, \
                u16 frames, u32 stream, u32 seq, u64 frame, u64 reserved) and interleaved samples; a \
                malformed one is answered with an `error`, never fatal.\n\n".to_owned() + DEVICE_GUIDE),
        },
        "channels": {
            "transport": {
                "address": "/ws/audio/{project_id}",
                "parameters": {"project_id": {"description": "The project's id (a UUID)."}},
                "messages": {
                    "client": {"$ref": "#/components/messages/client"},
                    "server": {"$ref": "#/components/messages/server"},
                },
            },
        },
        "operations": {
            "send": {
                "action": "send",
                "channel": {"$ref": "#/channels/transport"},
                "messages": [{"$ref": "#/channels/transport/messages/client"}],
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/transport"},
                "messages": [{"$ref": "#/channels/transport/messages/server"}],
            },
        },
        "components": {
            "messages": {
                "client": {"name": "client", "title": "What a client sends",
                           "payload": {"$ref": "#/components/schemas/ClientMessage"}},
                "server": {"name": "server", "title": "What the server sends",
                           "payload": server.to_value()},
            },
            "schemas": schemas,
        },
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}
