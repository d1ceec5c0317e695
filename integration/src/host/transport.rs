//! Opening one NVMe/TCP connection: TCP connect with `TCP_NODELAY`, then the ICReq/ICResp
//! exchange, checked the way the Linux host checks it (`nvme_tcp_init_connection`): PFV 0,
//! CPDA 0, the digest bits exactly as asked, MAXH2CDATA at least 4096 and a multiple of 4.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use lamina_protocol::tcp::{Digests, IcReq, IcResp, Pda, TxParams};
use lamina_protocol::{Framer, FramerConfig, Pdu};
use tokio::net::TcpStream;

use crate::host::error::{HostError, Violation};
use crate::host::link::{Link, TlsPsk};
use crate::host::reader::{Filled, PduReader};

/// What the IC exchange settled for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Digests in force.
    pub digests: Digests,
    /// MAXH2CDATA announced by the controller.
    pub maxh2cdata: u32,
    /// Controller PDU data alignment (always 0 once accepted).
    pub cpda: Pda,
}

impl Negotiated {
    /// What this host honours when it sends.
    pub fn tx_params(&self) -> TxParams {
        TxParams {
            digests: self.digests,
            peer_pda: self.cpda,
        }
    }
}

/// What a connection asks for in its ICReq.
#[derive(Debug, Clone)]
pub(crate) struct IcParams {
    pub(crate) digests: Digests,
    pub(crate) hpda: Pda,
    /// Largest C2HData this host accepts in one PDU (the framer's limit).
    pub(crate) max_c2h_data: u32,
    pub(crate) timeout: Duration,
    /// A secure channel: TLS 1.3 with this PSK before the ICReq.
    pub(crate) tls: Option<TlsPsk>,
}

/// A connection whose IC exchange is done.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) link: Link,
    pub(crate) reader: PduReader,
    pub(crate) negotiated: Negotiated,
}

/// Connects to `addr` and runs the IC exchange, all within `params.timeout`.
pub(crate) async fn establish(addr: SocketAddr, params: IcParams) -> Result<Connection, HostError> {
    let op = "connect and ICReq/ICResp";
    let timeout = params.timeout;
    tokio::time::timeout(timeout, establish_inner(addr, params))
        .await
        .map_err(|_| HostError::Timeout { op, after: timeout })?
}

async fn establish_inner(addr: SocketAddr, params: IcParams) -> Result<Connection, HostError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| HostError::io("TCP connect", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| HostError::io("set TCP_NODELAY", e))?;
    let link = match params.tls.clone() {
        Some(psk) => Link::tls_connect(stream, psk).await?,
        None => Link::Plain(stream),
    };
    let req = IcReq {
        pfv: 0,
        hpda: params.hpda,
        digests: params.digests,
        // 0's based: one R2T in flight per command, as the Linux host asks.
        maxr2t: 0,
    };
    let mut out = BytesMut::with_capacity(req.encoded_len());
    req.encode(&mut out);
    link.write_all(&out)
        .await
        .map_err(|e| HostError::io("send ICReq", e))?;
    let mut config = FramerConfig::host();
    config.rx_pda = params.hpda;
    config.max_data_len = params.max_c2h_data;
    config.max_plen = config.plen_for_limits();
    let mut reader = PduReader::new(Framer::new(config), BytesMut::with_capacity(4096));
    let resp = receive_icresp(&link, &mut reader).await?;
    check_icresp(&req, &resp)?;
    reader.framer_mut().set_digests(resp.digests);
    Ok(Connection {
        link,
        reader,
        negotiated: Negotiated {
            digests: resp.digests,
            maxh2cdata: resp.maxh2cdata,
            cpda: resp.cpda,
        },
    })
}

async fn receive_icresp(link: &Link, reader: &mut PduReader) -> Result<IcResp, HostError> {
    loop {
        match reader.next_pdu() {
            Ok(Some(Pdu::IcResp(resp))) => return Ok(resp),
            Ok(Some(Pdu::C2hTermReq(t))) => {
                return Err(HostError::Terminated {
                    fes: t.fes,
                    fei: t.fei,
                });
            }
            Ok(Some(other)) => {
                return Err(HostError::Protocol(Violation::NotIcResp(other.pdu_type())));
            }
            Ok(None) => {}
            Err(e) => return Err(HostError::Protocol(Violation::Decode(e))),
        }
        if !link.has_pending_input() {
            link.tcp()
                .readable()
                .await
                .map_err(|e| HostError::io("receive ICResp", e))?;
        }
        match reader.fill(link) {
            Ok(Filled::Eof) => return Err(HostError::ConnectionClosed),
            Ok(_) => {}
            Err(e) => return Err(HostError::io("receive ICResp", e)),
        }
    }
}

//~ Linux nvme_tcp_init_connection(): the host refuses an ICResp whose PFV is not 0, whose
//~ digest bits differ from the ICReq's, whose CPDA is not 0, or whose MAXH2CDATA is below
//~ 4096 or not a multiple of 4 (the framer already rejects the last two while decoding).
pub(crate) fn check_icresp(req: &IcReq, resp: &IcResp) -> Result<(), HostError> {
    use lamina_protocol::tcp::{
        ICRESP_CPDA_OFFSET, ICRESP_DGST_OFFSET, ICRESP_MAXH2CDATA_OFFSET, ICRESP_PFV_OFFSET,
    };
    let reason = match resp.linux_host_rejects(req) {
        None => return Ok(()),
        Some(ICRESP_PFV_OFFSET) => "PFV is not 0",
        Some(ICRESP_CPDA_OFFSET) => "CPDA is not 0",
        Some(ICRESP_DGST_OFFSET) => "digests differ from the ICReq's",
        Some(ICRESP_MAXH2CDATA_OFFSET) => "MAXH2CDATA below 4096 or not a multiple of 4",
        Some(_) => "rejected",
    };
    Err(HostError::Protocol(Violation::IcResp(reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icresp_checks_follow_linux() {
        let req = IcReq {
            digests: Digests::BOTH,
            ..IcReq::default()
        };
        let good = IcResp {
            digests: Digests::BOTH,
            maxh2cdata: 131_072,
            ..IcResp::default()
        };
        check_icresp(&req, &good).unwrap();
        let cpda = IcResp {
            cpda: Pda(1),
            ..good
        };
        assert!(matches!(
            check_icresp(&req, &cpda),
            Err(HostError::Protocol(Violation::IcResp("CPDA is not 0")))
        ));
        let digests = IcResp {
            digests: Digests {
                header: true,
                data: false,
            },
            ..good
        };
        assert!(check_icresp(&req, &digests).is_err());
        let extra = IcResp {
            digests: Digests::BOTH,
            ..good
        };
        let plain = IcReq::default();
        assert!(
            check_icresp(&plain, &extra).is_err(),
            "digest not asked for"
        );
    }
}
