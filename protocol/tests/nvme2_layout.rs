//! The NVMe 2.0 structures Lamina added for command set selection and "supported and effects"
//! reporting: their sizes and field offsets against the numbers in the specifications'
//! figures (literals here, not the crate's constants), and golden bytes both ways.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use lamina_protocol::fabrics::{Cap, Cc, Crto, Property, PropertySize};
use lamina_protocol::nvme::identify::{
    ExtendedLbaFormat, IdentifyNamespaceIndependent, IdentifyNamespaceNvm, IoCommandSetList,
    IoCommandSetVector,
};
use lamina_protocol::nvme::log_page::{
    FeatureEffects, FeatureIdsEffects, LidSupport, LogPageId, NvmeMiCommandsEffects,
    SupportedLogPages,
};

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// `size` zero bytes with `pieces` (offset, bytes) written in.
fn at(size: usize, pieces: &[(usize, &[u8])]) -> Vec<u8> {
    let mut v = vec![0u8; size];
    for (off, bytes) in pieces {
        v[*off..*off + bytes.len()].copy_from_slice(bytes);
    }
    v
}

#[test]
fn identify_namespace_independent_golden() {
    //= NVMe Base 2.0, I/O Command Set Independent Identify Namespace: NSFEAT 0, NMIC 1,
    //= RESCAP 2, FPI 3, ANAGRPID 7:4, NSATTR 8, NVMSETID 11:10, ENDGID 13:12, NSTAT 14.
    let id = IdentifyNamespaceIndependent {
        nsfeat: 0x10,
        nmic: 1,
        rescap: 0x7e,
        fpi: 0x80,
        anagrpid: 0x0403_0201,
        nsattr: 1,
        nvmsetid: 0x0605,
        endgid: 0x0807,
        nstat: 1,
    };
    let golden = at(
        4096,
        &[
            (0, &[0x10, 1, 0x7e, 0x80, 1, 2, 3, 4, 1]),
            (10, &[5, 6, 7, 8, 1]),
        ],
    );
    let mut b = BytesMut::new();
    id.encode(&mut b);
    assert_eq!(&b[..], &golden[..]);
    assert_eq!(IdentifyNamespaceIndependent::decode(&golden).unwrap(), id);
    assert!(IdentifyNamespaceIndependent::decode(&golden[..4095]).is_err());
}

// NVM Command Set 1.0 §4.1.5.3
#[test]
fn identify_namespace_nvm_golden() {
    //= NVM Command Set 1.0, I/O Command Set Specific Identify Namespace (NVM): LBSTM 7:0,
    //= PIC 8, ELBAF0 at 12, ELBAF63 at 264; ELBAF: STS 6:0, PIF 8:7.
    let mut id = IdentifyNamespaceNvm {
        lbstm: 0x0807_0605_0403_0201,
        pic: 0b11,
        ..IdentifyNamespaceNvm::default()
    };
    id.elbaf[0] = ExtendedLbaFormat { sts: 16, pif: 1 };
    id.elbaf[63] = ExtendedLbaFormat { sts: 0, pif: 2 };
    let golden = at(
        4096,
        &[
            (0, &[1, 2, 3, 4, 5, 6, 7, 8, 0b11]),
            (12, &[0x90, 0, 0, 0]),
            (264, &[0x00, 1, 0, 0]),
        ],
    );
    let mut b = BytesMut::new();
    id.encode(&mut b);
    assert_eq!(&b[..], &golden[..]);
    assert_eq!(IdentifyNamespaceNvm::decode(&golden).unwrap(), id);
    let mut b = BytesMut::new();
    IdentifyNamespaceNvm::default().encode(&mut b);
    assert!(b.iter().all(|x| *x == 0), "what Lamina serves: all zero");
}

#[test]
fn io_command_set_list_golden() {
    //= NVMe Base 2.0, I/O Command Set data structure (CNS 1Ch): 512 vectors of 8 bytes; bit
    //= N of a vector is the command set with CSI N; index 0 first.
    let list = IoCommandSetList {
        vectors: vec![IoCommandSetVector::NVM_ONLY, IoCommandSetVector(0b101)],
    };
    let golden = at(4096, &[(0, &[1, 0, 0, 0, 0, 0, 0, 0, 0b101])]);
    let mut b = BytesMut::new();
    list.encode(&mut b);
    assert_eq!(&b[..], &golden[..]);
    assert_eq!(IoCommandSetList::decode(&golden).unwrap(), list);
    let full = IoCommandSetList {
        vectors: vec![IoCommandSetVector(1); 600],
    };
    let mut b = BytesMut::new();
    full.encode(&mut b);
    assert_eq!(b.len(), 4096, "vectors past 512 are dropped");
    assert_eq!(IoCommandSetList::decode(&b).unwrap().vectors.len(), 512);
}

#[test]
fn supported_log_pages_golden() {
    //= NVMe Base 2.0, Supported Log Pages: one 4-byte entry per LID, LSUPP bit 0, IOS bit 1.
    let mut log = SupportedLogPages::default();
    log.lids[0x00] = LidSupport(LidSupport::LSUPP);
    log.lids[0x12] = LidSupport(LidSupport::LSUPP);
    log.lids[0x70] = LidSupport(LidSupport::LSUPP | LidSupport::IOS);
    let golden = at(1024, &[(0, &[1]), (0x48, &[1]), (0x1c0, &[3])]);
    let mut b = BytesMut::new();
    log.encode(&mut b);
    assert_eq!(&b[..], &golden[..]);
    let back = SupportedLogPages::decode(&golden).unwrap();
    assert_eq!(back, log);
    assert_eq!(back.supported(), vec![0x00, 0x12, 0x70]);
    assert_eq!(
        (
            LogPageId::FEATURE_IDS_EFFECTS.0,
            LogPageId::NVME_MI_EFFECTS.0
        ),
        (0x12, 0x13)
    );
}

#[test]
fn feature_ids_effects_golden() {
    //= NVMe Base 2.0, Feature Identifiers Supported and Effects: one 4-byte entry per FID,
    //= FSUPP bit 0, FSP 31:20 (NSCPE bit 20, CSCPE bit 21, NSSCPE bit 25).
    let mut log = FeatureIdsEffects::default();
    log.fids[0x05] = FeatureEffects(FeatureEffects::FSUPP | FeatureEffects::NSCPE);
    log.fids[0x19] = FeatureEffects(FeatureEffects::FSUPP | FeatureEffects::CSCPE);
    let golden = at(1024, &[(0x14, &[1, 0, 0x10, 0]), (0x64, &[1, 0, 0x20, 0])]);
    let mut b = BytesMut::new();
    log.encode(&mut b);
    assert_eq!(&b[..], &golden[..]);
    let back = FeatureIdsEffects::decode(&golden).unwrap();
    assert_eq!(back.supported(), vec![0x05, 0x19]);
    assert_eq!(le32(&golden, 0x64), 0x0020_0001);
    assert_eq!(FeatureEffects::NSSCPE, 1 << 25);
}

#[test]
fn nvme_mi_effects_layout() {
    let mut log = NvmeMiCommandsEffects::default();
    log.commands[255] = 1;
    let mut b = BytesMut::new();
    log.encode(&mut b);
    assert_eq!((b.len(), le32(&b, 1020)), (4096, 1));
    assert_eq!(NvmeMiCommandsEffects::decode(&b).unwrap(), log);
}

#[test]
fn registers_for_command_set_selection() {
    //= NVMe Base 2.0: CAP.CSS is bits 44:37 (bit 43 = "one or more I/O command sets"),
    //= CAP.CRMS bits 60:59; CC.CSS bits 6:4; CRTO at offset 68h, 4 bytes.
    let cap = Cap::new(0, 0, Cap::CSS_IO_COMMAND_SETS, 0, 0).with(Cap::CRWMS | Cap::CRIMS);
    assert_eq!(cap.0, (1 << 43) | (1 << 59) | (1 << 60) | (1 << 16));
    assert_eq!(Cc::enable(Cc::CSS_ALL_IO, 0).0 & 0x70, 0x60);
    assert_eq!(
        (Property::CRTO.0, Property::CRTO.size()),
        (0x68, Some(PropertySize::Four))
    );
    assert_eq!(Crto::new(0x0102, 0x0304).0, 0x0304_0102);
}
