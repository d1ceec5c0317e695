//! DH-HMAC-CHAP over a real connection: a host listed with keys gets ATR in its Connect
//! response and nothing but authentication until it has authenticated; a full bidirectional
//! transaction (ffdhe2048, the computations done here as a host does them) opens the queue,
//! shows as `completed` in `nvmf_subsystem_get_qpairs` and counts as a success; a wrong key
//! gets AUTH_Failure1, the queue closes, and the failure is counted by reason. The Linux host
//! runs the same exchange in the VM test (integration/vm/guest/lamina-auth.sh).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are whole numbers, exact in an f64

mod metrics_support;

use bytes::{Bytes, BytesMut};
use lamina_integration::host::RawHost;
use lamina_protocol::Pdu;
use lamina_protocol::fabrics::dhchap::{
    self, Challenge, ControllerMessage, DHCHAP_AUTH_ID, HostMessage, Negotiate, ProtocolDescriptor,
    Reply,
};
use lamina_protocol::fabrics::{
    AuthReceive, AuthSend, ConnectSuccess, Property, PropertyGet, PropertySize,
};
use lamina_protocol::nvme::{Cqe, SglDescriptor, Status, StatusCode};
use lamina_protocol::tcp::{CapsuleCmd, IcReq};
use lamina_target::plane::auth::chap::{self, HashFn, Transcript};
use lamina_target::plane::auth::dh::{DhGroup, KeyPair};
use metrics_support::{Metered, NQN, add_keys, call};
use serde_json::json;

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:9f0e1d2c-3b4a-4596-8778-695a4b3c2d1e";

fn dhchap_text(key: &[u8], transform: u8) -> String {
    use base64::Engine as _;
    let mut b = key.to_vec();
    b.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
    format!(
        "DHHC-1:{transform:02}:{}:",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

/// An admin queue of NQN, connected as HOST; the Connect's completion.
async fn admin_queue(t: &Metered) -> (RawHost, Cqe) {
    let mut raw = RawHost::connect(t.nvme_addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let mut opts = lamina_integration::host::ConnectOptions::new(NQN).unwrap();
    opts.hostnqn = lamina_protocol::nvme::Nqn::new(HOST).unwrap();
    let cqe = raw.connect_queue(&opts, 0, 32, 0xffff).await.unwrap();
    (raw, cqe)
}

async fn send(raw: &mut RawHost, cid: u16, m: &HostMessage) -> Cqe {
    let mut data = BytesMut::new();
    m.encode(&mut data);
    let sqe = AuthSend {
        cid,
        secp: dhchap::AUTH_SECP,
        spsp: dhchap::DHCHAP_SPSP,
        tl: u32::try_from(data.len()).unwrap(),
        dptr: SglDescriptor::in_capsule(0, u32::try_from(data.len()).unwrap()),
    }
    .to_sqe();
    raw.command(sqe, data.freeze()).await.unwrap()
}

/// Authentication Receive: the completion and the message, when there is one.
async fn receive(raw: &mut RawHost, cid: u16) -> (Cqe, Option<ControllerMessage>) {
    let sqe = AuthReceive {
        cid,
        secp: dhchap::AUTH_SECP,
        spsp: dhchap::DHCHAP_SPSP,
        al: 4096,
        dptr: SglDescriptor::transport(4096),
    }
    .to_sqe();
    raw.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::new(),
    }))
    .await
    .unwrap();
    let mut data = BytesMut::new();
    loop {
        match raw.recv_pdu().await.unwrap() {
            Pdu::C2hData(d) if d.cccid == cid => data.extend_from_slice(&d.data),
            Pdu::CapsuleResp(r) if r.cqe.cid == cid => {
                let m = (!data.is_empty()).then(|| ControllerMessage::decode(&data).unwrap());
                return (r.cqe, m);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn property_get(raw: &mut RawHost, cid: u16) -> Cqe {
    let sqe = PropertyGet {
        cid,
        size: PropertySize::Eight,
        offset: Property::CAP,
    }
    .to_sqe();
    raw.command(sqe, Bytes::new()).await.unwrap()
}

/// Runs a transaction as a host holding `host_key` (transform 1) and, for bidirectional
/// authentication, checking the controller against `ctrl_key`; returns the last message.
async fn authenticate(
    raw: &mut RawHost,
    host_key: &[u8],
    ctrl_key: Option<&[u8]>,
) -> ControllerMessage {
    let negotiate = HostMessage::Negotiate(Negotiate {
        t_id: 7,
        sc_c: 0,
        protocols: vec![ProtocolDescriptor {
            auth_id: DHCHAP_AUTH_ID,
            hash_ids: vec![1],
            dh_ids: vec![0, 1],
        }],
    });
    assert!(send(raw, 10, &negotiate).await.status == Status::SUCCESS);
    let (cqe, m) = receive(raw, 11).await;
    assert!(cqe.status == Status::SUCCESS);
    let Some(ControllerMessage::Challenge(c)) = m else {
        panic!("expected a challenge, got {m:?}");
    };
    let Challenge {
        hash_id,
        dh_id,
        seqnum,
        ref challenge,
        ref dh_value,
        t_id,
    } = c;
    assert_eq!((hash_id, dh_id, t_id), (1, 1, 7), "SHA-256 and ffdhe2048");
    let hash = HashFn::Sha256;
    let mine = KeyPair::generate(DhGroup::Ffdhe2048).unwrap();
    let z = mine.shared_secret(dh_value).unwrap();
    let key = chap::transform_secret(host_key, 1, HOST).unwrap();
    let ca = chap::augment_challenge(hash, challenge, Some(&z));
    let t = |seqnum| Transcript {
        seqnum,
        t_id: 7,
        sc_c: 0,
        hostnqn: HOST,
        subnqn: NQN,
    };
    let c2 = [0x42u8; 32];
    let reply = HostMessage::Reply(Reply {
        t_id: 7,
        response: chap::host_response(hash, &key, &ca, &t(seqnum)).to_vec(),
        challenge: ctrl_key.map(|_| c2.to_vec()),
        seqnum: 99,
        dh_value: mine.public().to_vec(),
    });
    assert!(send(raw, 12, &reply).await.status == Status::SUCCESS);
    let (_, m) = receive(raw, 13).await;
    let m = m.unwrap();
    if let (Some(ck), ControllerMessage::Success1 { response, .. }) = (ctrl_key, &m) {
        let key = chap::transform_secret(ck, 0, NQN).unwrap();
        let ca2 = chap::augment_challenge(hash, &c2, Some(&z));
        let want = chap::controller_response(hash, &key, &ca2, &t(99));
        assert_eq!(response.as_deref(), Some(&want[..]), "R2");
        let done = send(raw, 14, &HostMessage::Success2 { t_id: 7 }).await;
        assert!(done.status == Status::SUCCESS);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_host_authenticates_before_anything_else() {
    let t = Metered::start().await;
    let mut rpc = t.rpc().await;
    let keys = tempfile::tempdir().unwrap();
    let (host_key, ctrl_key) = ([5u8; 32], [6u8; 48]);
    add_keys(
        &mut rpc,
        keys.path(),
        &[
            ("h", dhchap_text(&host_key, 1)),
            ("c", dhchap_text(&ctrl_key, 0)),
        ],
    )
    .await;
    call(
        &mut rpc,
        "nvmf_subsystem_add_host",
        json!({"nqn": NQN, "host": HOST, "dhchap_key": "h", "dhchap_ctrlr_key": "c"}),
    )
    .await;

    // Bidirectional, ffdhe2048: nothing but authentication before, everything after.
    let (mut raw, cqe) = admin_queue(&t).await;
    assert!(cqe.status == Status::SUCCESS);
    let authreq = ConnectSuccess::from_cqe(&cqe).authreq;
    assert_eq!(authreq, ConnectSuccess::AUTHREQ_ATR);
    let refused = property_get(&mut raw, 2).await;
    assert_eq!(refused.status.code, StatusCode::AUTHENTICATION_REQUIRED);
    assert!(refused.status.dnr);
    let last = authenticate(&mut raw, &host_key, Some(&ctrl_key)).await;
    assert!(
        matches!(last, ControllerMessage::Success1 { .. }),
        "{last:?}"
    );
    assert!(property_get(&mut raw, 3).await.status == Status::SUCCESS);
    let qpairs = call(&mut rpc, "nvmf_subsystem_get_qpairs", json!({"nqn": NQN})).await;
    let mine: Vec<_> = qpairs
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["hostnqn"] == HOST)
        .collect();
    assert_eq!(
        mine[0]["auth"],
        json!({"state": "completed", "digest": "sha256", "dhgroup": "ffdhe2048"}),
        "{qpairs}"
    );
    assert_eq!(mine[0]["state"], "active");
    drop(raw);

    // A wrong host key: Failure1 (authentication failed), and the queue closes.
    let (mut raw, _) = admin_queue(&t).await;
    let last = authenticate(&mut raw, &[9u8; 32], None).await;
    assert_eq!(
        last,
        ControllerMessage::Failure1 {
            t_id: 7,
            reason: dhchap::failure::REASON_FAILED,
            explanation: dhchap::failure::FAILED,
        }
    );
    raw.expect_closed().await.unwrap();
    let e = t
        .scrape_until(|e| {
            e.value(
                "lamina_authentications_total",
                &[("result", "bad_response")],
            ) == 1.0
        })
        .await;
    assert_eq!(
        e.value("lamina_authentications_total", &[("result", "success")]),
        1.0
    );
    t.stop().await;
}

/// Lamina's own initiator authenticates every queue (admin and two I/O queues), one way and
/// both ways, with a DH group and with none, then moves data; a wrong key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_initiator_authenticates_every_queue() {
    use lamina_integration::host::{ConnectOptions, Controller, Dhchap};
    let t = Metered::start().await;
    let mut rpc = t.rpc().await;
    let keys = tempfile::tempdir().unwrap();
    let (host_key, ctrl_key) = ([7u8; 32], [8u8; 64]);
    add_keys(
        &mut rpc,
        keys.path(),
        &[
            ("h", dhchap_text(&host_key, 1)),
            ("c", dhchap_text(&ctrl_key, 3)),
        ],
    )
    .await;
    call(
        &mut rpc,
        "nvmf_subsystem_add_host",
        json!({"nqn": NQN, "host": HOST, "dhchap_key": "h", "dhchap_ctrlr_key": "c"}),
    )
    .await;
    let connect = |dhchap: Option<Dhchap>| {
        let mut opts = ConnectOptions::new(NQN).unwrap();
        opts.hostnqn = lamina_protocol::nvme::Nqn::new(HOST).unwrap();
        opts.io_queues = 2;
        opts.dhchap = dhchap;
        Controller::connect(t.nvme_addr(), opts)
    };
    for (ctrl, hash, group) in [
        (true, HashFn::Sha512, DhGroup::Ffdhe2048),
        (false, HashFn::Sha256, DhGroup::Null),
        (true, HashFn::Sha384, DhGroup::Ffdhe3072),
    ] {
        let cfg = Dhchap {
            secret: dhchap_text(&host_key, 1),
            ctrl_secret: ctrl.then(|| dhchap_text(&ctrl_key, 3)),
            hash,
            group,
        };
        let c = connect(Some(cfg)).await.unwrap();
        assert_eq!(c.io_queues().len(), 2);
        let ns = c.namespace(1).await.unwrap();
        let data = Bytes::from(vec![0x5a; 8192]);
        c.io_queue(1)
            .unwrap()
            .write(&ns, 64, data.clone(), false)
            .await
            .unwrap();
        let back = c
            .io_queue(0)
            .unwrap()
            .read(&ns, 64, 2, BytesMut::with_capacity(8192))
            .await
            .unwrap();
        assert_eq!(&back[..], &data[..]);
        c.shutdown().await.unwrap();
    }
    // No keys, a wrong host key, a wrong controller key: no controller.
    assert!(connect(None).await.is_err());
    let wrong = Dhchap {
        secret: dhchap_text(&[9u8; 32], 1),
        ctrl_secret: None,
        hash: HashFn::Sha256,
        group: DhGroup::Ffdhe2048,
    };
    assert!(connect(Some(wrong)).await.is_err());
    let wrong_ctrl = Dhchap {
        secret: dhchap_text(&host_key, 1),
        ctrl_secret: Some(dhchap_text(&[9u8; 64], 3)),
        hash: HashFn::Sha256,
        group: DhGroup::Null,
    };
    let e = connect(Some(wrong_ctrl)).await.unwrap_err();
    assert!(e.to_string().contains("R2"), "{e}");
    let m = t.scrape().await;
    // Three controllers of three queues each. (The wrong-controller-key run never sends
    // Success2, so the target never counts that queue as authenticated.)
    assert_eq!(
        m.value("lamina_authentications_total", &[("result", "success")]),
        9.0
    );
    t.stop().await;
}
