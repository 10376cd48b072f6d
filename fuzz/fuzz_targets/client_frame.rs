//! Fuzzes the parser of a client's WebSocket text frame (`protocol::parse_client_frame`, what
//! the gateway calls on every frame). Besides not panicking: an accepted frame serializes back
//! to JSON that parses to the same frame, and a rejected one keeps the frame's client_msg_id.
#![no_main]

use confab_core::protocol::{parse_client_frame, ClientFrame, MAX_FRAME_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    match parse_client_frame(raw) {
        Ok(frame) => {
            let again = serde_json::to_string(&frame).expect("a parsed frame serializes");
            if again.len() <= MAX_FRAME_BYTES {
                let back: ClientFrame = parse_client_frame(&again).unwrap_or_else(|e| {
                    panic!("a frame the parser accepted is refused once re-serialized: {e:?}\n{again}")
                });
                // exact, pings included: their ids are integers or text (the target once found
                // floats, which JSON parsers round, echoed nearly rather than exactly)
                assert_eq!(back, frame, "frame changed through serialize/parse");
            }
        }
        Err(e) => {
            // an error frame echoes the frame's client_msg_id when the frame is JSON with one
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) {
                let id = v.get("client_msg_id").and_then(|i| i.as_str());
                if raw.len() <= MAX_FRAME_BYTES {
                    assert_eq!(e.client_msg_id.as_deref(), id, "error frame lost the client_msg_id");
                }
            }
            let _ = e.into_frame().type_name();
        }
    }
});
