//! The typed admin command API of [`Controller`]: Identify (CNS 00h, 01h, 02h, 03h, 06h, 1Ch
//! and raw), Get Log Page, Get/Set Features (also with every field of the command), Keep Alive,
//! Asynchronous Event Request, Abort and Property Get/Set. Each method builds the SQE with the protocol crate's command views, runs
//! it on the admin queue within the command timeout, and turns a failed status into
//! [`HostError::Status`].

use std::future::Future;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::Property;
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::identify::{
    Cns, IDENTIFY_LEN, IdentifyController, IdentifyControllerNvm, IdentifyNamespace,
    IoCommandSetList, NsIdDescriptor, NsIdList,
};
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{
    Abort, AdminOpcode, AsyncEvent, GetFeatures, GetLogPage, Identify, SetFeatures, SimpleAdmin,
    Sqe,
};

use crate::host::controller::Controller;
use crate::host::core::{Command, Completion, Transfer, identify_command};
use crate::host::error::{HostError, Violation};
use crate::host::fabrics::{property_get, property_set};
use crate::host::io::Namespace;

fn decode_error(what: &str, e: impl std::fmt::Display) -> HostError {
    HostError::Protocol(Violation::Identify(format!("{what}: cannot decode: {e}")))
}

impl Controller {
    /// Runs `cmd` on the admin queue; a failed status is an error.
    pub async fn admin_command(&self, cmd: Command) -> Result<Completion, HostError> {
        self.admin().execute(cmd).await?.into_result()
    }

    /// Identify with any CNS; returns the 4096 bytes.
    pub async fn identify_raw(&self, cns: Cns, nsid: u32, csi: u8) -> Result<Bytes, HostError> {
        let mut done = self.admin_command(identify_command(cns, nsid, csi)).await?;
        let data = done.take_data().freeze();
        if data.len() != IDENTIFY_LEN {
            return Err(decode_error("Identify", format!("{} bytes", data.len())));
        }
        Ok(data)
    }

    /// Identify with every field of the command as given (CNS, NSID, CNTID, CSI); returns the
    /// 4096 bytes.
    pub async fn identify_with(&self, cmd: Identify) -> Result<Bytes, HostError> {
        let sqe = cmd.to_sqe();
        let mut done = self
            .admin_command(Command::with_transfer(sqe, Transfer::read(4096)))
            .await?;
        let data = done.take_data().freeze();
        if data.len() != IDENTIFY_LEN {
            return Err(decode_error("Identify", format!("{} bytes", data.len())));
        }
        Ok(data)
    }

    /// The I/O Command Set data structure of this controller (CNS 1Ch, CNTID FFFFh).
    pub async fn io_command_sets(&self) -> Result<IoCommandSetList, HostError> {
        let data = self
            .identify_with(Identify {
                cns: Cns::COMMAND_SET,
                cntid: 0xffff,
                ..Identify::default()
            })
            .await?;
        IoCommandSetList::decode(&data).map_err(|e| decode_error("I/O Command Set list", e))
    }

    /// Identify Controller (CNS 01h).
    pub async fn identify_controller(&self) -> Result<IdentifyController, HostError> {
        let data = self.identify_raw(Cns::CONTROLLER, 0, 0).await?;
        IdentifyController::decode(&data).map_err(|e| decode_error("Identify Controller", e))
    }

    /// Identify Namespace (CNS 00h).
    pub async fn identify_namespace(&self, nsid: u32) -> Result<IdentifyNamespace, HostError> {
        let data = self.identify_raw(Cns::NAMESPACE, nsid, 0).await?;
        IdentifyNamespace::decode(&data).map_err(|e| decode_error("Identify Namespace", e))
    }

    /// Active Namespace ID list (CNS 02h): active NSIDs greater than `after_nsid`.
    pub async fn active_namespaces(&self, after_nsid: u32) -> Result<Vec<u32>, HostError> {
        let data = self
            .identify_raw(Cns::ACTIVE_NS_LIST, after_nsid, 0)
            .await?;
        let list = NsIdList::decode(&data).map_err(|e| decode_error("NSID list", e))?;
        Ok(list.nsids)
    }

    /// Namespace Identification Descriptor list (CNS 03h).
    pub async fn namespace_descriptors(&self, nsid: u32) -> Result<Vec<NsIdDescriptor>, HostError> {
        let data = self.identify_raw(Cns::NS_ID_DESCRIPTORS, nsid, 0).await?;
        NsIdDescriptor::decode_list(&data).map_err(|e| decode_error("NS descriptors", e))
    }

    /// I/O command set specific Identify Controller for the NVM command set (CNS 06h, CSI 0).
    pub async fn identify_controller_nvm(&self) -> Result<IdentifyControllerNvm, HostError> {
        let data = self.identify_raw(Cns::CSI_CONTROLLER, 0, 0).await?;
        IdentifyControllerNvm::decode(&data).map_err(|e| decode_error("Identify NVM", e))
    }

    /// Identify Namespace of `nsid` as a [`Namespace`] handle for the I/O API.
    pub async fn namespace(&self, nsid: u32) -> Result<Namespace, HostError> {
        let id = self.identify_namespace(nsid).await?;
        Namespace::from_identify(nsid, id)
    }

    /// Get Log Page `lid` for `nsid` (FFFFFFFFh: controller-wide), `len` bytes (a multiple of
    /// 4) from byte `offset`; `lsp` and `rae` as the log page defines them.
    pub async fn get_log_page(
        &self,
        lid: LogPageId,
        nsid: u32,
        offset: u64,
        len: u32,
        lsp: u8,
        rae: bool,
    ) -> Result<BytesMut, HostError> {
        if len == 0 || !len.is_multiple_of(4) {
            return Err(HostError::InvalidRequest(format!(
                "log page length {len} is not a non-zero multiple of 4"
            )));
        }
        let sqe = GetLogPage {
            nsid,
            lid,
            lsp,
            rae,
            numd: len / 4 - 1,
            lpo: offset,
            ..GetLogPage::default()
        }
        .to_sqe();
        let mut done = self
            .admin_command(Command::with_transfer(sqe, Transfer::read(len)))
            .await?;
        Ok(done.take_data())
    }

    /// Get Features `fid` (`sel`: 0 current, 1 default, 2 saved, 3 capabilities); returns DW0.
    pub async fn get_features(
        &self,
        fid: FeatureId,
        sel: u8,
        cdw11: u32,
    ) -> Result<u32, HostError> {
        let sqe = GetFeatures {
            fid,
            sel,
            cdw11,
            ..GetFeatures::default()
        }
        .to_sqe();
        Ok(self.admin_command(Command::new(sqe)).await?.cqe.dw0)
    }

    /// Get Features for a feature that returns data (Timestamp: 8 bytes, Host Identifier: 16).
    pub async fn get_features_data(
        &self,
        fid: FeatureId,
        cdw11: u32,
        len: u32,
    ) -> Result<(u32, BytesMut), HostError> {
        let sqe = GetFeatures {
            fid,
            cdw11,
            ..GetFeatures::default()
        }
        .to_sqe();
        let mut done = self
            .admin_command(Command::with_transfer(sqe, Transfer::read(len)))
            .await?;
        Ok((done.cqe.dw0, done.take_data()))
    }

    /// Get Features with every field of the command as given, reading `len` bytes of data
    /// (0: none); returns DW0 and the data.
    pub async fn get_features_with(
        &self,
        cmd: GetFeatures,
        len: u32,
    ) -> Result<(u32, BytesMut), HostError> {
        let transfer = if len == 0 {
            Transfer::None
        } else {
            Transfer::read(len)
        };
        let mut done = self
            .admin_command(Command::with_transfer(cmd.to_sqe(), transfer))
            .await?;
        Ok((done.cqe.dw0, done.take_data()))
    }

    /// Set Features with every field of the command as given; returns DW0.
    pub async fn set_features_with(&self, cmd: SetFeatures) -> Result<u32, HostError> {
        let done = self.admin_command(Command::new(cmd.to_sqe())).await?;
        Ok(done.cqe.dw0)
    }

    /// Set Features `fid` to `cdw11` (`save`: SV); returns DW0.
    pub async fn set_features(
        &self,
        fid: FeatureId,
        cdw11: u32,
        save: bool,
    ) -> Result<u32, HostError> {
        self.set_features_data(fid, cdw11, save, Bytes::new()).await
    }

    /// Set Features with data (Timestamp, Host Identifier); returns DW0.
    pub async fn set_features_data(
        &self,
        fid: FeatureId,
        cdw11: u32,
        save: bool,
        data: Bytes,
    ) -> Result<u32, HostError> {
        let sqe = SetFeatures {
            fid,
            save,
            cdw11,
            ..SetFeatures::default()
        }
        .to_sqe();
        let transfer = if data.is_empty() {
            Transfer::None
        } else {
            Transfer::ToController(data)
        };
        let done = self
            .admin_command(Command::with_transfer(sqe, transfer))
            .await?;
        Ok(done.cqe.dw0)
    }

    /// Keep Alive.
    pub async fn keep_alive(&self) -> Result<(), HostError> {
        let sqe = simple(AdminOpcode::KEEP_ALIVE);
        self.admin_command(Command::new(sqe)).await.map(|_| ())
    }

    /// Submits an Asynchronous Event Request and returns a future of the event, which resolves
    /// when the controller reports one (there is no time limit; the future fails when the
    /// admin queue goes).
    pub async fn async_event_request(
        &self,
    ) -> Result<impl Future<Output = Result<AsyncEvent, HostError>> + Send + 'static, HostError>
    {
        let fut = self
            .admin()
            .start(Command::new(simple(AdminOpcode::ASYNC_EVENT_REQUEST)))
            .await?;
        Ok(async move {
            let done = fut.await?.into_result()?;
            Ok(AsyncEvent::from_dw0(done.cqe.dw0))
        })
    }

    /// Abort of command `cid` on queue `sqid`; returns DW0 (bit 0 set: not aborted).
    pub async fn abort(&self, sqid: u16, cid: u16) -> Result<u32, HostError> {
        let sqe = Abort {
            cid: 0,
            sqid,
            abort_cid: cid,
        }
        .to_sqe();
        Ok(self.admin_command(Command::new(sqe)).await?.cqe.dw0)
    }

    /// Property Get (8 bytes for CAP, 4 otherwise).
    pub async fn property_get(&self, property: Property) -> Result<u64, HostError> {
        let done = self.admin_command(property_get(property)).await?;
        Ok(done.cqe.result_u64())
    }

    /// Property Set.
    pub async fn property_set(&self, property: Property, value: u64) -> Result<(), HostError> {
        self.admin_command(property_set(property, value))
            .await
            .map(|_| ())
    }
}

fn simple(opcode: AdminOpcode) -> Sqe {
    SimpleAdmin { opcode, cid: 0 }.to_sqe()
}
