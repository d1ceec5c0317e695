//! NVMe/TCP secure channels over a real connection, with OpenSSL as the host's TLS (a TLS
//! implementation not written here; the PSKs are derived as the host derives them, checked
//! against OpenSSL's command line in `plane::tls::psk`'s tests): a port added with
//! `secure_channel` serves hosts whose PSK identity (version 0 and 1) names a PSK they hold,
//! through ICReq, Connect and an Identify whose data comes back over TLS; it refuses a wrong
//! key, an identity of another host, a clear-text ICReq, and a Connect as another host than
//! the identity's; every handshake is counted by result. The Linux host runs the same with
//! tlshd in the VM test (integration/vm/guest/lamina-tls.sh).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are whole numbers, exact in an f64

mod metrics_support;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::{
    ConnectCommand, ConnectData, Property, PropertyGet, PropertySet, PropertySize,
};
use lamina_protocol::nvme::identify::Cns;
use lamina_protocol::nvme::{Cqe, Identify, SglDescriptor, Sqe, Status, StatusCode};
use lamina_protocol::tcp::{CapsuleCmd, IcReq, TxParams};
use lamina_protocol::{Framer, FramerConfig, Pdu};
use lamina_target::mgmt::rpc::client::ClientError;
use lamina_target::plane::tls::psk::{self, Derivation, Identity, PskHash};
use metrics_support::{Metered, NQN, add_keys, call};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use serde_json::json;

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:5b2e9a41-8c3d-4f6e-9a7b-1c2d3e4f5a6b";
const OTHER: &str = "nqn.2014-08.org.nvmexpress:uuid:0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";
const KEY: [u8; 32] = [0x42; 32];
/// A host with a SHA-384 key.
const HOST384: &str = "nqn.2014-08.org.nvmexpress:uuid:6e7f8091-a2b3-4c4d-8e5f-60718293a4b5";
const KEY384: [u8; 48] = [0x43; 48];

fn tls_key_text(key: &[u8], hash: u8) -> String {
    use base64::Engine as _;
    let mut b = key.to_vec();
    b.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
    format!(
        "NVMeTLSkey-1:{hash:02}:{}:",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

/// The identity and TLS PSK a host holding `key` (hash 01) sends for `host`, derived as `how`
/// says.
fn host_psk_as(how: Derivation, key: &[u8], host: &str, version: u8) -> (String, Vec<u8>) {
    let (indicator, hash) = if key.len() == 48 {
        (2, PskHash::Sha384)
    } else {
        (1, PskHash::Sha256)
    };
    let retained = psk::retained(how, key, indicator, host).unwrap();
    let digest = (version == 1).then(|| psk::digest(&retained, hash, host, NQN));
    let text = Identity::format(hash, host, NQN, digest.as_deref());
    let id = Identity::parse(&text).unwrap();
    let tls = psk::tls_psk(how, &retained, &id, &text).unwrap();
    (text, tls.to_vec())
}

/// As SPDK and RFC 8446 derive it.
fn host_psk(key: &[u8], host: &str, version: u8) -> (String, Vec<u8>) {
    host_psk_as(Derivation::Standard, key, host, version)
}

/// A blocking NVMe/TCP host over OpenSSL.
struct TlsHost {
    s: openssl::ssl::SslStream<std::net::TcpStream>,
    framer: Framer,
    rx: BytesMut,
}

impl TlsHost {
    /// Connects and runs the TLS 1.3 handshake offering `identity` with `psk`. (OpenSSL's
    /// client uses every such PSK with SHA-256, as tlshd 1.0 does: a 48-byte one offers
    /// ChaCha20-Poly1305 as tlshd does.)
    fn connect(addr: SocketAddr, identity: String, psk: Vec<u8>) -> Result<Self, String> {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
        b.set_max_proto_version(Some(SslVersion::TLS1_3)).unwrap();
        let suites = if psk.len() == 48 {
            "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
        } else {
            "TLS_AES_128_GCM_SHA256"
        };
        b.set_ciphersuites(suites).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_psk_client_callback(move |_, _, id_out, psk_out| {
            let id = identity.as_bytes();
            id_out[..id.len()].copy_from_slice(id);
            id_out[id.len()] = 0;
            psk_out[..psk.len()].copy_from_slice(&psk);
            Ok(psk.len())
        });
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let s = b
            .build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("lamina", tcp)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            s,
            framer: Framer::new(FramerConfig::host()),
            rx: BytesMut::new(),
        })
    }

    fn send(&mut self, pdu: &Pdu) {
        let mut b = BytesMut::new();
        pdu.encode(TxParams::INITIAL, &mut b).unwrap();
        self.s.write_all(&b).unwrap();
    }

    /// The next PDU; `None` when the target closed the connection.
    fn recv(&mut self) -> Option<Pdu> {
        loop {
            if let Some(p) = self.framer.decode(&mut self.rx).unwrap() {
                return Some(p);
            }
            let mut buf = [0u8; 16384];
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.rx.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// A command; its completion and the data that came before it.
    fn command(&mut self, mut sqe: Sqe, data: Bytes) -> (Cqe, BytesMut) {
        let cid = sqe.cid;
        if !data.is_empty() {
            sqe.dptr = SglDescriptor::in_capsule(0, u32::try_from(data.len()).unwrap());
        }
        self.send(&Pdu::CapsuleCmd(CapsuleCmd { sqe, data }));
        let mut got = BytesMut::new();
        loop {
            match self.recv().expect("connection closed") {
                Pdu::C2hData(d) if d.cccid == cid => got.extend_from_slice(&d.data),
                Pdu::CapsuleResp(r) if r.cqe.cid == cid => return (r.cqe, got),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// ICReq, then an admin Connect to NQN as `hostnqn`.
    fn connect_admin(&mut self, hostnqn: &str) -> Cqe {
        self.send(&Pdu::IcReq(IcReq::default()));
        assert!(matches!(self.recv(), Some(Pdu::IcResp(_))));
        let sqe = ConnectCommand {
            cid: 1,
            qid: 0,
            sqsize: 31,
            kato_ms: 10_000,
            ..ConnectCommand::default()
        }
        .to_sqe();
        let mut data = BytesMut::new();
        ConnectData {
            hostid: [7; 16],
            cntlid: 0xffff,
            subnqn: lamina_protocol::nvme::Nqn::new(NQN).unwrap(),
            hostnqn: lamina_protocol::nvme::Nqn::new(hostnqn).unwrap(),
        }
        .encode(&mut data);
        self.command(sqe, data.freeze()).0
    }
}

/// Lamina with a TLS port for NQN and HOST's PSK on it; the TLS port's address.
async fn secure_target() -> (Metered, SocketAddr) {
    let t = Metered::start().await;
    let mut rpc = t.rpc().await;
    add_keys(
        &mut rpc,
        t.dir.path(),
        &[
            ("tls0", tls_key_text(&KEY, 1)),
            ("tls1", tls_key_text(&KEY384, 2)),
        ],
    )
    .await;
    let listen = json!({"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "0"});
    call(
        &mut rpc,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": listen, "secure_channel": true}),
    )
    .await;
    for (host, params) in [
        (HOST, json!({"psk": "tls0"})),
        (HOST384, json!({"psk": "tls1"})),
        (OTHER, json!({})),
    ] {
        let mut p = json!({"nqn": NQN, "host": host});
        p.as_object_mut()
            .unwrap()
            .extend(params.as_object().unwrap().clone());
        call(&mut rpc, "nvmf_subsystem_add_host", p).await;
    }
    let listeners = call(
        &mut rpc,
        "nvmf_subsystem_get_listeners",
        json!({"nqn": NQN}),
    )
    .await;
    let secure: Vec<&serde_json::Value> = listeners
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["secure_channel"] == json!(true))
        .collect();
    assert_eq!(secure.len(), 1, "{listeners}");
    let port: u16 = secure[0]["address"]["trsvcid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hosts = call(&mut rpc, "nvmf_get_subsystems", json!({"nqn": NQN})).await;
    assert!(hosts.to_string().contains(r#""psk":"tls0""#), "{hosts}");
    (t, SocketAddr::from(([127, 0, 0, 1], port)))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_hosts_connect_over_tls_and_everything_else_is_refused() {
    let (t, addr) = secure_target().await;

    // Both identity versions, both derivations (libnvme's, as nvme-cli inserts keys for the
    // Linux host, and RFC 8446's): handshake, ICReq, Connect, and 4 KiB of Identify data.
    // And a SHA-384 key's identities, used with SHA-256 and ChaCha20-Poly1305 as tlshd does.
    for (host, key, how, version) in [
        (HOST, &KEY[..], Derivation::Standard, 0),
        (HOST, &KEY[..], Derivation::Standard, 1),
        (HOST, &KEY[..], Derivation::Compat, 0),
        (HOST, &KEY[..], Derivation::Compat, 1),
        (HOST384, &KEY384[..], Derivation::Compat, 1),
        (HOST384, &KEY384[..], Derivation::Standard, 0),
    ] {
        let (id, key) = host_psk_as(how, key, host, version);
        let identify = blocking(move || {
            let mut h = TlsHost::connect(addr, id, key).unwrap();
            let cqe = h.connect_admin(host);
            assert!(cqe.status.code.is_success(), "{cqe:?}");
            // Enable (CC.EN, 64-byte SQEs, 16-byte CQEs) and wait for CSTS.RDY.
            let cc = PropertySet {
                cid: 3,
                size: PropertySize::Four,
                offset: Property::CC,
                value: 1 | (6 << 16) | (4 << 20),
            };
            assert!(
                h.command(cc.to_sqe(), Bytes::new())
                    .0
                    .status
                    .code
                    .is_success()
            );
            for _ in 0..100 {
                let get = PropertyGet {
                    cid: 4,
                    size: PropertySize::Four,
                    offset: Property::CSTS,
                };
                if h.command(get.to_sqe(), Bytes::new()).0.dw0 & 1 == 1 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let sqe = Identify {
                cid: 2,
                cns: Cns::CONTROLLER,
                dptr: SglDescriptor::transport(4096),
                ..Identify::default()
            }
            .to_sqe();
            h.command(sqe, Bytes::new())
        })
        .await;
        assert!(identify.0.status.code.is_success(), "{:?}", identify.0);
        assert_eq!(identify.1.len(), 4096);
        // SUBNQN at byte 768 of Identify Controller.
        assert!(identify.1[768..].starts_with(NQN.as_bytes()));
    }

    // A PSK from another key: the binder matches no derivation of the host's key.
    let (id, key) = host_psk(&[0x24; 32], HOST, 0);
    let r = blocking(move || TlsHost::connect(addr, id, key).map(|_| ())).await;
    assert!(r.is_err(), "a wrong key must not get in");

    // An identity of a host without a PSK on the subsystem.
    let (id, key) = host_psk(&KEY, OTHER, 0);
    let r = blocking(move || TlsHost::connect(addr, id, key).map(|_| ())).await;
    assert!(r.is_err(), "a host without a PSK must not get in");

    // HOST's PSK does not open a controller as OTHER, although OTHER is allowed.
    let (id, key) = host_psk(&KEY, HOST, 0);
    let cqe = blocking(move || {
        let mut h = TlsHost::connect(addr, id, key).unwrap();
        h.connect_admin(OTHER)
    })
    .await;
    assert_eq!(cqe.status, Status::dnr(StatusCode::CONNECT_INVALID_HOST));

    // A clear-text ICReq on the TLS port: closed without an answer.
    let mut raw = lamina_integration::host::RawHost::connect(addr)
        .await
        .unwrap();
    raw.send_pdu(&Pdu::IcReq(IcReq::default())).await.unwrap();
    // (Closed, or reset: the ICReq was never read.)
    let answer = raw.recv().await;
    assert!(
        matches!(
            answer,
            Ok(lamina_integration::host::RawEvent::Closed)
                | Err(lamina_integration::host::HostError::Io { .. })
        ),
        "{answer:?}"
    );

    let counts = |m: &metrics_support::Exposition| {
        ["success", "wrong_psk", "unknown_identity", "not_tls"]
            .map(|r| m.value("lamina_tls_handshakes_total", &[("result", r)]))
    };
    let m = t.scrape_until(|m| counts(m)[3] >= 1.0).await;
    assert_eq!(counts(&m), [7.0, 1.0, 1.0, 1.0]);
    t.stop().await;
}

#[tokio::test]
async fn a_port_is_clear_or_secure_not_both() {
    let t = Metered::start().await;
    let mut rpc = t.rpc().await;
    let addr = t.nvme_addr();
    let listen = json!({"trtype": "tcp", "traddr": addr.ip().to_string(),
        "trsvcid": addr.port().to_string()});
    let r = rpc
        .call(
            "nvmf_subsystem_add_listener",
            Some(json!({"nqn": NQN, "listen_address": listen, "secure_channel": true})),
        )
        .await;
    let Err(ClientError::Rpc(e)) = r else {
        panic!("a clear-text port cannot become a TLS one: {r:?}");
    };
    assert!(e.message.contains("secure_channel"), "{e:?}");
    let r = rpc
        .call(
            "nvmf_subsystem_add_host",
            Some(json!({"nqn": NQN, "host": HOST, "psk": "nope"})),
        )
        .await;
    let Err(ClientError::Rpc(e)) = r else {
        panic!("an unknown key: {r:?}");
    };
    assert!(e.message.contains("psk"), "{e:?}");
    t.stop().await;
}

/// Lamina's own initiator over TLS (the PSK as SPDK derives it): two I/O queues, and 4 KiB and
/// 128 KiB writes read back intact, through R2Ts and H2CData (writes beyond the in-capsule
/// size) and C2HData across many TLS records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_initiator_moves_data_over_tls() {
    use lamina_integration::host::{ConnectOptions, Controller, TlsPsk};
    let (t, addr) = secure_target().await;
    let mut opts = ConnectOptions::new(NQN).unwrap();
    opts.hostnqn = lamina_protocol::nvme::Nqn::new(HOST).unwrap();
    opts.io_queues = 2;
    opts.tls = Some(TlsPsk::from_configured(&tls_key_text(&KEY, 1), HOST, NQN, 1).unwrap());
    let ctrl = Controller::connect(addr, opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    for (i, len) in [4096usize, 128 * 1024, 8192, 256 * 1024]
        .into_iter()
        .enumerate()
    {
        let q = ctrl.io_queue(i % 2).unwrap();
        let data: Vec<u8> = (0..len)
            .map(|b| u8::try_from((b * 7 + i) % 251).unwrap())
            .collect();
        let slba = (i as u64) * 512;
        q.write(&ns, slba, Bytes::from(data.clone()), false)
            .await
            .unwrap();
        let blocks = ns.blocks_of(len).unwrap();
        let back = q
            .read(&ns, slba, blocks, BytesMut::with_capacity(len))
            .await
            .unwrap();
        assert!(
            back[..] == data[..],
            "{len} bytes at LBA {slba} came back different"
        );
    }
    // A plain-text initiator is refused on the TLS port; with TLS on the clear port too.
    let mut plain = ConnectOptions::new(NQN).unwrap();
    plain.hostnqn = lamina_protocol::nvme::Nqn::new(HOST).unwrap();
    plain.connect_timeout = Duration::from_secs(3);
    assert!(Controller::connect(addr, plain).await.is_err());
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
