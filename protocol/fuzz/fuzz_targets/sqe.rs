//! Fuzz target: the 64-byte SQE, every typed command view, and the CQE.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::decode_sqe(data));
