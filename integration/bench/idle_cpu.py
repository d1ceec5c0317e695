#!/usr/bin/env python3
"""What a running Lamina costs in CPU while its hosts are connected and (nearly) idle.

Opens HOSTS controllers (an admin queue and one I/O queue each) on a running target, speaking
NVMe/TCP from raw sockets, gives every I/O queue a burst of 4 KiB reads at queue depth 1 (so
adaptive busy polling is armed), then measures the target's CPU time (utime + stime from
/proc/PID/stat) over two phases: all hosts idle (keep-alives only), and all hosts sparse (one
read every --sparse-ms each). Prints one JSON object.

Usage: idle_cpu.py --pid PID --addr 127.0.0.1:4420 --nqn NQN [--hosts 8] [--secs 10]
"""

import argparse
import json
import os
import socket
import struct
import time

HOST_NQN = "nqn.2026-11.io.lamina:idle-cpu"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Queue:
    """One NVMe/TCP queue: ICReq/ICResp, then capsules and their responses."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cid = 0
        # ICReq: type 0, HLEN 128, PLEN 128; PFV 0, HPDA 0, no digests, MAXR2T 0.
        self.s.sendall(struct.pack("<BBBBI", 0, 0, 128, 0, 128) + bytes(120))
        t, _, _, _, plen = self.pdu_header()
        if t != 1:
            raise SystemExit(f"expected an ICResp, got PDU type {t}")
        self.recv_exact(plen - 8)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise SystemExit("the target closed the connection")
            buf += chunk
        return bytes(buf)

    def pdu_header(self):
        return struct.unpack("<BBBBI", self.recv_exact(8))

    def command(self, sqe_fields, data=b""):
        """Sends one command (in-capsule data if any) and returns the CQE's (dw0, status)."""
        self.cid = (self.cid + 1) & 0xFFFF
        sqe = bytearray(64)
        struct.pack_into("<BBH", sqe, 0, sqe_fields["opc"], 0x40, self.cid)  # PSDT: SGL
        struct.pack_into("<I", sqe, 4, sqe_fields.get("nsid", 0))
        if data:
            # SGL Data Block, subtype Offset: in-capsule data at offset 0.
            struct.pack_into("<QI3xB", sqe, 24, 0, len(data), 0x01)
        else:
            # SGL Transport Data Block (type 5h, subtype Ah): data moved by C2HData/R2T.
            struct.pack_into("<QI3xB", sqe, 24, 0, sqe_fields.get("len", 0), 0x5A)
        for i, v in enumerate(sqe_fields.get("cdw", [])):
            struct.pack_into("<I", sqe, 40 + 4 * i, v)
        if "fctype" in sqe_fields:
            struct.pack_into("<I", sqe, 4, sqe_fields["fctype"])
        plen = 72 + len(data)
        pdo = 72 if data else 0
        self.s.sendall(struct.pack("<BBBBI", 4, 0, 72, pdo, plen) + bytes(sqe) + data)
        while True:
            t, flags, hlen, pdo, plen = self.pdu_header()
            rest = self.recv_exact(plen - 8)
            if t == 5:  # CapsuleResp
                dw0, _, _, _, _, status = struct.unpack_from("<IIHHHH", rest, 0)
                return dw0, status >> 1
            if t == 7 and flags & 0x08:  # C2HData with SUCCESS: no CapsuleResp follows
                return 0, 0
            if t not in (7,):
                raise SystemExit(f"unexpected PDU type {t}")

    def connect(self, qid, cntlid, kato_ms, host_id):
        data = bytearray(1024)
        data[0:16] = host_id
        struct.pack_into("<H", data, 16, cntlid)
        nqn, host = self.nqn.encode(), HOST_NQN.encode()
        data[256:256 + len(nqn)] = nqn
        data[512:512 + len(host)] = host
        dw0, status = self.command(
            {"opc": 0x7F, "fctype": 0x01, "cdw": [qid << 16, 31, kato_ms]}, bytes(data)
        )
        if status:
            raise SystemExit(f"Connect (qid {qid}) failed: status {status:#x}")
        return dw0 & 0xFFFF

    def read4k(self, lba):
        _, status = self.command(
            {"opc": 0x02, "nsid": 1, "len": 4096, "cdw": [lba & 0xFFFFFFFF, lba >> 32, 0]}
        )
        if status:
            raise SystemExit(f"Read failed: status {status:#x}")

    def keep_alive(self):
        self.command({"opc": 0x18})


def open_host(addr, nqn):
    admin = Queue(addr)
    admin.nqn = nqn
    host_id = os.urandom(16)  # one host ID per controller, as separate hosts have
    cntlid = admin.connect(0, 0xFFFF, 30_000, host_id)
    # Property Set CC (offset 14h, 4 bytes): EN, IOSQES 6, IOCQES 4.
    _, status = admin.command({"opc": 0x7F, "fctype": 0x00, "cdw": [0, 0x14, 0x0046_0001]})
    if status:
        raise SystemExit(f"Property Set CC failed: status {status:#x}")
    for _ in range(100):
        dw0, _ = admin.command({"opc": 0x7F, "fctype": 0x04, "cdw": [0, 0x1C]})
        if dw0 & 1:
            break
        time.sleep(0.01)
    io = Queue(addr)
    io.nqn = nqn
    io.connect(1, cntlid, 0, host_id)
    return admin, io


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--nqn", required=True)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=2000, help="QD1 reads per I/O queue first")
    ap.add_argument("--sparse-ms", type=float, default=10.0)
    a = ap.parse_args()

    hosts = [open_host(a.addr, a.nqn) for _ in range(a.hosts)]
    for _, io in hosts:
        for i in range(a.burst):
            io.read4k(i * 8)

    def phase(sparse):
        c0, t0 = cpu_seconds(a.pid), time.monotonic()
        next_ka = t0 + 5
        reads = 0
        while time.monotonic() - t0 < a.secs:
            if time.monotonic() >= next_ka:
                for admin, _ in hosts:
                    admin.keep_alive()
                next_ka += 5
            if sparse:
                for _, io in hosts:
                    io.read4k(reads * 8)
                reads += 1
                time.sleep(a.sparse_ms / 1000)
            else:
                time.sleep(0.1)
        wall = time.monotonic() - t0
        return {
            "cpu_pct": round(100 * (cpu_seconds(a.pid) - c0) / wall, 2),
            "reads": reads * len(hosts),
            "wall_s": round(wall, 2),
        }

    idle = phase(False)
    sparse = phase(True)
    print(json.dumps({"hosts": a.hosts, "idle": idle,
                      f"sparse_one_read_per_{a.sparse_ms:g}ms_per_host": sparse}))


if __name__ == "__main__":
    main()
