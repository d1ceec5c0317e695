//! Fuzz target: Identify data structures and log pages (the first byte selects the decoder).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::decode_structures(data));
