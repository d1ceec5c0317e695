//! Fuzz target: a byte stream fed in chunks to a framer in the Target role (see harness.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::drive_framer(lamina_protocol::Role::Target, data));
