//! Fuzzes Avro event decoding (`avro::EventCodec::decode`, what projectors, search and the
//! notifier call on every record of the events log) on the datum after a valid Confluent frame.
//! The first input byte picks the writer schema (this build's or the v3 history one), the rest
//! is the datum. Checked: a decoded event re-encodes (with this build's schema) and decodes to
//! the same event.
#![no_main]

use confab_fuzz::{block_on, codec, CURRENT_ID, V3_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, datum)) = data.split_first() else { return };
    let id = if pick & 1 == 0 { CURRENT_ID } else { V3_ID };
    let mut record = vec![0u8];
    record.extend_from_slice(&id.to_be_bytes());
    record.extend_from_slice(datum);
    let codec = codec();
    let Ok(event) = block_on(codec.decode(&record)) else { return };
    let again = codec.encode(&event).expect("a decoded event encodes");
    let back = block_on(codec.decode(&again)).expect("a re-encoded event decodes");
    assert_eq!(back, event, "event changed through decode/encode/decode");
});
