#!/usr/bin/env python3
"""Independent CRC32C (Castagnoli) for the golden vectors in tests/golden.rs.

Bitwise, reflected polynomial 0x82F63B78, init 0xFFFFFFFF, final XOR 0xFFFFFFFF: the textbook
definition, sharing no code with the `crc32c` crate under test. Run it to print the digest of
every header and payload the golden tests use; the values are pasted into golden.rs.
"""


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def at(size: int, pieces) -> bytes:
    out = bytearray(size)
    for offset, value in pieces:
        out[offset:offset + len(value)] = value
    return bytes(out)


def le(value: int, n: int) -> bytes:
    return value.to_bytes(n, "little")


assert crc32c(b"123456789") == 0xE3069283

SUBNQN = b"nqn.2026-11.io.lamina:default"
HOSTNQN = b"nqn.2014-08.org.nvmexpress:uuid:6f2b1f7e-3c1a-4d5e-9a8b-0c1d2e3f4a5b"
HOSTID = bytes(range(0x10, 0x20))
CONNECT_DATA = at(1024, [(0, HOSTID), (16, le(0xFFFF, 2)), (256, SUBNQN), (512, HOSTNQN)])
BLOCK = bytes(i % 256 for i in range(512))


def sqe(opcode, flags, cid, nsid, sgl, cdw10_15):
    pieces = [(0, bytes([opcode, flags])), (2, le(cid, 2)), (4, le(nsid, 4)), (24, sgl)]
    pieces += [(40 + 4 * i, le(v, 4)) for i, v in enumerate(cdw10_15)]
    return at(64, pieces)


def sgl(address, length, ident):
    return le(address, 8) + le(length, 4) + b"\0\0\0" + bytes([ident])


CONNECT_SQE = at(64, [(0, b"\x7f\x40"), (2, le(7, 2)), (4, b"\x01"), (24, sgl(0, 1024, 0x01)),
                      (44, le(31, 2)), (48, le(120000, 4))])
# Read: NSID 1, SLBA 0x1_0000_0010, NLB 7 (8 blocks), FUA.
READ_SQE = sqe(0x02, 0x40, 0x21, 1, sgl(0, 4096, 0x5A), [0x10, 0x1, 7 | (1 << 30), 0, 0, 0])
WRITE_SQE = sqe(0x01, 0x40, 0x22, 1, sgl(0, 512, 0x01), [0x20, 0, 0, 0, 0, 0])


def ch(t, flags, hlen, pdo, plen):
    return bytes([t, flags, hlen, pdo]) + le(plen, 4)


headers = {
    "connect (HD+DD)": ch(4, 3, 72, 76, 76 + 1024 + 4) + CONNECT_SQE,
    "read (HD)": ch(4, 1, 72, 0, 76) + READ_SQE,
    "write (HD+DD)": ch(4, 3, 72, 76, 76 + 512 + 4) + WRITE_SQE,
    "r2t (HD)": ch(9, 1, 24, 0, 28) + le(0x22, 2) + le(0x0105, 2) + le(0, 4) + le(512, 4) + bytes(4),
    "h2c_data (HD+DD)": ch(6, 7, 24, 28, 28 + 512 + 4) + le(0x22, 2) + le(0x0105, 2) + le(0, 4) + le(512, 4) + bytes(4),
    "c2h_data (HD+DD)": ch(7, 0xF, 24, 28, 28 + 512 + 4) + le(0x21, 2) + bytes(2) + le(0x200, 4) + le(512, 4) + bytes(4),
    "capsule_resp (HD)": ch(5, 1, 24, 0, 28) + le(0x0001_0100, 4) + le(0, 4) + le(5, 2) + le(1, 2) + le(0x21, 2) + le(0x8000 | (0x80 << 1), 2),
}
for name, header in headers.items():
    print(f"HDGST {name:22} len {len(header):3} crc {crc32c(header):#010x}")
print(f"DDGST connect data           crc {crc32c(CONNECT_DATA):#010x}")
print(f"DDGST 512-byte block         crc {crc32c(BLOCK):#010x}")
