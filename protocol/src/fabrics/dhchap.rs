//! The DH-HMAC-CHAP messages (NVMe Base 2.x, Authentication Protocols): what a host sends in
//! Authentication Send (Negotiate, Reply, Success2, Failure2) and what a controller returns in
//! Authentication Receive (Challenge, Success1, Failure1), decoded and encoded. Every message
//! opens with AUTH_TYPE and AUTH_ID and carries the transaction identifier T_ID at bytes 4..6.

use bytes::{BufMut as _, BytesMut};

use crate::wire::{Reader, StructDecodeError, Writer};

/// SECP of Authentication Send/Receive for NVMe in-band authentication.
pub const AUTH_SECP: u8 = 0xe9;
/// SPSP0 and SPSP1 of DH-HMAC-CHAP's Authentication Send/Receive.
pub const DHCHAP_SPSP: [u8; 2] = [0x01, 0x01];

/// AUTH_TYPE of the messages common to every protocol (Negotiate, Failure1/2).
pub const AUTH_TYPE_COMMON: u8 = 0x00;
/// AUTH_TYPE of DH-HMAC-CHAP's own messages.
pub const AUTH_TYPE_DHCHAP: u8 = 0x01;
/// AUTH_ID of the protocol descriptor for DH-HMAC-CHAP.
pub const DHCHAP_AUTH_ID: u8 = 0x01;

/// AUTH_ID of each message.
pub mod message_id {
    /// AUTH_Negotiate.
    pub const NEGOTIATE: u8 = 0x00;
    /// DH-HMAC-CHAP_Challenge.
    pub const CHALLENGE: u8 = 0x01;
    /// DH-HMAC-CHAP_Reply.
    pub const REPLY: u8 = 0x02;
    /// DH-HMAC-CHAP_Success1.
    pub const SUCCESS1: u8 = 0x03;
    /// DH-HMAC-CHAP_Success2.
    pub const SUCCESS2: u8 = 0x04;
    /// AUTH_Failure2 (host to controller).
    pub const FAILURE2: u8 = 0xf0;
    /// AUTH_Failure1 (controller to host).
    pub const FAILURE1: u8 = 0xf1;
}

/// Reason code explanations of AUTH_Failure1/2 (reason code 01h, authentication failure).
pub mod failure {
    /// Reason code: authentication failure.
    pub const REASON_FAILED: u8 = 0x01;
    /// Authentication failed.
    pub const FAILED: u8 = 0x01;
    /// Authentication protocol not usable.
    pub const NOT_USABLE: u8 = 0x02;
    /// Secure channel concatenation mismatch.
    pub const CONCAT_MISMATCH: u8 = 0x03;
    /// Hash function not usable.
    pub const HASH_UNUSABLE: u8 = 0x04;
    /// DH group not usable.
    pub const DHGROUP_UNUSABLE: u8 = 0x05;
    /// Incorrect payload.
    pub const INCORRECT_PAYLOAD: u8 = 0x06;
    /// Incorrect protocol message.
    pub const INCORRECT_MESSAGE: u8 = 0x07;
}

/// One protocol descriptor of AUTH_Negotiate: DH-HMAC-CHAP's lists the hash functions and DH
/// groups the host accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtocolDescriptor {
    /// AUTHID (01h: DH-HMAC-CHAP).
    pub auth_id: u8,
    /// Hash function identifiers (HALEN of them).
    pub hash_ids: Vec<u8>,
    /// DH group identifiers (DHLEN of them).
    pub dh_ids: Vec<u8>,
}

//~ NVMe Base 2.x, AUTH_Negotiate protocol descriptor: AUTHID (0), reserved (1), HALEN (2),
//~ DHLEN (3), IDList (4..64): hash identifiers from byte 4, DH group identifiers from byte 34.
impl ProtocolDescriptor {
    /// Bytes of one descriptor.
    pub const LEN: usize = 64;
    const HASH_LIST: usize = 4;
    const DH_LIST: usize = 34;
    const MAX_IDS: usize = 30;

    fn decode(r: &Reader<'_>, at: usize) -> Result<Self, StructDecodeError> {
        let halen = usize::from(r.u8(at + 2)?);
        let dhlen = usize::from(r.u8(at + 3)?);
        if halen > Self::MAX_IDS {
            return Err(r.invalid("HALEN", at + 2));
        }
        if dhlen > Self::MAX_IDS {
            return Err(r.invalid("DHLEN", at + 3));
        }
        Ok(Self {
            auth_id: r.u8(at)?,
            hash_ids: r.slice(at + Self::HASH_LIST, halen)?.to_vec(),
            dh_ids: r.slice(at + Self::DH_LIST, dhlen)?.to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>, at: usize) {
        let n = |v: &[u8]| u8::try_from(v.len().min(Self::MAX_IDS)).unwrap_or(0);
        w.u8(at, self.auth_id);
        w.u8(at + 2, n(&self.hash_ids));
        w.u8(at + 3, n(&self.dh_ids));
        w.bytes(
            at + Self::HASH_LIST,
            &self.hash_ids[..self.hash_ids.len().min(Self::MAX_IDS)],
        );
        w.bytes(
            at + Self::DH_LIST,
            &self.dh_ids[..self.dh_ids.len().min(Self::MAX_IDS)],
        );
    }
}

/// AUTH_Negotiate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Negotiate {
    /// Transaction identifier.
    pub t_id: u16,
    /// Secure channel concatenation (0: none).
    pub sc_c: u8,
    /// The protocols the host offers.
    pub protocols: Vec<ProtocolDescriptor>,
}

/// DH-HMAC-CHAP_Reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Transaction identifier.
    pub t_id: u16,
    /// The host's response R1 (HL bytes).
    pub response: Vec<u8>,
    /// The host's challenge C2 for the controller, when it asks for bidirectional
    /// authentication (CVALID set).
    pub challenge: Option<Vec<u8>>,
    /// Sequence number S2 of the host's challenge (0 when there is none).
    pub seqnum: u32,
    /// The host's DH public value (empty with the null group).
    pub dh_value: Vec<u8>,
}

/// A message a host sends with Authentication Send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMessage {
    /// AUTH_Negotiate.
    Negotiate(Negotiate),
    /// DH-HMAC-CHAP_Reply.
    Reply(Reply),
    /// DH-HMAC-CHAP_Success2 (the host accepted the controller's response).
    Success2 {
        /// Transaction identifier.
        t_id: u16,
    },
    /// AUTH_Failure2 (the host refused the controller's response).
    Failure2 {
        /// Transaction identifier.
        t_id: u16,
        /// Reason code.
        reason: u8,
        /// Reason code explanation.
        explanation: u8,
    },
}

//~ NVMe Base 2.x: AUTH_Negotiate is AUTH_TYPE (0), AUTH_ID (1), reserved (2..4), T_ID (4..6),
//~ SC_C (6), NAPD (7), then NAPD 64-byte descriptors. DH-HMAC-CHAP_Reply is AUTH_TYPE, AUTH_ID,
//~ reserved, T_ID (4..6), HL (6), reserved (7), CVALID (8), reserved (9), DHVLEN (10..12),
//~ SEQNUM (12..16), then RVAL (HL), CVAL (HL), DHV (DHVLEN). Success2 is 16 bytes with T_ID at
//~ 4; Failure1/2 are AUTH_TYPE, AUTH_ID, reserved, T_ID, REASON CODE (6), EXPLANATION (7).
const HEADER: usize = 4;
const REPLY_LEN: usize = 16;
const SUCCESS_LEN: usize = 16;
const FAILURE_LEN: usize = 8;
const NEGOTIATE_LEN: usize = 8;

impl HostMessage {
    /// Decodes an Authentication Send payload.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        const S: &str = "DH-HMAC-CHAP message";
        let r = Reader::new(src, S, HEADER)?;
        let (auth_type, auth_id) = (r.u8(0)?, r.u8(1)?);
        match (auth_type, auth_id) {
            (AUTH_TYPE_COMMON, message_id::NEGOTIATE) => {
                let r = Reader::new(src, "AUTH_Negotiate", NEGOTIATE_LEN)?;
                let napd = usize::from(r.u8(7)?);
                let protocols = (0..napd)
                    .map(|i| {
                        ProtocolDescriptor::decode(&r, NEGOTIATE_LEN + i * ProtocolDescriptor::LEN)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::Negotiate(Negotiate {
                    t_id: r.u16(4)?,
                    sc_c: r.u8(6)?,
                    protocols,
                }))
            }
            (AUTH_TYPE_DHCHAP, message_id::REPLY) => {
                let r = Reader::new(src, "DH-HMAC-CHAP_Reply", REPLY_LEN)?;
                let hl = usize::from(r.u8(6)?);
                let cvalid = r.u8(8)? != 0;
                let dhvlen = usize::from(r.u16(10)?);
                let response = r.slice(REPLY_LEN, hl)?.to_vec();
                let cval = r.slice(REPLY_LEN + hl, hl)?;
                let dh_value = r.slice(REPLY_LEN + 2 * hl, dhvlen)?.to_vec();
                Ok(Self::Reply(Reply {
                    t_id: r.u16(4)?,
                    response,
                    challenge: cvalid.then(|| cval.to_vec()),
                    seqnum: r.u32(12)?,
                    dh_value,
                }))
            }
            (AUTH_TYPE_DHCHAP, message_id::SUCCESS2) => {
                let r = Reader::new(src, "DH-HMAC-CHAP_Success2", SUCCESS_LEN)?;
                Ok(Self::Success2 { t_id: r.u16(4)? })
            }
            (AUTH_TYPE_COMMON, message_id::FAILURE2) => {
                let r = Reader::new(src, "AUTH_Failure2", FAILURE_LEN)?;
                Ok(Self::Failure2 {
                    t_id: r.u16(4)?,
                    reason: r.u8(6)?,
                    explanation: r.u8(7)?,
                })
            }
            (AUTH_TYPE_COMMON | AUTH_TYPE_DHCHAP, _) => Err(r.invalid("AUTH_ID", 1)),
            _ => Err(r.invalid("AUTH_TYPE", 0)),
        }
    }

    /// Encodes the message (what a host sends).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Negotiate(n) => {
                let napd = n.protocols.len().min(usize::from(u8::MAX));
                let mut w = Writer::append(dst, NEGOTIATE_LEN + napd * ProtocolDescriptor::LEN);
                w.u8(0, AUTH_TYPE_COMMON);
                w.u8(1, message_id::NEGOTIATE);
                w.u16(4, n.t_id);
                w.u8(6, n.sc_c);
                w.u8(7, u8::try_from(napd).unwrap_or(u8::MAX));
                for (i, p) in n.protocols.iter().take(napd).enumerate() {
                    p.encode(&mut w, NEGOTIATE_LEN + i * ProtocolDescriptor::LEN);
                }
            }
            Self::Reply(r) => {
                let hl = r.response.len();
                let mut w = Writer::append(dst, REPLY_LEN);
                w.u8(0, AUTH_TYPE_DHCHAP);
                w.u8(1, message_id::REPLY);
                w.u16(4, r.t_id);
                w.u8(6, u8::try_from(hl).unwrap_or(0));
                w.u8(8, u8::from(r.challenge.is_some()));
                w.u16(10, u16::try_from(r.dh_value.len()).unwrap_or(0));
                w.u32(12, r.seqnum);
                dst.put_slice(&r.response);
                match &r.challenge {
                    Some(c) => dst.put_slice(c),
                    None => dst.put_bytes(0, hl),
                }
                dst.put_slice(&r.dh_value);
            }
            Self::Success2 { t_id } => {
                let mut w = Writer::append(dst, SUCCESS_LEN);
                w.u8(0, AUTH_TYPE_DHCHAP);
                w.u8(1, message_id::SUCCESS2);
                w.u16(4, *t_id);
            }
            Self::Failure2 {
                t_id,
                reason,
                explanation,
            } => encode_failure(dst, message_id::FAILURE2, *t_id, *reason, *explanation),
        }
    }
}

fn encode_failure(dst: &mut BytesMut, id: u8, t_id: u16, reason: u8, explanation: u8) {
    let mut w = Writer::append(dst, FAILURE_LEN);
    w.u8(0, AUTH_TYPE_COMMON);
    w.u8(1, id);
    w.u16(4, t_id);
    w.u8(6, reason);
    w.u8(7, explanation);
}

/// DH-HMAC-CHAP_Challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// Transaction identifier.
    pub t_id: u16,
    /// The hash function chosen.
    pub hash_id: u8,
    /// The DH group chosen.
    pub dh_id: u8,
    /// Sequence number S1.
    pub seqnum: u32,
    /// The challenge C1 (HL bytes).
    pub challenge: Vec<u8>,
    /// The controller's DH public value (empty with the null group).
    pub dh_value: Vec<u8>,
}

/// A message a controller returns with Authentication Receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerMessage {
    /// DH-HMAC-CHAP_Challenge.
    Challenge(Challenge),
    /// DH-HMAC-CHAP_Success1, with the controller's response R2 when the host asked for one.
    Success1 {
        /// Transaction identifier.
        t_id: u16,
        /// HL: the hash length.
        hl: u8,
        /// The response R2 (RVALID set), if the host sent a challenge.
        response: Option<Vec<u8>>,
    },
    /// AUTH_Failure1.
    Failure1 {
        /// Transaction identifier.
        t_id: u16,
        /// Reason code.
        reason: u8,
        /// Reason code explanation.
        explanation: u8,
    },
}

//~ NVMe Base 2.x: DH-HMAC-CHAP_Challenge is AUTH_TYPE, AUTH_ID, reserved, T_ID (4..6), HL (6),
//~ reserved (7), HASHID (8), DHGID (9), DHVLEN (10..12), SEQNUM (12..16), CVAL (HL), DHV
//~ (DHVLEN). Success1 is AUTH_TYPE, AUTH_ID, reserved, T_ID (4..6), HL (6), reserved (7),
//~ RVALID (8), reserved (9..16), RVAL (HL).
impl ControllerMessage {
    /// Encodes the message (what a controller returns).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Challenge(c) => {
                let mut w = Writer::append(dst, REPLY_LEN);
                w.u8(0, AUTH_TYPE_DHCHAP);
                w.u8(1, message_id::CHALLENGE);
                w.u16(4, c.t_id);
                w.u8(6, u8::try_from(c.challenge.len()).unwrap_or(0));
                w.u8(8, c.hash_id);
                w.u8(9, c.dh_id);
                w.u16(10, u16::try_from(c.dh_value.len()).unwrap_or(0));
                w.u32(12, c.seqnum);
                dst.put_slice(&c.challenge);
                dst.put_slice(&c.dh_value);
            }
            Self::Success1 { t_id, hl, response } => {
                let mut w = Writer::append(dst, SUCCESS_LEN);
                w.u8(0, AUTH_TYPE_DHCHAP);
                w.u8(1, message_id::SUCCESS1);
                w.u16(4, *t_id);
                w.u8(6, *hl);
                w.u8(8, u8::from(response.is_some()));
                if let Some(r) = response {
                    dst.put_slice(r);
                }
            }
            Self::Failure1 {
                t_id,
                reason,
                explanation,
            } => encode_failure(dst, message_id::FAILURE1, *t_id, *reason, *explanation),
        }
    }

    /// Decodes an Authentication Receive payload (what a host reads).
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "DH-HMAC-CHAP message", HEADER)?;
        match (r.u8(0)?, r.u8(1)?) {
            (AUTH_TYPE_DHCHAP, message_id::CHALLENGE) => {
                let r = Reader::new(src, "DH-HMAC-CHAP_Challenge", REPLY_LEN)?;
                let hl = usize::from(r.u8(6)?);
                let dhvlen = usize::from(r.u16(10)?);
                Ok(Self::Challenge(Challenge {
                    t_id: r.u16(4)?,
                    hash_id: r.u8(8)?,
                    dh_id: r.u8(9)?,
                    seqnum: r.u32(12)?,
                    challenge: r.slice(REPLY_LEN, hl)?.to_vec(),
                    dh_value: r.slice(REPLY_LEN + hl, dhvlen)?.to_vec(),
                }))
            }
            (AUTH_TYPE_DHCHAP, message_id::SUCCESS1) => {
                let r = Reader::new(src, "DH-HMAC-CHAP_Success1", SUCCESS_LEN)?;
                let hl = r.u8(6)?;
                let response = if r.u8(8)? == 0 {
                    None
                } else {
                    Some(r.slice(SUCCESS_LEN, usize::from(hl))?.to_vec())
                };
                Ok(Self::Success1 {
                    t_id: r.u16(4)?,
                    hl,
                    response,
                })
            }
            (AUTH_TYPE_COMMON, message_id::FAILURE1) => {
                let r = Reader::new(src, "AUTH_Failure1", FAILURE_LEN)?;
                Ok(Self::Failure1 {
                    t_id: r.u16(4)?,
                    reason: r.u8(6)?,
                    explanation: r.u8(7)?,
                })
            }
            (AUTH_TYPE_COMMON | AUTH_TYPE_DHCHAP, _) => Err(r.invalid("AUTH_ID", 1)),
            _ => Err(r.invalid("AUTH_TYPE", 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_host(m: &HostMessage) -> BytesMut {
        let mut b = BytesMut::new();
        m.encode(&mut b);
        assert_eq!(&HostMessage::decode(&b).unwrap(), m);
        b
    }

    #[test]
    fn negotiate_layout() {
        let m = HostMessage::Negotiate(Negotiate {
            t_id: 0x1234,
            sc_c: 0,
            protocols: vec![ProtocolDescriptor {
                auth_id: DHCHAP_AUTH_ID,
                hash_ids: vec![1, 2, 3],
                dh_ids: vec![0, 1, 2, 3, 4, 5],
            }],
        });
        let b = round_host(&m);
        assert_eq!(b.len(), 8 + 64);
        assert_eq!(&b[..8], &[0, 0, 0, 0, 0x34, 0x12, 0, 1]);
        assert_eq!(&b[8..12], &[1, 0, 3, 6]);
        assert_eq!(&b[12..15], &[1, 2, 3]);
        assert_eq!(&b[42..48], &[0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn reply_layout_with_and_without_a_host_challenge() {
        let one_way = HostMessage::Reply(Reply {
            t_id: 7,
            response: vec![0xaa; 32],
            challenge: None,
            seqnum: 0,
            dh_value: vec![],
        });
        let b = round_host(&one_way);
        assert_eq!(b.len(), 16 + 64, "CVAL is present (zeros) even when unused");
        assert_eq!(b[6], 32);
        assert_eq!(b[8], 0);
        let two_way = HostMessage::Reply(Reply {
            t_id: 7,
            response: vec![0xaa; 48],
            challenge: Some(vec![0xbb; 48]),
            seqnum: 0x0102_0304,
            dh_value: vec![0xcc; 256],
        });
        let b = round_host(&two_way);
        assert_eq!(b.len(), 16 + 96 + 256);
        assert_eq!(&b[10..16], &[0, 1, 4, 3, 2, 1]);
    }

    #[test]
    fn truncated_and_unknown_messages_are_errors() {
        let mut b = BytesMut::new();
        HostMessage::Reply(Reply {
            t_id: 1,
            response: vec![1; 32],
            challenge: None,
            seqnum: 0,
            dh_value: vec![2; 256],
        })
        .encode(&mut b);
        for cut in [0, 3, 15, 16, 47, b.len() - 1] {
            assert!(HostMessage::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(HostMessage::decode(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(HostMessage::decode(&[1, 0x33, 0, 0, 0, 0, 0, 0]).is_err());
        // NAPD says two descriptors, one is there.
        let mut n = BytesMut::new();
        HostMessage::Negotiate(Negotiate {
            protocols: vec![ProtocolDescriptor::default()],
            ..Negotiate::default()
        })
        .encode(&mut n);
        n[7] = 2;
        assert!(HostMessage::decode(&n).is_err());
        n[7] = 1;
        n[10] = 31;
        assert!(HostMessage::decode(&n).is_err(), "HALEN above 30");
    }

    #[test]
    fn controller_messages_round_trip() {
        for m in [
            ControllerMessage::Challenge(Challenge {
                t_id: 3,
                hash_id: 1,
                dh_id: 1,
                seqnum: 9,
                challenge: vec![5; 32],
                dh_value: vec![6; 256],
            }),
            ControllerMessage::Success1 {
                t_id: 3,
                hl: 32,
                response: Some(vec![7; 32]),
            },
            ControllerMessage::Success1 {
                t_id: 3,
                hl: 32,
                response: None,
            },
            ControllerMessage::Failure1 {
                t_id: 3,
                reason: failure::REASON_FAILED,
                explanation: failure::HASH_UNUSABLE,
            },
        ] {
            let mut b = BytesMut::new();
            m.encode(&mut b);
            assert_eq!(ControllerMessage::decode(&b).unwrap(), m);
        }
        let mut b = BytesMut::new();
        ControllerMessage::Failure1 {
            t_id: 0x0201,
            reason: 1,
            explanation: 5,
        }
        .encode(&mut b);
        assert_eq!(&b[..], &[0, 0xf1, 0, 0, 1, 2, 1, 5]);
    }
}
