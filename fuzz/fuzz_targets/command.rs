//! Fuzzes command decoding as ingest reads the commands log (`serde_json::from_slice::<Command>`
//! per record, see distributed's sequencer log), then judges the decoded commands with the real
//! rules (`PartitionState::decide`). The input is one command per line. Checked: a decoded
//! command re-encodes to itself; deciding never panics; each accepted command appends the
//! stream's next seq; a reply record decodes and round-trips too.
#![no_main]

use confab_core::command::{Command, Outcome, Reply};
use confab_core::TimeUuidGen;
use confab_ingest::PartitionState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ids = TimeUuidGen::new();
    let mut state = PartitionState::default();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if let Ok(reply) = serde_json::from_slice::<Reply>(line) {
            let again = serde_json::to_vec(&reply).expect("a reply serializes");
            assert_eq!(serde_json::from_slice::<Reply>(&again).expect("re-encoded reply decodes"), reply);
        }
        let Ok(cmd) = serde_json::from_slice::<Command>(line) else { continue };
        let again = serde_json::to_vec(&cmd).expect("a command serializes");
        let back: Command = serde_json::from_slice(&again).expect("a re-encoded command decodes");
        assert_eq!(back, cmd, "command changed through encode/decode");
        let _ = cmd.key();

        let stream = (cmd.workspace_id, cmd.stream_id());
        let before = state.channels.get(&stream).map(|c| c.last_seq).unwrap_or(0);
        let (event, outcome) = state.decide(&cmd, &ids, 1_700_000_000_000 + i as i64);
        if let Some(e) = &event {
            assert_eq!(e.seq, before + 1, "an accepted command takes the stream's next seq");
            assert_eq!((e.workspace_id, e.stream_id()), stream, "the event is in the command's stream");
            match outcome {
                Outcome::Posted { seq, duplicate, .. } => {
                    assert_eq!(seq, e.seq, "the sender is told the event's seq");
                    assert!(!duplicate, "a new message is not a duplicate");
                }
                Outcome::Done { seq } => assert_eq!(seq, e.seq, "the sender is told the event's seq"),
                Outcome::Rejected { .. } => panic!("a rejected command appended an event"),
            }
        }
    }
});
