//! Advertised equals served, on every controller type (issue 13 §1, §2): an I/O controller of
//! an NVM subsystem and a discovery controller are each walked over every log page (all 256
//! LIDs), every feature (all 256 FIDs) and every Identify CNS (all 256). What Identify
//! Controller (LPA, OAES, VER), CAP (CSS) and the Supported Log Pages and Feature Identifiers
//! Supported and Effects log pages promise, and what NVMe 2.0 makes mandatory for what CAP
//! and VER claim, must be served; everything else must be refused with Invalid Field in
//! Command. CC.CSS 110b must enable the controller and a reserved CSS must fail it.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::BTreeSet;
use std::time::Duration;

use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{ConnectOptions, Controller, HostError};
use lamina_protocol::fabrics::{Cap, Cc, Crto, Csts, Property, Vs};
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::identify::{
    Cns, IdentifyNamespaceIndependent, IdentifyNamespaceNvm, IoCommandSetVector, NsIdDescriptor,
};
use lamina_protocol::nvme::log_page::{
    CommandsSupportedEffects, FeatureEffects, FeatureIdsEffects, LogPageId, SupportedLogPages,
};
use lamina_protocol::nvme::{DISCOVERY_NQN, GetFeatures, Identify, SetFeatures, StatusCode};

/// The log pages a controller must serve: what LPA, OAES and VER promise, plus what log 00h
/// lists. Returns (must be served, log 00h's list).
async fn promised_log_pages(ctrl: &Controller, discovery: bool) -> BTreeSet<u8> {
    let id = ctrl.identity();
    let raw = ctrl
        .get_log_page(
            LogPageId::SUPPORTED_LOG_PAGES,
            0xffff_ffff,
            0,
            1024,
            0,
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("log 00h (Supported Log Pages) refused: {e}"));
    let listed: BTreeSet<u8> = SupportedLogPages::decode(&raw)
        .unwrap()
        .supported()
        .into_iter()
        .collect();
    let mut must: BTreeSet<u8> = [0x00, 0x01, 0x12].into();
    if id.lpa & (1 << 1) != 0 {
        must.insert(0x05);
    }
    if id.lpa & (1 << 5) != 0 {
        must.extend([0x00, 0x12, 0x13]);
    }
    if id.oaes & (1 << 8) != 0 {
        must.insert(0x04);
    }
    if id.oaes & (1 << 31) != 0 || discovery {
        must.insert(0x70);
    }
    if !discovery {
        //= NVMe Base 2.0, I/O Controller Log Page Support: Supported Log Pages, Error
        //= Information, SMART / Health, Firmware Slot, Commands Supported and Effects and
        //= Feature Identifiers Supported and Effects are mandatory.
        must.extend([0x02, 0x03, 0x05]);
    }
    for lid in &must {
        assert!(
            listed.contains(lid),
            "LID {lid:#04x} is promised but not in log 00h"
        );
    }
    listed
}

async fn walk_log_pages(ctrl: &Controller, what: &str, listed: &BTreeSet<u8>) {
    for lid in 0..=u8::MAX {
        // 512 bytes of every page; the Discovery log keeps its RAE (no AEN to rearm here).
        let got = ctrl
            .get_log_page(LogPageId(lid), 0xffff_ffff, 0, 512, 0, true)
            .await;
        match (listed.contains(&lid), got) {
            (true, Ok(data)) => assert_eq!(data.len(), 512, "{what}: LID {lid:#04x}"),
            (true, Err(e)) => panic!("{what}: LID {lid:#04x} is advertised but refused: {e}"),
            (false, Ok(_)) => panic!("{what}: LID {lid:#04x} is served but not advertised"),
            (false, Err(e)) => assert!(
                e.is_status(StatusCode::INVALID_FIELD),
                "{what}: LID {lid:#04x}: {e}"
            ),
        }
    }
}

/// Data a Get Features of `fid` returns (Timestamp 8 bytes, Host Identifier 16), and CDW11.
fn feature_data(fid: u8) -> (u32, u32) {
    match fid {
        0x0e => (8, 0),
        0x81 => (16, 1),
        _ => (0, 0),
    }
}

async fn walk_features(ctrl: &Controller, what: &str, discovery: bool) -> BTreeSet<u8> {
    let raw = ctrl
        .get_log_page(
            LogPageId::FEATURE_IDS_EFFECTS,
            0xffff_ffff,
            0,
            1024,
            0,
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: log 12h refused: {e}"));
    let log = FeatureIdsEffects::decode(&raw).unwrap();
    let listed: BTreeSet<u8> = log.supported().into_iter().collect();
    //= NVMe Base 2.0, I/O Controller Feature Support: Arbitration, Power Management,
    //= Temperature Threshold, Number of Queues and Asynchronous Event Configuration are
    //= mandatory, with (NVM Command Set) Error Recovery and Write Atomicity Normal; a fabrics
    //= controller has Keep Alive Timer, and CAP.CSS bit 6 brings I/O Command Set Profile.
    let must: &[u8] = if discovery {
        &[0x0f]
    } else {
        &[0x01, 0x02, 0x04, 0x05, 0x07, 0x0a, 0x0b, 0x0f, 0x19]
    };
    for fid in must {
        assert!(
            listed.contains(fid),
            "{what}: mandatory FID {fid:#04x} not advertised"
        );
    }
    // Identify Controller promises features too: ONCS bit 6 Timestamp, VWC bit 0 the
    // Volatile Write Cache feature.
    let id = ctrl.identity();
    assert_eq!(
        id.oncs & (1 << 6) != 0,
        listed.contains(&0x0e),
        "{what}: ONCS Timestamp"
    );
    assert_eq!(
        id.vwc & 1 != 0,
        listed.contains(&0x06),
        "{what}: VWC present"
    );
    for fid in 0..=u8::MAX {
        let (len, cdw11) = feature_data(fid);
        let get = |sel: u8| GetFeatures {
            fid: FeatureId(fid),
            sel,
            cdw11,
            ..GetFeatures::default()
        };
        let got = ctrl.get_features_with(get(0), len).await;
        if !listed.contains(&fid) {
            let e = got.expect_err(&format!("{what}: FID {fid:#04x} served, not advertised"));
            assert!(
                e.is_status(StatusCode::INVALID_FIELD),
                "{what}: {fid:#04x}: {e}"
            );
            continue;
        }
        got.unwrap_or_else(|e| panic!("{what}: FID {fid:#04x} advertised but refused: {e}"));
        for sel in [1, 2] {
            ctrl.get_features_with(get(sel), len)
                .await
                .unwrap_or_else(|e| panic!("{what}: FID {fid:#04x} SEL {sel}: {e}"));
        }
        let (caps, _) = ctrl.get_features_with(get(3), 0).await.unwrap();
        let effects = log.fids[usize::from(fid)];
        assert_eq!(caps & 1, 0, "{what}: FID {fid:#04x} claims to be saveable");
        assert_eq!(
            caps & 2 != 0,
            effects.0 & FeatureEffects::NSCPE != 0,
            "{what}: FID {fid:#04x}: namespace specific in SEL 3 and log 12h differ"
        );
        let e = ctrl.get_features_with(get(4), len).await.unwrap_err();
        assert!(e.is_status(StatusCode::INVALID_FIELD), "{what}: SEL 4: {e}");
    }
    listed
}

/// The CNS values a controller must answer: what CAP.CSS, VER and the controller type bring.
fn promised_cns(cap: Cap, vs: Vs, discovery: bool) -> BTreeSet<u8> {
    let css_sets = cap.css() & Cap::CSS_IO_COMMAND_SETS != 0;
    let mut cns: BTreeSet<u8> = [0x01].into();
    if css_sets {
        cns.insert(0x1c);
    }
    if !discovery {
        cns.insert(0x00);
        if vs >= Vs::new(1, 1, 0) {
            cns.insert(0x02);
        }
        if vs >= Vs::V1_3 || css_sets {
            cns.insert(0x03);
        }
        if css_sets || vs >= Vs::V2_0 {
            cns.extend([0x05, 0x06, 0x07, 0x08]);
        }
    }
    cns
}

fn identify(cns: u8, nsid: u32) -> Identify {
    Identify {
        cns: Cns(cns),
        nsid,
        cntid: 0xffff,
        ..Identify::default()
    }
}

async fn walk_cns(ctrl: &Controller, what: &str, promised: &BTreeSet<u8>) {
    for cns in 0..=u8::MAX {
        let nsid = match cns {
            0x02 | 0x07 | 0x10 | 0x1c => 0,
            _ => 1,
        };
        let got = ctrl.identify_with(identify(cns, nsid)).await;
        match (promised.contains(&cns), got) {
            (true, Ok(_)) => {}
            (true, Err(e)) => panic!("{what}: CNS {cns:#04x} is promised but refused: {e}"),
            (false, Ok(_)) => panic!("{what}: CNS {cns:#04x} is served but not promised"),
            (false, Err(e)) => assert!(
                e.is_status(StatusCode::INVALID_FIELD),
                "{what}: CNS {cns:#04x}: {e}"
            ),
        }
    }
}

/// What NVMe 2.0 asks of a controller that reports it.
async fn check_version(ctrl: &Controller, what: &str, discovery: bool) {
    let id = ctrl.identity();
    assert_eq!(
        id.ver,
        ctrl.vs().0,
        "{what}: VER and the VS property differ"
    );
    if ctrl.vs() < Vs::V2_0 {
        return;
    }
    assert!(
        ctrl.cap().crwms(),
        "{what}: NVMe 2.0 without CAP.CRMS.CRWMS"
    );
    let crto = Crto(ctrl.property_get(Property::CRTO).await.unwrap() as u32);
    assert!(crto.crwmt() >= 1, "{what}: CRTO.CRWMT is 0");
    assert!(id.cntrltype == if discovery { 2 } else { 1 });
    if !discovery {
        assert_ne!(id.lpa & (1 << 5), 0, "{what}: NVMe 2.0 without LPA bit 5");
    }
    let sets = ctrl.io_command_sets().await.unwrap();
    assert_eq!(sets.vectors.first(), Some(&IoCommandSetVector::NVM_ONLY));
}

/// A controller reset, then an enable with `css`: whether it became ready (else CFS is set).
async fn enable_with(ctrl: &Controller, css: u8) -> bool {
    ctrl.property_set(Property::CC, 0).await.unwrap();
    let cc = u64::from(Cc::enable(css, 0).0);
    ctrl.property_set(Property::CC, cc).await.unwrap();
    for _ in 0..100 {
        let csts = Csts(ctrl.property_get(Property::CSTS).await.unwrap() as u32);
        if csts.ready() || csts.fatal() {
            return csts.ready();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("neither RDY nor CFS after enabling with CSS {css:03b}");
}

async fn walk(ctrl: &Controller, what: &str, discovery: bool) {
    check_version(ctrl, what, discovery).await;
    let listed = promised_log_pages(ctrl, discovery).await;
    walk_log_pages(ctrl, what, &listed).await;
    walk_features(ctrl, what, discovery).await;
    walk_cns(ctrl, what, &promised_cns(ctrl.cap(), ctrl.vs(), discovery)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_log_feature_and_cns_is_served_and_nothing_else() {
    let t = TestTarget::start().await;
    let nvm = t.connect().await.unwrap();
    let disc = Controller::connect(t.addr(), ConnectOptions::new(DISCOVERY_NQN).unwrap())
        .await
        .unwrap();
    walk(&nvm, "nvm", false).await;
    walk(&disc, "discovery", true).await;
    // CC.CSS: 110b (all supported I/O command sets) and 000b (NVM) enable; anything else is
    // Controller Fatal Status, on both controller types.
    for (what, ctrl) in [("nvm", &nvm), ("discovery", &disc)] {
        assert!(enable_with(ctrl, Cc::CSS_ALL_IO).await, "{what}: CSS 110b");
        assert!(enable_with(ctrl, Cc::CSS_NVM).await, "{what}: CSS 000b");
        assert!(!enable_with(ctrl, 0b001).await, "{what}: CSS 001b enabled");
    }
    disc.close();
    nvm.close();
    t.stop().await;
}

/// The NVMe 2.0 structures answer as the specification and nvmet/SPDK do, for active,
/// inactive and invalid NSIDs and for command sets that do not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_set_identify_structures_and_profile() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    assert_ne!(ctrl.cap().css() & Cap::CSS_IO_COMMAND_SETS, 0);
    let cc = ctrl.property_get(Property::CC).await.unwrap() as u32;
    assert_eq!(
        Cc(cc).css(),
        Cc::CSS_ALL_IO,
        "the host chose 110b, CAP.CSS bit 6"
    );
    let id = |cns: u8, nsid: u32, csi: u8| Identify {
        cns: Cns(cns),
        nsid,
        csi,
        cntid: 0xffff,
        ..Identify::default()
    };
    let status = |r: Result<bytes::Bytes, HostError>| match r {
        Ok(_) => StatusCode::SUCCESS,
        Err(e) => e.status().unwrap().code,
    };
    // CNS 05h: the NVM Command Set namespace structure (no PI, no storage tags).
    let nvm = ctrl.identify_with(id(0x05, 1, 0)).await.unwrap();
    assert_eq!(
        IdentifyNamespaceNvm::decode(&nvm).unwrap(),
        IdentifyNamespaceNvm::default()
    );
    let invalid_ns = StatusCode::INVALID_NAMESPACE_OR_FORMAT;
    assert_eq!(
        status(ctrl.identify_with(id(0x05, 1, 1)).await),
        StatusCode::INVALID_FIELD
    );
    assert_eq!(status(ctrl.identify_with(id(0x05, 7, 0)).await), invalid_ns);
    assert_eq!(status(ctrl.identify_with(id(0x05, 0, 0)).await), invalid_ns);
    // CNS 06h and 07h: CSI 0 only.
    assert_eq!(
        status(ctrl.identify_with(id(0x06, 0, 2)).await),
        StatusCode::INVALID_FIELD
    );
    assert_eq!(
        status(ctrl.identify_with(id(0x07, 0, 1)).await),
        StatusCode::INVALID_FIELD
    );
    let list = ctrl.identify_with(id(0x07, 0, 0)).await.unwrap();
    assert_eq!(&list[0..8], &[1, 0, 0, 0, 0, 0, 0, 0], "NSID 1 only");
    assert_eq!(
        status(ctrl.identify_with(id(0x02, 0xffff_ffff, 0)).await),
        invalid_ns
    );
    // CNS 08h: ready, shared; an inactive NSID reads as zeros; FFFFFFFFh is refused.
    let indep = ctrl.identify_with(id(0x08, 1, 0)).await.unwrap();
    let indep = IdentifyNamespaceIndependent::decode(&indep).unwrap();
    assert_eq!(
        (indep.nstat & 1, indep.nmic & 1),
        (1, 1),
        "ready and shared"
    );
    let inactive = ctrl.identify_with(id(0x08, 7, 0)).await.unwrap();
    assert!(inactive.iter().all(|b| *b == 0));
    assert_eq!(
        status(ctrl.identify_with(id(0x08, 0xffff_ffff, 0)).await),
        invalid_ns
    );
    // CNS 03h carries the CSI descriptor (Linux needs it with CC.CSS 110b).
    let descs = ctrl.namespace_descriptors(1).await.unwrap();
    assert!(descs.contains(&NsIdDescriptor::Csi(0)));
    // CNS 1Ch: this controller only.
    let other = Identify {
        cntid: ctrl.cntlid().wrapping_add(1),
        ..id(0x1c, 0, 0)
    };
    assert_eq!(
        status(ctrl.identify_with(other).await),
        StatusCode::INVALID_FIELD
    );
    // I/O Command Set Profile: index 0 (NVM) is the default and the only one accepted.
    let profile = |cdw11| SetFeatures {
        fid: FeatureId::IO_COMMAND_SET_PROFILE,
        cdw11,
        ..SetFeatures::default()
    };
    ctrl.set_features_with(profile(0)).await.unwrap();
    let e = ctrl.set_features_with(profile(1)).await.unwrap_err();
    assert!(
        e.is_status(StatusCode::IO_COMMAND_SET_COMBINATION_REJECTED),
        "{e}"
    );
    let e = ctrl
        .set_features_with(SetFeatures {
            save: true,
            ..profile(0)
        })
        .await
        .unwrap_err();
    assert!(e.is_status(StatusCode::FEATURE_NOT_SAVEABLE), "{e}");
    assert_eq!(
        ctrl.get_features(FeatureId::IO_COMMAND_SET_PROFILE, 0, 0)
            .await
            .unwrap(),
        0
    );
    // FUSES is 0: a command of a fused pair is refused.
    let mut sqe = lamina_protocol::nvme::SimpleAdmin {
        opcode: lamina_protocol::nvme::AdminOpcode::KEEP_ALIVE,
        cid: 0,
    }
    .to_sqe();
    assert_eq!(ctrl.identity().fuses, 0);
    sqe.flags |= 1;
    let e = ctrl
        .admin_command(lamina_integration::host::Command::new(sqe))
        .await
        .unwrap_err();
    assert!(e.is_status(StatusCode::INVALID_FIELD), "{e}");
    // The effects log names each command's scope (LPA bit 5).
    let raw = ctrl
        .get_log_page(LogPageId::COMMANDS_EFFECTS, 0xffff_ffff, 0, 4096, 0, false)
        .await
        .unwrap();
    let effects = CommandsSupportedEffects::decode(&raw).unwrap();
    for (op, e) in effects
        .io
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_supported())
    {
        assert_ne!(
            e.0 & (1 << 20),
            0,
            "I/O opcode {op:#04x} without namespace scope"
        );
    }
    for (op, e) in effects
        .admin
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_supported())
    {
        assert_ne!(
            e.0 & (0x3f << 20),
            0,
            "admin opcode {op:#04x} without a scope"
        );
    }
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
