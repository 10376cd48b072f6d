//! Fuzzes the Confluent wire framing of event records (magic byte 0, 4-byte big-endian schema
//! id, then the Avro datum) through `avro::EventCodec::decode` on whole records. Checked: a
//! record without the frame is `NotFramed`; a schema id the registry does not know is a
//! registry error (which keeps the registry's error kind); errors map to an invalid-record
//! `PortError`; an event that decodes re-encodes under this build's schema id.
#![no_main]

use confab_core::avro::AvroError;
use confab_core::ports::{PortError, PortErrorKind};
use confab_fuzz::{block_on, codec, CURRENT_ID, V3_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    let result = block_on(codec.decode(data));
    let framed = data.len() >= 5 && data[0] == 0;
    let id = framed.then(|| u32::from_be_bytes([data[1], data[2], data[3], data[4]]));
    match result {
        Err(AvroError::NotFramed) => assert!(!framed, "a framed record was called unframed"),
        Err(AvroError::Registry(p)) => {
            assert!(framed && id != Some(CURRENT_ID) && id != Some(V3_ID), "a known schema id went to the registry");
            assert_eq!(PortError::from(AvroError::Registry(p)).kind(), PortErrorKind::NotFound);
        }
        Err(other) => {
            assert!(framed, "an unframed record got past the frame check: {other}");
            assert_eq!(PortError::from(other).kind(), PortErrorKind::Invalid);
        }
        Ok(event) => {
            assert!(matches!(id, Some(CURRENT_ID) | Some(V3_ID)), "decoded under an unknown schema id");
            let again = codec.encode(&event).expect("a decoded event encodes");
            assert_eq!(again[0], 0, "magic byte");
            assert_eq!(&again[1..5], &CURRENT_ID.to_be_bytes(), "this build's schema id");
            assert_eq!(block_on(codec.decode(&again)).expect("re-encoded record decodes"), event);
        }
    }
});
