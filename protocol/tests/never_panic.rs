//! Decoding arbitrary bytes never panics, and whatever decodes re-encodes to itself. The same
//! harness runs under cargo-fuzz (protocol/fuzz); this is its fast, always-on counterpart.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::harness;
use lamina_protocol::Role;
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #[test]
    fn framer_target_stream(data in vec(any::<u8>(), 0..600)) {
        harness::drive_framer(Role::Target, &data);
    }

    #[test]
    fn framer_host_stream(data in vec(any::<u8>(), 0..600)) {
        harness::drive_framer(Role::Host, &data);
    }

    #[test]
    fn framer_with_valid_prefix(control in any::<u8>(), header in any::<[u8; 8]>(), rest in vec(any::<u8>(), 0..200)) {
        // Start after the IC exchange with an 8-byte common header of a known type so the
        // later phases are reached often.
        let mut data = vec![control | 0x10];
        let mut ch = header;
        ch[0] = [4, 5, 6, 7, 9, 2, 3][usize::from(ch[0]) % 7];
        data.extend_from_slice(&ch);
        data.extend_from_slice(&rest);
        harness::drive_framer(Role::Target, &data);
        harness::drive_framer(Role::Host, &data);
    }

    #[test]
    fn sqe_and_views(data in vec(any::<u8>(), 0..80)) {
        harness::decode_sqe(&data);
    }

    #[test]
    fn connect_data(data in vec(any::<u8>(), 1000..1100)) {
        harness::decode_connect_data(&data);
    }

    #[test]
    fn dhchap_messages(kind in 0usize..7, data in vec(any::<u8>(), 0..1300)) {
        harness::decode_dhchap(kind, &data);
    }

    #[test]
    fn structures(which in any::<u8>(), data in vec(any::<u8>(), 0..4200)) {
        let mut input = vec![which];
        input.extend_from_slice(&data);
        harness::decode_structures(&input);
    }
}

/// Regression: non-ASCII bytes in a space-padded text field (Firmware Slot FRS, Identify
/// SN/MN/FR) used to decode lossily into a string wider than the field, which did not
/// re-encode to the same value. Found by `structures` above.
#[test]
fn non_ascii_text_fields_decode_to_their_field_width() {
    let mut input = vec![7u8]; // Firmware Slot Information
    input.extend(std::iter::repeat_n(0xc3u8, 512));
    harness::decode_structures(&input);
    let mut input = vec![0u8]; // Identify Controller
    input.extend((0..4096u32).map(|i| if (4..72).contains(&i) { 0xff } else { 0 }));
    harness::decode_structures(&input);
}
