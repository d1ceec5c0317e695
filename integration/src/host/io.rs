//! The typed NVM I/O API of [`Queue`]: Read, Write (with FUA), Flush, Write Zeroes, Dataset
//! Management (deallocate) and Compare, addressed through a [`Namespace`] (NSID, block size,
//! size), plus Fabrics Disconnect of the queue.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::identify::IdentifyNamespace;
use lamina_protocol::nvme::{
    DatasetManagement, DsmRange, Flush, IoOpcode, ReadWrite, StatusCode, WriteZeroes,
};

use crate::host::core::{Command, Completion, Transfer};
use crate::host::error::{HostError, Violation};
use crate::host::fabrics::disconnect;
use crate::host::queue::Queue;

/// A namespace as the I/O API needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Namespace identifier.
    pub nsid: u32,
    /// Logical block size in bytes (of the LBA format in use).
    pub block_size: u32,
    /// Size in logical blocks (NSZE).
    pub blocks: u64,
    /// The Identify Namespace data it was built from.
    pub identify: IdentifyNamespace,
}

impl Namespace {
    /// Builds the handle from Identify Namespace data.
    pub fn from_identify(nsid: u32, identify: IdentifyNamespace) -> Result<Self, HostError> {
        let block_size = identify
            .current_format()
            .and_then(lamina_protocol::nvme::identify::LbaFormat::block_size)
            .ok_or_else(|| {
                HostError::Protocol(Violation::Identify(format!(
                    "namespace {nsid}: FLBAS {:#x} names no valid LBA format",
                    identify.flbas
                )))
            })?;
        Ok(Self {
            nsid,
            block_size,
            blocks: identify.nsze,
            identify,
        })
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
    }

    /// NLB (0's based) for `blocks` blocks, refusing 0 and more than 65536.
    pub fn nlb(blocks: u32) -> Result<u16, HostError> {
        blocks
            .checked_sub(1)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| HostError::InvalidRequest(format!("{blocks} blocks: must be 1..=65536")))
    }

    /// Blocks covered by `len` bytes, which must be a whole number of blocks.
    pub fn blocks_of(&self, len: usize) -> Result<u32, HostError> {
        let bs = usize::try_from(self.block_size).unwrap_or(usize::MAX);
        if len == 0 || !len.is_multiple_of(bs) {
            return Err(HostError::InvalidRequest(format!(
                "{len} bytes is not a whole number of {bs}-byte blocks"
            )));
        }
        u32::try_from(len / bs).map_err(|_| HostError::InvalidRequest("too many blocks".into()))
    }

    fn rw(
        &self,
        opcode: IoOpcode,
        slba: u64,
        blocks: u32,
        fua: bool,
    ) -> Result<ReadWrite, HostError> {
        Ok(ReadWrite {
            opcode,
            nsid: self.nsid,
            slba,
            nlb: Self::nlb(blocks)?,
            fua,
            ..ReadWrite::default()
        })
    }

    /// The Read command for `blocks` blocks at `slba`, reading into `buf`.
    pub fn read_command(
        &self,
        slba: u64,
        blocks: u32,
        buf: BytesMut,
    ) -> Result<Command, HostError> {
        let len = blocks
            .checked_mul(self.block_size)
            .ok_or_else(|| HostError::InvalidRequest("read too large".into()))?;
        let sqe = self.rw(IoOpcode::READ, slba, blocks, false)?.to_sqe();
        Ok(Command::with_transfer(
            sqe,
            Transfer::FromController { buf, len },
        ))
    }

    /// The Write command for `data` at `slba`.
    pub fn write_command(&self, slba: u64, data: Bytes, fua: bool) -> Result<Command, HostError> {
        let blocks = self.blocks_of(data.len())?;
        let sqe = self.rw(IoOpcode::WRITE, slba, blocks, fua)?.to_sqe();
        Ok(Command::with_transfer(sqe, Transfer::ToController(data)))
    }
}

impl Queue {
    /// Reads `blocks` blocks at `slba` into `buf` (cleared first) and returns it.
    pub async fn read(
        &self,
        ns: &Namespace,
        slba: u64,
        blocks: u32,
        buf: BytesMut,
    ) -> Result<BytesMut, HostError> {
        let mut done = self.io(ns.read_command(slba, blocks, buf)?).await?;
        Ok(done.take_data())
    }

    /// Writes `data` (whole blocks) at `slba`, with Force Unit Access if `fua`.
    pub async fn write(
        &self,
        ns: &Namespace,
        slba: u64,
        data: Bytes,
        fua: bool,
    ) -> Result<(), HostError> {
        self.io(ns.write_command(slba, data, fua)?)
            .await
            .map(|_| ())
    }

    /// Flush.
    pub async fn flush(&self, nsid: u32) -> Result<(), HostError> {
        let sqe = Flush { cid: 0, nsid }.to_sqe();
        self.io(Command::new(sqe)).await.map(|_| ())
    }

    /// Write Zeroes of `blocks` blocks at `slba` (`deac`: the range may be deallocated).
    pub async fn write_zeroes(
        &self,
        ns: &Namespace,
        slba: u64,
        blocks: u32,
        deac: bool,
        fua: bool,
    ) -> Result<(), HostError> {
        let sqe = WriteZeroes {
            nsid: ns.nsid,
            slba,
            nlb: Namespace::nlb(blocks)?,
            deac,
            fua,
            ..WriteZeroes::default()
        }
        .to_sqe();
        self.io(Command::new(sqe)).await.map(|_| ())
    }

    /// Dataset Management over `ranges` (1..=256), with the Deallocate attribute if
    /// `deallocate`.
    pub async fn dataset_management(
        &self,
        nsid: u32,
        ranges: &[DsmRange],
        deallocate: bool,
    ) -> Result<(), HostError> {
        let nr = ranges
            .len()
            .checked_sub(1)
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| HostError::InvalidRequest("DSM takes 1..=256 ranges".into()))?;
        let mut data = BytesMut::with_capacity(ranges.len() * 16);
        for r in ranges {
            r.encode(&mut data);
        }
        let sqe = DatasetManagement {
            nsid,
            nr,
            deallocate,
            ..DatasetManagement::default()
        }
        .to_sqe();
        let cmd = Command::with_transfer(sqe, Transfer::ToController(data.freeze()));
        self.io(cmd).await.map(|_| ())
    }

    /// Compare of `data` against the blocks at `slba`: `Ok(true)` when they match,
    /// `Ok(false)` on Compare Failure, an error otherwise.
    pub async fn compare(&self, ns: &Namespace, slba: u64, data: Bytes) -> Result<bool, HostError> {
        let blocks = ns.blocks_of(data.len())?;
        let sqe = ns.rw(IoOpcode::COMPARE, slba, blocks, false)?.to_sqe();
        let cmd = Command::with_transfer(sqe, Transfer::ToController(data));
        match self.io(cmd).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_status(StatusCode::COMPARE_FAILURE) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fabrics Disconnect of this queue, then closes the connection (also on failure).
    pub async fn disconnect(&self) -> Result<(), HostError> {
        let result = self
            .execute(disconnect())
            .await
            .and_then(Completion::into_result);
        self.close();
        result.map(|_| ())
    }

    async fn io(&self, cmd: Command) -> Result<Completion, HostError> {
        self.execute(cmd).await?.into_result()
    }
}
