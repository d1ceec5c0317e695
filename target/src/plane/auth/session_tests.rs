//! The controller's DH-HMAC-CHAP state machine driven by a host written here from the same
//! computations: every step, both directions, every group, and each way a transaction fails.

use std::time::{Duration, Instant};

use lamina_protocol::fabrics::dhchap::{
    ControllerMessage, HostMessage, Negotiate, ProtocolDescriptor, Reply, failure,
};

use super::*;

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:host";
const SUB: &str = "nqn.2016-06.io.lamina:sub";

fn secret(byte: u8, transform: u8) -> ChapSecret {
    ChapSecret {
        bytes: Zeroizing::new(vec![byte; 32]),
        transform,
    }
}

fn creds(ctrl: bool) -> Credentials {
    Credentials {
        host: secret(1, 1),
        ctrl: ctrl.then(|| secret(2, 0)),
        hostnqn: HOST.into(),
        subnqn: SUB.into(),
    }
}

fn negotiate(t_id: u16, hashes: &[u8], groups: &[u8]) -> HostMessage {
    HostMessage::Negotiate(Negotiate {
        t_id,
        sc_c: 0,
        protocols: vec![ProtocolDescriptor {
            auth_id: DHCHAP_AUTH_ID,
            hash_ids: hashes.to_vec(),
            dh_ids: groups.to_vec(),
        }],
    })
}

/// The host side: answers a Challenge as the Linux host does, with the host key it was given.
struct Host {
    key: ChapSecret,
    ctrl_key: Option<ChapSecret>,
    c2: Vec<u8>,
    s2: u32,
    session_key: Option<Zeroizing<Vec<u8>>>,
    hash: Option<HashFn>,
}

impl Host {
    fn new(key: ChapSecret, ctrl_key: Option<ChapSecret>) -> Self {
        Self {
            key,
            ctrl_key,
            c2: vec![0x5a; 64],
            s2: 77,
            session_key: None,
            hash: None,
        }
    }

    fn reply(&mut self, c: &Challenge) -> Reply {
        let hash = HashFn::from_id(c.hash_id).unwrap();
        self.hash = Some(hash);
        let (dh_value, z) = match DhGroup::from_id(c.dh_id).unwrap() {
            DhGroup::Null => (vec![], None),
            g => {
                let mine = KeyPair::generate(g).unwrap();
                let z = mine.shared_secret(&c.dh_value).unwrap();
                (mine.public().to_vec(), Some(z))
            }
        };
        self.session_key = z;
        let key = chap::transform_secret(&self.key.bytes, self.key.transform, HOST).unwrap();
        let ca = chap::augment_challenge(
            hash,
            &c.challenge,
            self.session_key.as_deref().map(|z| &z[..]),
        );
        let t = Transcript {
            seqnum: c.seqnum,
            t_id: c.t_id,
            sc_c: 0,
            hostnqn: HOST,
            subnqn: SUB,
        };
        let response = chap::host_response(hash, &key, &ca, &t).to_vec();
        Reply {
            t_id: c.t_id,
            response,
            challenge: self
                .ctrl_key
                .is_some()
                .then(|| self.c2[..hash.output_len()].to_vec()),
            seqnum: self.s2,
            dh_value,
        }
    }

    fn expected_r2(&self, t_id: u16) -> Vec<u8> {
        let hash = self.hash.unwrap();
        let k = self.ctrl_key.as_ref().unwrap();
        let key = chap::transform_secret(&k.bytes, k.transform, SUB).unwrap();
        let ca = chap::augment_challenge(
            hash,
            &self.c2[..hash.output_len()],
            self.session_key.as_deref().map(|z| &z[..]),
        );
        let t = Transcript {
            seqnum: self.s2,
            t_id,
            sc_c: 0,
            hostnqn: HOST,
            subnqn: SUB,
        };
        chap::controller_response(hash, &key, &ca, &t).to_vec()
    }
}

fn send(s: &mut Session, m: HostMessage, ctrl: bool, policy: &Policy, now: Instant) {
    s.on_send(Ok(m), || Ok(creds(ctrl)), policy, || 1000, now);
}

fn challenge_of(sent: &Sent) -> Challenge {
    match &sent.message {
        ControllerMessage::Challenge(c) => c.clone(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn run(hashes: &[u8], groups: &[u8], bidirectional: bool) -> (Session, Sent) {
    let now = Instant::now();
    let policy = Policy::default();
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    send(
        &mut s,
        negotiate(9, hashes, groups),
        bidirectional,
        &policy,
        now,
    );
    let c = challenge_of(&s.on_receive(now));
    assert_eq!(c.t_id, 9);
    assert_eq!(c.seqnum, 1000);
    let mut host = Host::new(secret(1, 1), bidirectional.then(|| secret(2, 0)));
    let reply = host.reply(&c);
    send(
        &mut s,
        HostMessage::Reply(reply),
        bidirectional,
        &policy,
        now,
    );
    let done = s.on_receive(now);
    match &done.message {
        ControllerMessage::Success1 { t_id, hl, response } => {
            assert_eq!(*t_id, 9);
            assert_eq!(
                usize::from(*hl),
                HashFn::from_id(c.hash_id).unwrap().output_len()
            );
            assert_eq!(response.is_some(), bidirectional);
            if let Some(r2) = response {
                assert_eq!(*r2, host.expected_r2(9), "R2 as the host computes it");
            }
        }
        other => panic!("expected success1, got {other:?}"),
    }
    (s, done)
}

#[test]
fn unidirectional_with_the_null_group() {
    let (s, done) = run(&[1], &[0], false);
    assert!(done.authenticated && !done.failed);
    assert_eq!(s.step(), Step::Completed);
}

#[test]
fn bidirectional_needs_success2() {
    let (mut s, done) = run(&[1, 2, 3], &[0], true);
    assert!(
        !done.authenticated,
        "not until the host accepts the controller"
    );
    assert_eq!(s.step(), Step::Success2);
    send(
        &mut s,
        HostMessage::Success2 { t_id: 9 },
        true,
        &Policy::default(),
        Instant::now(),
    );
    assert_eq!(s.step(), Step::Completed);
    assert_eq!(s.negotiated(), Some((HashFn::Sha512, DhGroup::Null)));
}

#[test]
fn every_dh_group_and_hash_authenticates() {
    for g in 1..=5 {
        let (s, done) = run(&[1, 2, 3], &[g], g % 2 == 0);
        assert!(!done.failed, "group {g}");
        assert!(matches!(s.step(), Step::Completed | Step::Success2));
    }
    for h in 1..=3 {
        let (_, done) = run(&[h], &[0, 1], false);
        assert!(done.authenticated, "hash {h}");
    }
}

#[test]
fn the_strongest_common_choice_within_the_policy_wins() {
    let now = Instant::now();
    let policy = Policy {
        digests: vec![HashFn::Sha256, HashFn::Sha384],
        groups: vec![DhGroup::Null, DhGroup::Ffdhe2048],
    };
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    send(
        &mut s,
        negotiate(1, &[1, 2, 3], &[0, 1, 2, 3, 4, 5]),
        false,
        &policy,
        now,
    );
    let c = challenge_of(&s.on_receive(now));
    assert_eq!((c.hash_id, c.dh_id), (2, 1));
    assert_eq!(c.dh_value.len(), 256);
    assert_eq!(c.challenge.len(), 48);
}

fn failure_of(sent: &Sent) -> u8 {
    assert!(sent.failed && !sent.authenticated);
    match sent.message {
        ControllerMessage::Failure1 {
            reason,
            explanation,
            ..
        } => {
            assert_eq!(reason, failure::REASON_FAILED);
            explanation
        }
        ref other => panic!("expected failure1, got {other:?}"),
    }
}

#[test]
fn unusable_offers_fail_at_the_challenge() {
    let now = Instant::now();
    let policy = Policy {
        digests: vec![HashFn::Sha512],
        groups: vec![DhGroup::Ffdhe4096],
    };
    for (hashes, groups, want) in [
        (&[1u8, 2][..], &[3u8][..], failure::HASH_UNUSABLE),
        (&[3], &[0, 1], failure::DHGROUP_UNUSABLE),
    ] {
        let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
        send(&mut s, negotiate(1, hashes, groups), false, &policy, now);
        assert_eq!(failure_of(&s.on_receive(now)), want);
        assert_eq!(s.failure(), Some(FailReason::Unusable));
        assert_eq!(s.step(), Step::Failed);
    }
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    let mut n = Negotiate {
        t_id: 1,
        sc_c: 2,
        protocols: vec![],
    };
    send(
        &mut s,
        HostMessage::Negotiate(n.clone()),
        false,
        &policy,
        now,
    );
    assert_eq!(failure_of(&s.on_receive(now)), failure::CONCAT_MISMATCH);
    n.sc_c = 0;
    send(&mut s, HostMessage::Negotiate(n), false, &policy, now);
    assert_eq!(failure_of(&s.on_receive(now)), failure::NOT_USABLE);
}

#[test]
fn a_wrong_key_fails_with_failed() {
    let now = Instant::now();
    let policy = Policy::default();
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    send(&mut s, negotiate(3, &[1], &[1]), false, &policy, now);
    let c = challenge_of(&s.on_receive(now));
    let mut host = Host::new(secret(9, 1), None);
    send(
        &mut s,
        HostMessage::Reply(host.reply(&c)),
        false,
        &policy,
        now,
    );
    assert_eq!(failure_of(&s.on_receive(now)), failure::FAILED);
    assert_eq!(s.failure(), Some(FailReason::BadResponse));
}

#[test]
fn bidirectional_without_a_controller_key_fails() {
    let now = Instant::now();
    let policy = Policy::default();
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    send(&mut s, negotiate(3, &[1], &[0]), false, &policy, now);
    let c = challenge_of(&s.on_receive(now));
    let mut host = Host::new(secret(1, 1), Some(secret(2, 0)));
    send(
        &mut s,
        HostMessage::Reply(host.reply(&c)),
        false,
        &policy,
        now,
    );
    assert_eq!(failure_of(&s.on_receive(now)), failure::FAILED);
    assert_eq!(s.failure(), Some(FailReason::Keys));
}

#[test]
fn out_of_order_malformed_and_late_messages_fail() {
    let now = Instant::now();
    let policy = Policy::default();
    // A Reply before any Negotiate.
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    let r = Reply {
        t_id: 0,
        response: vec![0; 32],
        challenge: None,
        seqnum: 0,
        dh_value: vec![],
    };
    send(&mut s, HostMessage::Reply(r.clone()), false, &policy, now);
    assert_eq!(failure_of(&s.on_receive(now)), failure::INCORRECT_MESSAGE);
    // A Receive with nothing due.
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    assert_eq!(failure_of(&s.on_receive(now)), failure::INCORRECT_MESSAGE);
    // A message that does not decode.
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    s.on_send(
        HostMessage::decode(&[7, 7, 0, 0]),
        || Ok(creds(false)),
        &policy,
        || 1,
        now,
    );
    assert_eq!(failure_of(&s.on_receive(now)), failure::INCORRECT_PAYLOAD);
    // A Reply with the wrong transaction ID, and a DH value with the null group.
    for bad in [
        Reply {
            t_id: 4,
            ..r.clone()
        },
        Reply {
            t_id: 3,
            dh_value: vec![1; 256],
            ..r.clone()
        },
    ] {
        let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
        send(&mut s, negotiate(3, &[1], &[0]), false, &policy, now);
        challenge_of(&s.on_receive(now));
        send(&mut s, HostMessage::Reply(bad), false, &policy, now);
        assert_eq!(failure_of(&s.on_receive(now)), failure::INCORRECT_PAYLOAD);
    }
    // A Reply after the step timeout.
    let mut s = Session::new(Duration::from_secs(5));
    send(&mut s, negotiate(3, &[1], &[0]), false, &policy, now);
    let c = challenge_of(&s.on_receive(now));
    let mut host = Host::new(secret(1, 1), None);
    let later = now + Duration::from_secs(6);
    send(
        &mut s,
        HostMessage::Reply(host.reply(&c)),
        false,
        &policy,
        later,
    );
    assert_eq!(failure_of(&s.on_receive(later)), failure::FAILED);
    assert_eq!(s.failure(), Some(FailReason::Timeout));
}

#[test]
fn unreadable_keys_and_host_refusals_fail() {
    let now = Instant::now();
    let policy = Policy::default();
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    s.on_send(
        Ok(negotiate(1, &[1], &[0])),
        || Err("key file gone".into()),
        &policy,
        || 1,
        now,
    );
    assert_eq!(failure_of(&s.on_receive(now)), failure::FAILED);
    assert_eq!(s.failure(), Some(FailReason::Keys));
    let (mut s, _) = run(&[1], &[0], true);
    send(
        &mut s,
        HostMessage::Failure2 {
            t_id: 9,
            reason: 1,
            explanation: 1,
        },
        true,
        &policy,
        now,
    );
    assert_eq!(s.step(), Step::Failed);
    assert_eq!(s.failure(), Some(FailReason::HostRefused));
}

#[test]
fn a_new_negotiate_restarts_an_authenticated_queue() {
    let (mut s, _) = run(&[1], &[0], false);
    let now = Instant::now();
    send(
        &mut s,
        negotiate(10, &[1], &[1]),
        false,
        &Policy::default(),
        now,
    );
    let c = challenge_of(&s.on_receive(now));
    assert_eq!(c.t_id, 10);
    let mut host = Host::new(secret(1, 1), None);
    send(
        &mut s,
        HostMessage::Reply(host.reply(&c)),
        false,
        &Policy::default(),
        now,
    );
    assert!(s.on_receive(now).authenticated);
}

#[test]
fn the_protocol_fields_are_checked() {
    assert_eq!(check_protocol(0xe9, [1, 1]), Ok(()));
    assert_eq!(check_protocol(0xea, [1, 1]), Err(43));
    assert_eq!(check_protocol(0xe9, [0, 1]), Err(41));
    assert_eq!(check_protocol(0xe9, [1, 2]), Err(42));
}

#[test]
fn a_wrong_long_untransformed_key_with_ffdhe8192_fails_at_once() {
    let now = Instant::now();
    let policy = Policy::default();
    let mut s = Session::new(DEFAULT_STEP_TIMEOUT);
    send(
        &mut s,
        negotiate(3, &[1, 2, 3], &[0, 1, 2, 3, 4, 5]),
        false,
        &policy,
        now,
    );
    let c = challenge_of(&s.on_receive(now));
    assert_eq!((c.hash_id, c.dh_id), (3, 5));
    let mut host = Host::new(
        ChapSecret {
            bytes: Zeroizing::new(vec![3; 64]),
            transform: 0,
        },
        None,
    );
    let t = Instant::now();
    send(
        &mut s,
        HostMessage::Reply(host.reply(&c)),
        false,
        &policy,
        now,
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(failure_of(&s.on_receive(now)), failure::FAILED);
}
