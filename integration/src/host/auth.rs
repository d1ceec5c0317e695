//! DH-HMAC-CHAP as a host (NVMe Base 2.x, in-band authentication): after a Connect whose
//! response sets AUTHREQ.ATR, the queue runs AUTH_Negotiate, DH-HMAC-CHAP_Challenge, _Reply,
//! _Success1 and, when the host also checks the controller, _Success2, with Authentication
//! Send and Receive, before any other command. The arithmetic is the target's own
//! (`lamina_target::plane::auth`: SHA-2 and HMAC from RustCrypto, FFDHE in constant time);
//! the Linux host is the independent check of both sides (the VM test).
//!
//! The host offers exactly one hash and one DH group, so it knows each answer's length and
//! asks Authentication Receive for exactly that (a Failure1 instead ends the queue).

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::dhchap::{
    self, Challenge, ControllerMessage, DHCHAP_AUTH_ID, HostMessage, Negotiate, ProtocolDescriptor,
    Reply,
};
use lamina_protocol::fabrics::{AuthReceive, AuthSend};
use lamina_protocol::nvme::SglDescriptor;
use lamina_target::plane::auth::chap::{self, HashFn, Transcript};
use lamina_target::plane::auth::dh::{DhGroup, KeyPair};
use lamina_target::plane::keyring::interchange::{self, KeyKind};
use zeroize::Zeroizing;

use crate::host::core::{Command, Transfer};
use crate::host::error::HostError;
use crate::host::owned::OwnedQueue;

/// A host's DH-HMAC-CHAP settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Dhchap {
    /// The host's secret (`DHHC-1:...`).
    pub secret: String,
    /// The controller's secret (`DHHC-1:...`): the host checks the controller too.
    pub ctrl_secret: Option<String>,
    /// The hash offered.
    pub hash: HashFn,
    /// The DH group offered.
    pub group: DhGroup,
}

impl std::fmt::Debug for Dhchap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dhchap")
            .field("bidirectional", &self.ctrl_secret.is_some())
            .field("hash", &self.hash.name())
            .field("group", &self.group.name())
            .finish_non_exhaustive()
    }
}

fn refused(why: impl Into<String>) -> HostError {
    HostError::InvalidRequest(format!("DH-HMAC-CHAP: {}", why.into()))
}

/// The key a secret gives `nqn` (the secret transformed as its interchange form says).
fn key_of(text: &str, nqn: &str) -> Result<Zeroizing<Vec<u8>>, HostError> {
    let s = interchange::parse(text).map_err(|e| refused(e.to_string()))?;
    let KeyKind::Dhchap { transform } = s.kind() else {
        return Err(refused(format!(
            "a {}, not a DH-HMAC-CHAP secret",
            s.kind()
        )));
    };
    chap::transform_secret(s.bytes(), transform, nqn).ok_or_else(|| refused("bad transform"))
}

/// Authentication Send of `m`.
fn send(m: &HostMessage) -> Result<Command, HostError> {
    let mut data = BytesMut::new();
    m.encode(&mut data);
    let tl = u32::try_from(data.len()).map_err(|_| refused("message too long"))?;
    let sqe = AuthSend {
        cid: 0,
        secp: dhchap::AUTH_SECP,
        spsp: dhchap::DHCHAP_SPSP,
        tl,
        dptr: SglDescriptor::in_capsule(0, tl),
    }
    .to_sqe();
    Ok(Command::with_transfer(
        sqe,
        Transfer::ToController(data.freeze()),
    ))
}

/// Authentication Receive of `len` bytes.
fn receive(len: usize) -> Result<Command, HostError> {
    let al = u32::try_from(len).map_err(|_| refused("message too long"))?;
    let sqe = AuthReceive {
        cid: 0,
        secp: dhchap::AUTH_SECP,
        spsp: dhchap::DHCHAP_SPSP,
        al,
        dptr: SglDescriptor::transport(al),
    }
    .to_sqe();
    Ok(Command::with_transfer(sqe, Transfer::read(al)))
}

/// The encoded length of a controller message (for Authentication Receive's length).
fn len_of(m: &ControllerMessage) -> usize {
    let mut b = BytesMut::new();
    m.encode(&mut b);
    b.len()
}

/// Runs one transaction on `q` (whose Connect asked for it) as `hostnqn` to `subnqn`.
pub(crate) async fn authenticate(
    q: &mut OwnedQueue,
    cfg: &Dhchap,
    hostnqn: &str,
    subnqn: &str,
    timeout: std::time::Duration,
) -> Result<(), HostError> {
    const T_ID: u16 = 1;
    let hash = cfg.hash;
    let hl = hash.output_len();
    let host_key = key_of(&cfg.secret, hostnqn)?;
    let ctrl_key = cfg
        .ctrl_secret
        .as_deref()
        .map(|s| key_of(s, subnqn))
        .transpose()?;
    let mut run = async |cmd: Command| -> Result<Bytes, HostError> {
        let mut done = q.execute(cmd, timeout).await?.into_result()?;
        Ok(done.take_data().freeze())
    };
    let negotiate = HostMessage::Negotiate(Negotiate {
        t_id: T_ID,
        sc_c: 0,
        protocols: vec![ProtocolDescriptor {
            auth_id: DHCHAP_AUTH_ID,
            hash_ids: vec![hash.id()],
            dh_ids: vec![cfg.group.id()],
        }],
    });
    run(send(&negotiate)?).await?;
    let challenge_len = len_of(&ControllerMessage::Challenge(Challenge {
        t_id: T_ID,
        hash_id: hash.id(),
        dh_id: cfg.group.id(),
        seqnum: 0,
        challenge: vec![0; hl],
        dh_value: vec![0; cfg.group.value_len()],
    }));
    let got = run(receive(challenge_len)?).await?;
    let c = match ControllerMessage::decode(&got).map_err(|e| refused(e.to_string()))? {
        ControllerMessage::Challenge(c) => c,
        other => return Err(refused(format!("expected a challenge, got {other:?}"))),
    };
    if c.hash_id != hash.id() || c.dh_id != cfg.group.id() || c.t_id != T_ID {
        return Err(refused(
            "the challenge names another hash, group or transaction",
        ));
    }
    let (public, z) = match KeyPair::generate(cfg.group) {
        Some(kp) => {
            let z = kp
                .shared_secret(&c.dh_value)
                .map_err(|e| refused(e.to_string()))?;
            (kp.public().to_vec(), Some(z))
        }
        None => (Vec::new(), None),
    };
    let ca = chap::augment_challenge(hash, &c.challenge, z.as_deref().map(|z| &z[..]));
    let t = |seqnum| Transcript {
        seqnum,
        t_id: T_ID,
        sc_c: 0,
        hostnqn,
        subnqn,
    };
    let mut c2 = vec![0u8; hl];
    getrandom::fill(&mut c2).map_err(|e| refused(e.to_string()))?;
    let s2 = c.seqnum.wrapping_add(1).max(1);
    let reply = HostMessage::Reply(Reply {
        t_id: T_ID,
        response: chap::host_response(hash, &host_key, &ca, &t(c.seqnum)).to_vec(),
        challenge: ctrl_key.as_ref().map(|_| c2.clone()),
        seqnum: if ctrl_key.is_some() { s2 } else { 0 },
        dh_value: public,
    });
    run(send(&reply)?).await?;
    let success1_len = len_of(&ControllerMessage::Success1 {
        t_id: T_ID,
        hl: u8::try_from(hl).unwrap_or(u8::MAX),
        response: ctrl_key.as_ref().map(|_| vec![0; hl]),
    });
    let got = run(receive(success1_len)?).await?;
    let response = match ControllerMessage::decode(&got).map_err(|e| refused(e.to_string()))? {
        ControllerMessage::Success1 { response, .. } => response,
        other => return Err(refused(format!("expected Success1, got {other:?}"))),
    };
    if let Some(key) = &ctrl_key {
        let ca2 = chap::augment_challenge(hash, &c2, z.as_deref().map(|z| &z[..]));
        let want = chap::controller_response(hash, key, &ca2, &t(s2));
        if !response.is_some_and(|r| chap::responses_match(&r, &want)) {
            return Err(refused("the controller's response R2 is wrong"));
        }
        run(send(&HostMessage::Success2 { t_id: T_ID })?).await?;
    }
    Ok(())
}
