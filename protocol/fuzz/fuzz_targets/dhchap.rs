//! Fuzz target: DH-HMAC-CHAP messages (the first byte selects the message kind, whose AUTH_TYPE
//! and AUTH_ID head the rest).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    if let Some((kind, rest)) = data.split_first() {
        harness::decode_dhchap(usize::from(*kind), rest);
    }
});
