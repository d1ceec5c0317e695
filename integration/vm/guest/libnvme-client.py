"""A second NVMe/TCP host implementation against the target: libnvme's own Python bindings
(Debian's python3-libnvme), not nvme-cli. Runs in the test VM (the kernel does the transport).

1. Connects to the discovery controller at ADDR:PORT through libnvme, reads the discovery log
   (libnvme parses each entry: trtype, adrfam, traddr, trsvcid, subnqn, subtype) and requires
   an entry for NQN on that address, then disconnects.
2. For the entry found, connects through libnvme without and then with header and data
   digests; finds namespace 1 in libnvme's view of the topology, checks its block device, its
   NGUID against sysfs, writes and reads back 1 MiB with O_DIRECT, disconnects and checks that
   the controller and the device are gone.

Usage: python3 libnvme-client.py ADDR PORT NQN
Prints an `ok:` line per check and `libnvme-client: PASS (N checks)` at the end; exits 1 with a
`FAIL:` line otherwise.
"""

import mmap
import os
import stat
import sys
import time

from libnvme import nvme

CHECKS = 0


def ok(what):
    global CHECKS
    CHECKS += 1
    print(f"ok: {what}", flush=True)


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what} is {got!r}, expected {want!r}")
    ok(f"{what} = {got!r}")


def wait_for(what, probe, secs=30):
    """Polls probe() until it returns something true; fails after secs seconds."""
    deadline = time.monotonic() + secs
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"{what}: not after {secs}s")
        time.sleep(0.5)


def discover(root, host, addr, port, nqn):
    dc = nvme.ctrl(root, nvme.NVME_DISC_SUBSYS_NAME, "tcp", addr, None, None, port)
    dc.connect(host, {})
    if not dc.connected():
        fail("libnvme connected no discovery controller")
    name = dc.name
    ok(f"discovery controller {name} connected through libnvme")
    log = dc.discover()
    dc.disconnect()
    ok(f"discovery log read: {len(log)} entries")
    for e in log:
        print("  entry:", {k: e.get(k) for k in ("trtype", "adrfam", "subtype", "traddr",
                                                  "trsvcid", "subnqn", "treq", "portid")})
    mine = [e for e in log if e.get("subnqn") == nqn]
    if len(mine) != 1:
        fail(f"{len(mine)} discovery log entries for {nqn}, expected 1")
    entry = mine[0]
    expect("entry trtype", entry["trtype"], "tcp")
    expect("entry adrfam", entry["adrfam"], "ipv4")
    expect("entry subtype", entry["subtype"], "nvme")
    expect("entry traddr", entry["traddr"], addr)
    expect("entry trsvcid", entry["trsvcid"], port)
    wait_for(f"{name} gone", lambda: not os.path.exists(f"/sys/class/nvme/{name}"))
    ok(f"discovery controller {name} disconnected through libnvme")
    return entry


def namespace_1(nqn):
    """Namespace 1 of nqn in a fresh libnvme scan: (block device name, subsystem serial and
    model as libnvme read them), or None."""
    root = nvme.root()
    # Each of these returns the first object of its list, which iterates over the rest, or
    # None when the list is empty.
    for host in root.hosts() or []:
        for subsys in host.subsystems() or []:
            if subsys.subsysnqn != nqn:
                continue
            for ns in subsys.namespaces() or []:
                if ns.nsid == 1:
                    return ns.name, subsys.serial, subsys.model
    return None


def check_io(dev):
    """1 MiB of random data written with O_DIRECT at 900 MiB, read back and compared."""
    size = 1 << 20
    wbuf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT wants
    wbuf.write(os.urandom(size))
    rbuf = mmap.mmap(-1, size)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        if os.pwritev(fd, [wbuf], 900 * size) != size:
            fail(f"short O_DIRECT write to {dev}")
        os.fsync(fd)
        if os.preadv(fd, [rbuf], 900 * size) != size:
            fail(f"short O_DIRECT read from {dev}")
    finally:
        os.close(fd)
    if wbuf[:] != rbuf[:]:
        fail(f"1 MiB read back from {dev} differs from what was written")
    ok(f"1 MiB written and read back with O_DIRECT on {dev}")


def connect(root, host, entry, digests):
    label = "header and data digests" if digests else "no digests"
    c = nvme.ctrl(root, entry["subnqn"], entry["trtype"], entry["traddr"], None, None,
                  entry["trsvcid"])
    c.connect(host, {"hdr_digest": digests, "data_digest": digests, "ctrl_loss_tmo": 30})
    if not c.connected():
        fail(f"libnvme connected no controller ({label})")
    name = c.name
    ok(f"{name} connected through libnvme ({label})")
    sysfs = f"/sys/class/nvme/{name}"
    expect(f"{name} subsysnqn", open(f"{sysfs}/subsysnqn").read().strip(), entry["subnqn"])
    wait_for(f"{name} live", lambda: open(f"{sysfs}/state").read().strip() == "live")
    expect(f"{name} cntlid (libnvme vs sysfs)", str(c.cntlid),
           open(f"{sysfs}/cntlid").read().strip())
    dev, serial, model = wait_for("namespace 1 in libnvme's topology",
                                  lambda: namespace_1(entry["subnqn"]))
    path = f"/dev/{dev}"
    if not stat.S_ISBLK(os.stat(path).st_mode):
        fail(f"{path} is not a block device")
    ok(f"namespace 1 is block device {path}")
    expect("namespace 1 NSID (sysfs)", open(f"/sys/block/{dev}/nsid").read().strip(), "1")
    expect("subsystem serial (libnvme vs sysfs)", serial, open(f"{sysfs}/serial").read().strip())
    expect("subsystem model (libnvme vs sysfs)", model, open(f"{sysfs}/model").read().strip())
    check_io(path)
    c.disconnect()
    wait_for(f"{name} and {path} gone",
             lambda: not os.path.exists(sysfs) and not os.path.exists(path))
    ok(f"{name} disconnected through libnvme, {path} gone")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    addr, port, nqn = sys.argv[1:]
    root = nvme.root()
    host = nvme.host(root)
    expect("libnvme host NQN", host.hostnqn, open("/etc/nvme/hostnqn").read().strip())
    entry = discover(root, host, addr, port, nqn)
    for digests in (False, True):
        connect(root, host, entry, digests)
    print(f"libnvme-client: PASS ({CHECKS} checks)", flush=True)


if __name__ == "__main__":
    main()
