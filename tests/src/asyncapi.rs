//! The WebSocket contract, checked: every frame a test's [`crate::Client`] receives is
//! validated against its schema in `docs/asyncapi.yaml` (the server's messages, chosen by the
//! frame's `type`), so the document and the server cannot drift apart unnoticed. The server's
//! frame schemas list every field they may carry (`additionalProperties: false`) and those
//! always present (`required`).

use jsonschema::Validator;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Whether [`crate::Client`] checks the frames it receives (on unless a benchmark turns it off:
/// the load harness measures the server, not the validator).
static CHECKING: AtomicBool = AtomicBool::new(true);

/// Turns the check of received frames on or off for this process.
pub fn set_checking(on: bool) {
    CHECKING.store(on, Ordering::Relaxed);
}

/// Whether received frames are checked.
pub fn checking() -> bool {
    CHECKING.load(Ordering::Relaxed)
}

/// The document, parsed once per test process.
static SERVER_FRAMES: LazyLock<ServerFrames> = LazyLock::new(ServerFrames::load);

/// A validator per server frame `type`.
struct ServerFrames {
    by_type: HashMap<String, Arc<Validator>>,
}

impl ServerFrames {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.yaml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
        let mut by_type = HashMap::new();
        for message in server_messages(&doc) {
            let payload = &doc["components"]["messages"][&message]["payload"];
            // the payload's own `$ref`s point into the document's components
            let schema = serde_json::json!({
                "$ref": format!("#/components/messages/{message}/payload"),
                "components": doc["components"],
            });
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{path}: the schema of `{message}`: {e}"));
            let validator = Arc::new(validator);
            for frame_type in frame_types(payload) {
                let previous = by_type.insert(frame_type.clone(), validator.clone());
                assert!(previous.is_none(), "{path}: two server messages have type `{frame_type}`");
            }
        }
        Self { by_type }
    }
}

/// The names of the messages the server sends (`operations.serverSends`).
fn server_messages(doc: &Value) -> Vec<String> {
    let refs = doc["operations"]["serverSends"]["messages"].as_array().expect("serverSends lists its messages");
    refs.iter()
        .map(|r| {
            let reference = r["$ref"].as_str().expect("a message $ref");
            reference.rsplit('/').next().expect("a message name").to_string()
        })
        .collect()
}

/// The `type` values a payload schema admits (`const`, or `enum`).
fn frame_types(payload: &Value) -> Vec<String> {
    let t = &payload["properties"]["type"];
    match (&t["const"], &t["enum"]) {
        (Value::String(one), _) => vec![one.clone()],
        (_, Value::Array(many)) => many.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => panic!("a server message without a `type` const or enum: {payload}"),
    }
}

/// Checks one frame the server sent against the document; the error names what is wrong.
pub fn check_server_frame(frame: &Value) -> Result<(), String> {
    let frames = &*SERVER_FRAMES;
    let Some(frame_type) = frame["type"].as_str() else { return Err(format!("a frame without a type: {frame}")) };
    let Some(validator) = frames.by_type.get(frame_type) else {
        return Err(format!("the server sent `{frame_type}`, which docs/asyncapi.yaml does not list: {frame}"));
    };
    let errors: Vec<String> =
        validator.iter_errors(frame).map(|e| format!("{} at `{}`", e, e.instance_path())).collect();
    match errors.is_empty() {
        true => Ok(()),
        false => {
            Err(format!("`{frame_type}` does not match docs/asyncapi.yaml: {}; frame: {frame}", errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WS: &str = "0b0c1d9e-3f4a-4b5c-8d6e-7f8091a2b3c4";

    #[test]
    fn a_frame_as_documented_passes_and_drift_either_way_fails() {
        let typing =
            json!({"type": "typing", "workspace_id": WS, "channel_id": WS, "user_id": WS, "expires_in_ms": 6000});
        check_server_frame(&typing).unwrap();
        let mut extra = typing.clone();
        extra["mood"] = json!("happy");
        assert!(check_server_frame(&extra).unwrap_err().contains("mood"), "a field the document lacks");
        let mut missing = typing.clone();
        missing.as_object_mut().unwrap().remove("user_id");
        assert!(check_server_frame(&missing).unwrap_err().contains("user_id"), "a required field gone");
        let mut not_a_uuid = typing;
        not_a_uuid["channel_id"] = json!("general");
        assert!(check_server_frame(&not_a_uuid).is_err(), "a uuid that is not one");
        let unknown = json!({"type": "channel:exploded", "channel_id": WS});
        assert!(check_server_frame(&unknown).unwrap_err().contains("does not list"));
    }
}
