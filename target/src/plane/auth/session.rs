//! One queue's DH-HMAC-CHAP transaction as the controller runs it: a state machine fed the
//! host's messages (Authentication Send) and asked for the controller's (Authentication
//! Receive). Pure: keys, policy and the clock come in as arguments, so every path is tested
//! here without a connection.
//!
//! Steps: Negotiate (any time: a new Negotiate restarts the transaction, which is how a host
//! re-authenticates) → Challenge ready → Reply expected → Success1 ready → Success2 expected
//! (bidirectional only) → completed. An error at any step makes the next Receive return
//! AUTH_Failure1 with the reason, after which the queue is closed (as nvmet and SPDK do).
//! Each step must follow the last within the step timeout (KATO, or 120 s without one);
//! a late message fails the transaction.

use std::time::{Duration, Instant};

use lamina_protocol::fabrics::dhchap::{
    self, Challenge, ControllerMessage, DHCHAP_AUTH_ID, HostMessage, Negotiate, Reply, failure,
};
use zeroize::Zeroizing;

use super::chap::{self, HashFn, Transcript};
use super::dh::{DhGroup, KeyPair};

/// The step timeout when the host asked for no keep-alive (nvmet's and SPDK's).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_mins(2);

/// What the target allows (`nvmf_set_config` `dhchap_digests`, `dhchap_dhgroups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Hash functions a host may negotiate.
    pub digests: Vec<HashFn>,
    /// DH groups a host may negotiate.
    pub groups: Vec<DhGroup>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            digests: HashFn::ALL.to_vec(),
            groups: DhGroup::ALL.to_vec(),
        }
    }
}

/// A configured secret, as read from its `DHHC-1` key.
pub struct ChapSecret {
    /// The secret's bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Its transform hash (0: none).
    pub transform: u8,
}

impl std::fmt::Debug for ChapSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChapSecret")
            .field("transform", &self.transform)
            .finish_non_exhaustive()
    }
}

/// What one transaction authenticates with.
#[derive(Debug)]
pub struct Credentials {
    /// The host's secret (`dhchap_key`).
    pub host: ChapSecret,
    /// The controller's secret (`dhchap_ctrlr_key`), for bidirectional authentication.
    pub ctrl: Option<ChapSecret>,
    /// The host NQN.
    pub hostnqn: String,
    /// The subsystem NQN.
    pub subnqn: String,
}

/// Where the transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for AUTH_Negotiate.
    Negotiate,
    /// The Challenge is ready for the next Receive.
    Challenge,
    /// Waiting for the Reply.
    Reply,
    /// Success1 is ready for the next Receive.
    Success1,
    /// Waiting for Success2.
    Success2,
    /// Failure1 is ready for the next Receive, with this explanation.
    Failure1(u8),
    /// Authenticated.
    Completed,
    /// Failed; the queue closes.
    Failed,
}

impl Step {
    /// SPDK's name for the state (`nvmf_subsystem_get_qpairs` `auth.state`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Negotiate => "negotiate",
            Self::Challenge => "challenge",
            Self::Reply => "reply",
            Self::Success1 => "success1",
            Self::Success2 => "success2",
            Self::Failure1(_) => "failure1",
            Self::Completed => "completed",
            Self::Failed => "error",
        }
    }
}

/// What a Receive produced.
#[derive(Debug)]
pub struct Sent {
    /// The message.
    pub message: ControllerMessage,
    /// The transaction completed: the queue is authenticated.
    pub authenticated: bool,
    /// The message was Failure1: the queue closes once it is sent.
    pub failed: bool,
}

impl Sent {
    /// The name of the message, for the debug log.
    pub fn message_kind(&self) -> &'static str {
        match self.message {
            ControllerMessage::Challenge(_) => "challenge",
            ControllerMessage::Success1 { .. } => "success1",
            ControllerMessage::Failure1 { .. } => "failure1",
        }
    }
}

/// Why a transaction failed, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The host's response did not match (wrong key).
    BadResponse,
    /// The host refused the controller's response (Failure2).
    HostRefused,
    /// No hash function or DH group in common, or a protocol other than DH-HMAC-CHAP.
    Unusable,
    /// A malformed or out-of-order message.
    Protocol,
    /// A step came after the step timeout.
    Timeout,
    /// The configured keys could not be read, or bidirectional authentication was asked for
    /// without a controller key.
    Keys,
}

impl FailReason {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::BadResponse => "bad_response",
            Self::HostRefused => "host_refused",
            Self::Unusable => "unusable",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Keys => "keys",
        }
    }
}

/// The negotiated transaction's secrets.
struct Exchange {
    hash: HashFn,
    group: DhGroup,
    c1: Vec<u8>,
    s1: u32,
    keys: Option<KeyPair>,
    creds: Credentials,
    /// The controller's response R2, once the host asked for it.
    r2: Option<Zeroizing<Vec<u8>>>,
}

/// One queue's authentication state.
pub struct Session {
    step: Step,
    t_id: u16,
    exchange: Option<Exchange>,
    /// What the last Negotiate chose (kept after the secrets are dropped).
    chosen: Option<(HashFn, DhGroup)>,
    deadline: Option<Instant>,
    step_timeout: Duration,
    /// Why the current transaction failed, once it has.
    failed: Option<FailReason>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("step", &self.step)
            .field("t_id", &self.t_id)
            .field("chosen", &self.chosen)
            .finish_non_exhaustive()
    }
}

/// `n` bytes from the OS's CSPRNG.
fn random_bytes(n: usize) -> Option<Vec<u8>> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).ok()?;
    Some(v)
}

impl Session {
    /// A queue waiting for AUTH_Negotiate; each step must follow within `step_timeout`.
    pub fn new(step_timeout: Duration) -> Self {
        Self {
            step: Step::Negotiate,
            t_id: 0,
            exchange: None,
            chosen: None,
            deadline: None,
            step_timeout,
            failed: None,
        }
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The negotiated hash function and DH group, once negotiated.
    pub fn negotiated(&self) -> Option<(HashFn, DhGroup)> {
        self.chosen
    }

    /// When the step now awaited times out (`None`: nothing awaited with a clock running).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Why the transaction failed, if it has.
    pub fn failure(&self) -> Option<FailReason> {
        self.failed
    }

    fn fail(&mut self, explanation: u8, why: FailReason) {
        self.step = Step::Failure1(explanation);
        self.failed = Some(why);
        self.exchange = None;
    }

    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now > d)
    }

    /// An Authentication Send: the host's message (or why it did not decode), with the
    /// credentials for a Negotiate (`None` when the host has no key here). `seqnum` gives the
    /// next sequence number. The Send itself always succeeds; a failure surfaces as Failure1
    /// at the next Receive.
    pub fn on_send(
        &mut self,
        message: Result<HostMessage, lamina_protocol::StructDecodeError>,
        creds: impl FnOnce() -> Result<Credentials, String>,
        policy: &Policy,
        seqnum: impl FnOnce() -> u32,
        now: Instant,
    ) {
        let Ok(message) = message else {
            return self.fail(failure::INCORRECT_PAYLOAD, FailReason::Protocol);
        };
        if let HostMessage::Negotiate(n) = message {
            self.failed = None;
            return self.negotiate(&n, creds, policy, seqnum, now);
        }
        if self.expired(now) && !matches!(self.step, Step::Completed | Step::Negotiate) {
            return self.fail(failure::FAILED, FailReason::Timeout);
        }
        match (self.step, message) {
            (Step::Reply, HostMessage::Reply(r)) => self.reply(&r, now),
            (Step::Success2, HostMessage::Success2 { t_id }) if t_id == self.t_id => {
                self.step = Step::Completed;
                self.deadline = None;
                self.exchange = None;
            }
            (_, HostMessage::Failure2 { .. }) => {
                self.step = Step::Failed;
                self.failed = Some(FailReason::HostRefused);
                self.exchange = None;
            }
            (Step::Success2, HostMessage::Success2 { .. }) => {
                self.fail(failure::INCORRECT_PAYLOAD, FailReason::Protocol);
            }
            _ => self.fail(failure::INCORRECT_MESSAGE, FailReason::Protocol),
        }
    }

    fn negotiate(
        &mut self,
        n: &Negotiate,
        creds: impl FnOnce() -> Result<Credentials, String>,
        policy: &Policy,
        seqnum: impl FnOnce() -> u32,
        now: Instant,
    ) {
        self.t_id = n.t_id;
        self.deadline = Some(now + self.step_timeout);
        if n.sc_c != 0 {
            // Secure channel concatenation needs TLS, which this listener does not do.
            return self.fail(failure::CONCAT_MISMATCH, FailReason::Unusable);
        }
        let Some(proto) = n.protocols.iter().find(|p| p.auth_id == DHCHAP_AUTH_ID) else {
            return self.fail(failure::NOT_USABLE, FailReason::Unusable);
        };
        // The strongest the host offers and the target allows, as SPDK chooses.
        let Some(hash) = policy
            .digests
            .iter()
            .copied()
            .filter(|h| proto.hash_ids.contains(&h.id()))
            .max()
        else {
            return self.fail(failure::HASH_UNUSABLE, FailReason::Unusable);
        };
        let Some(group) = policy
            .groups
            .iter()
            .copied()
            .filter(|g| proto.dh_ids.contains(&g.id()))
            .max()
        else {
            return self.fail(failure::DHGROUP_UNUSABLE, FailReason::Unusable);
        };
        let creds = match creds() {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(%why, "DH-HMAC-CHAP: no usable key for this host");
                return self.fail(failure::FAILED, FailReason::Keys);
            }
        };
        let keys = KeyPair::generate(group);
        let c1 = random_bytes(hash.output_len());
        let (Some(c1), true) = (c1, group == DhGroup::Null || keys.is_some()) else {
            tracing::error!("DH-HMAC-CHAP: the OS gave no random numbers");
            return self.fail(failure::FAILED, FailReason::Unusable);
        };
        self.chosen = Some((hash, group));
        self.exchange = Some(Exchange {
            hash,
            group,
            c1,
            s1: seqnum(),
            keys,
            creds,
            r2: None,
        });
        self.step = Step::Challenge;
    }

    fn reply(&mut self, r: &Reply, now: Instant) {
        let Some(x) = self.exchange.as_mut() else {
            return self.fail(failure::INCORRECT_MESSAGE, FailReason::Protocol);
        };
        let hl = x.hash.output_len();
        if r.t_id != self.t_id || r.response.len() != hl {
            return self.fail(failure::INCORRECT_PAYLOAD, FailReason::Protocol);
        }
        let session_key = match (&x.keys, r.dh_value.is_empty()) {
            (None, true) => None,
            (None, false) | (Some(_), true) => {
                return self.fail(failure::INCORRECT_PAYLOAD, FailReason::Protocol);
            }
            (Some(k), false) => match k.shared_secret(&r.dh_value) {
                Ok(z) => Some(z),
                Err(_) => return self.fail(failure::DHGROUP_UNUSABLE, FailReason::Protocol),
            },
        };
        let creds = &x.creds;
        let transcript = |seqnum| Transcript {
            seqnum,
            t_id: self.t_id,
            sc_c: 0,
            hostnqn: &creds.hostnqn,
            subnqn: &creds.subnqn,
        };
        let Some(host_key) =
            chap::transform_secret(&creds.host.bytes, creds.host.transform, &creds.hostnqn)
        else {
            return self.fail(failure::FAILED, FailReason::Keys);
        };
        let ca1 = chap::augment_challenge(x.hash, &x.c1, session_key.as_deref().map(|z| &z[..]));
        let expected = chap::host_response(x.hash, &host_key, &ca1, &transcript(x.s1));
        if !chap::responses_match(&expected, &r.response) {
            return self.fail(failure::FAILED, FailReason::BadResponse);
        }
        if let Some(c2) = &r.challenge {
            let ctrl = creds
                .ctrl
                .as_ref()
                .and_then(|c| chap::transform_secret(&c.bytes, c.transform, &creds.subnqn));
            let Some(ctrl_key) = ctrl else {
                tracing::warn!(
                    "DH-HMAC-CHAP: the host asks the controller to authenticate, and no \
                     controller key (dhchap_ctrlr_key) is set for it"
                );
                return self.fail(failure::FAILED, FailReason::Keys);
            };
            if c2.len() != hl {
                return self.fail(failure::INCORRECT_PAYLOAD, FailReason::Protocol);
            }
            let ca2 = chap::augment_challenge(x.hash, c2, session_key.as_deref().map(|z| &z[..]));
            let r2 = chap::controller_response(x.hash, &ctrl_key, &ca2, &transcript(r.seqnum));
            x.r2 = Some(r2);
        }
        self.deadline = Some(now + self.step_timeout);
        self.step = Step::Success1;
    }

    /// An Authentication Receive: the controller's next message (Failure1 when none is due).
    pub fn on_receive(&mut self, now: Instant) -> Sent {
        if self.expired(now) && matches!(self.step, Step::Challenge | Step::Success1) {
            self.fail(failure::FAILED, FailReason::Timeout);
        }
        let t_id = self.t_id;
        match (self.step, self.exchange.as_mut()) {
            (Step::Challenge, Some(x)) => {
                self.step = Step::Reply;
                self.deadline = Some(now + self.step_timeout);
                Sent {
                    message: ControllerMessage::Challenge(Challenge {
                        t_id,
                        hash_id: x.hash.id(),
                        dh_id: x.group.id(),
                        seqnum: x.s1,
                        challenge: x.c1.clone(),
                        dh_value: x
                            .keys
                            .as_ref()
                            .map(|k| k.public().to_vec())
                            .unwrap_or_default(),
                    }),
                    authenticated: false,
                    failed: false,
                }
            }
            (Step::Success1, Some(x)) => {
                let hl = u8::try_from(x.hash.output_len()).unwrap_or(0);
                let response = x.r2.take().map(|r| r.to_vec());
                let bidirectional = response.is_some();
                let message = ControllerMessage::Success1 { t_id, hl, response };
                if bidirectional {
                    self.step = Step::Success2;
                    self.deadline = Some(now + self.step_timeout);
                } else {
                    self.step = Step::Completed;
                    self.deadline = None;
                    self.exchange = None;
                }
                Sent {
                    message,
                    authenticated: !bidirectional,
                    failed: false,
                }
            }
            (Step::Failure1(explanation), _) => self.failure1(explanation),
            _ => {
                self.failed.get_or_insert(FailReason::Protocol);
                self.failure1(failure::INCORRECT_MESSAGE)
            }
        }
    }

    fn failure1(&mut self, explanation: u8) -> Sent {
        self.step = Step::Failed;
        self.exchange = None;
        Sent {
            message: ControllerMessage::Failure1 {
                t_id: self.t_id,
                reason: failure::REASON_FAILED,
                explanation,
            },
            authenticated: false,
            failed: true,
        }
    }
}

/// Checks the SECP and SPSP fields of an Authentication Send/Receive: `Err` with the SQE byte
/// offset of the first wrong one.
pub fn check_protocol(secp: u8, spsp: [u8; 2]) -> Result<(), usize> {
    if secp != dhchap::AUTH_SECP {
        return Err(43);
    }
    if spsp[0] != dhchap::DHCHAP_SPSP[0] {
        return Err(41);
    }
    if spsp[1] != dhchap::DHCHAP_SPSP[1] {
        return Err(42);
    }
    Ok(())
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
