//! Header and data digests: CRC32C (Castagnoli) as NVMe/TCP and Linux compute them.
//!
//! The digest is the standard CRC32C (initial value `!0`, reflected, final XOR `!0`: the value
//! `crc32c("123456789") = 0xE3069283`), stored little-endian right after the bytes it covers.
//! Linux `nvme_tcp_hdgst()`/`nvmet_tcp_hdgst()` store `~crc32c(~0, ...)` with
//! `put_unaligned_le32`, which is the same thing. The `crc32c` crate uses SSE4.2 or the ARMv8
//! CRC instructions when the CPU has them.

//= NVMe/TCP 1.0 §3.3.1.1
//# The HDGST and DDGST are calculated using the CRC32C algorithm ...
//= NVMe/TCP 1.0 §3.3
//# PDU PAD bytes are considered as reserved bytes and are not protected
//# by HDGST nor by DDGST.
// HDGST covers the CH and PSH; DDGST covers the PDU data only, not the padding in front of it.
/// Length of a header or data digest in bytes.
pub const DIGEST_LEN: usize = 4;

/// CRC32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// CRC32C over several byte slices, as if they were concatenated (for data held in pieces).
pub fn crc32c_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    parts.into_iter().fold(0, crc32c::crc32c_append)
}

/// The 4 digest bytes to put on the wire after `bytes`.
pub fn digest_bytes(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    crc32c(bytes).to_le_bytes()
}

/// The data digest (DDGST) a caller appends after sending `data` itself, in split encoding.
pub fn data_digest(data: &[u8]) -> [u8; DIGEST_LEN] {
    digest_bytes(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVMe/TCP 1.0 §3.3.1.1
    #[test]
    fn check_value_matches_the_castagnoli_catalogue() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(digest_bytes(b"123456789"), [0x83, 0x92, 0x06, 0xE3]);
    }

    #[test]
    fn parts_equal_whole() {
        let whole = b"hello, nvme over tcp";
        assert_eq!(
            crc32c_parts([&whole[..5], &whole[5..9], &whole[9..]]),
            crc32c(whole)
        );
    }
}
