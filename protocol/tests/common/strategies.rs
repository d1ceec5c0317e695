//! proptest strategies producing valid values of every PDU and NVMe structure.

use bytes::Bytes;
use lamina_protocol::fabrics::ConnectData;
use lamina_protocol::fabrics::discovery::{
    AdrFam, DiscoveryLogEntry, DiscoveryLogPage, EFlags, SecType, SubType, TrType, Treq,
};
use lamina_protocol::nvme::identify::{
    IdentifyController, IdentifyControllerNvm, IdentifyNamespace, LbaFormat, NsIdDescriptor,
    NsIdList, PowerStateDescriptor,
};
use lamina_protocol::nvme::log_page::{
    AnaGroupDescriptor, AnaLog, AnaState, CommandEffects, CommandsSupportedEffects, ErrorInfoEntry,
    FirmwareSlotInfo, SmartLog,
};
use lamina_protocol::nvme::{Cqe, Nqn, Sct, SglDescriptor, SglId, Sqe, Status, StatusCode};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, CapsuleResp, Digests, Fes, H2cData, IcReq, IcResp, Pda, Pdu, R2t, TermReq,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Largest data payload the strategies generate (keeps the suite fast).
pub const MAX_DATA: usize = 6000;

pub fn data(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

pub fn digests() -> impl Strategy<Value = Digests> {
    (any::<bool>(), any::<bool>()).prop_map(|(header, data)| Digests { header, data })
}

pub fn pda() -> impl Strategy<Value = Pda> {
    (0u8..=31).prop_map(Pda)
}

pub fn sgl() -> impl Strategy<Value = SglDescriptor> {
    (any::<u64>(), any::<u32>(), any::<[u8; 3]>(), any::<u8>()).prop_map(
        |(address, length, reserved, id)| SglDescriptor {
            address,
            length,
            reserved,
            id: SglId(id),
        },
    )
}

pub fn sqe() -> impl Strategy<Value = Sqe> {
    (
        any::<(u8, u8, u16, u32, u32, u32, u64)>(),
        sgl(),
        any::<[u32; 6]>(),
    )
        .prop_map(
            |((opcode, flags, cid, nsid, cdw2, cdw3, mptr), dptr, cdw)| Sqe {
                opcode,
                flags,
                cid,
                nsid,
                cdw2,
                cdw3,
                mptr,
                dptr,
                cdw,
            },
        )
}

pub fn status() -> impl Strategy<Value = Status> {
    (0u8..8, any::<u8>(), 0u8..4, any::<bool>(), any::<bool>()).prop_map(
        |(sct, sc, crd, more, dnr)| Status {
            code: StatusCode { sct: Sct(sct), sc },
            crd,
            more,
            dnr,
        },
    )
}

pub fn cqe() -> impl Strategy<Value = Cqe> {
    (any::<(u32, u32, u16, u16, u16, bool)>(), status()).prop_map(
        |((dw0, dw1, sqhd, sqid, cid, phase), status)| Cqe {
            dw0,
            dw1,
            sqhd,
            sqid,
            cid,
            status,
            phase,
        },
    )
}

pub fn icreq() -> impl Strategy<Value = IcReq> {
    (pda(), digests(), any::<u32>()).prop_map(|(hpda, digests, maxr2t)| IcReq {
        pfv: 0,
        hpda,
        digests,
        maxr2t,
    })
}

pub fn icresp() -> impl Strategy<Value = IcResp> {
    (pda(), digests(), 1024u32..=u32::MAX / 4).prop_map(|(cpda, digests, m)| IcResp {
        pfv: 0,
        cpda,
        digests,
        maxh2cdata: m * 4,
    })
}

pub fn term_req() -> impl Strategy<Value = TermReq> {
    (any::<u16>(), any::<u32>(), data(128)).prop_map(|(fes, fei, header)| TermReq {
        fes: Fes(fes),
        fei,
        header,
    })
}

pub fn capsule_cmd(max: usize) -> impl Strategy<Value = CapsuleCmd> {
    (sqe(), data(max)).prop_map(|(sqe, data)| CapsuleCmd { sqe, data })
}

pub fn h2c_data(max: usize) -> impl Strategy<Value = H2cData> {
    (any::<(u16, u16, u32, bool)>(), data(max)).prop_map(
        |((cccid, ttag, datao, last_pdu), data)| H2cData {
            cccid,
            ttag,
            datao,
            last_pdu,
            data,
        },
    )
}

pub fn c2h_data(max: usize) -> impl Strategy<Value = C2hData> {
    (any::<(u16, u32, bool, bool)>(), data(max)).prop_map(
        |((cccid, datao, last, success), data)| C2hData {
            cccid,
            datao,
            last_pdu: last || success,
            success,
            data,
        },
    )
}

pub fn r2t() -> impl Strategy<Value = R2t> {
    (any::<(u16, u16, u32)>(), 1u32..).prop_map(|((cccid, ttag, r2to), r2tl)| R2t {
        cccid,
        ttag,
        r2to,
        r2tl,
    })
}

/// PDUs a host sends after the IC exchange.
pub fn h2c_pdu(max: usize) -> impl Strategy<Value = Pdu> {
    prop_oneof![
        4 => capsule_cmd(max).prop_map(Pdu::CapsuleCmd),
        4 => h2c_data(max).prop_map(Pdu::H2cData),
        1 => term_req().prop_map(Pdu::H2cTermReq),
    ]
}

/// PDUs a controller sends after the IC exchange.
pub fn c2h_pdu(max: usize) -> impl Strategy<Value = Pdu> {
    prop_oneof![
        4 => cqe().prop_map(|cqe| Pdu::CapsuleResp(CapsuleResp { cqe })),
        4 => c2h_data(max).prop_map(Pdu::C2hData),
        3 => r2t().prop_map(Pdu::R2t),
        1 => term_req().prop_map(Pdu::C2hTermReq),
    ]
}

pub fn nqn() -> impl Strategy<Value = Nqn> {
    "[a-z0-9.:-]{1,200}".prop_map(|s| Nqn::new(format!("nqn.{s}")).expect("valid"))
}

pub fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_.-]{{0,{max}}}")).expect("regex")
}

pub fn connect_data() -> impl Strategy<Value = ConnectData> {
    (any::<[u8; 16]>(), any::<u16>(), nqn(), nqn()).prop_map(|(hostid, cntlid, subnqn, hostnqn)| {
        ConnectData {
            hostid,
            cntlid,
            subnqn,
            hostnqn,
        }
    })
}

fn psd() -> impl Strategy<Value = PowerStateDescriptor> {
    (
        any::<(u16, u8, u32, u32, [u8; 4])>(),
        any::<(u16, u8, u16, u8)>(),
    )
        .prop_map(
            |(
                (max_power, flags, entry_lat_us, exit_lat_us, relative),
                (idle_power, idle_scale, active_power, active_work_scale),
            )| {
                PowerStateDescriptor {
                    max_power,
                    flags,
                    entry_lat_us,
                    exit_lat_us,
                    relative,
                    idle_power,
                    idle_scale,
                    active_power,
                    active_work_scale,
                }
            },
        )
}

pub fn identify_controller() -> impl Strategy<Value = IdentifyController> {
    let identity = (
        any::<(u16, u16, u8, [u8; 3], u8, u8, u16, u32)>(),
        (ascii(20), ascii(40), ascii(8)),
        any::<(u32, u32, u32, u32, u16, u8, [u8; 16], [u16; 3])>(),
    );
    let caps = (
        any::<(u16, u8, u8, u8, u8, u8, u8, u8, u8)>(),
        any::<(u16, u16, u128, u128, u16, u8, u8, u32, u32)>(),
        any::<(u16, u32, u32, u16, u16, u16, u32)>(),
    );
    let nvm = (
        any::<(u8, u8, u16, u32, u16, u16, u8, u8, u16, u16)>(),
        any::<(u8, u8, u16, u16, u32, u32)>(),
        proptest::option::of(nqn()),
        any::<(u32, u32, u16, u8, u8, u16, u8)>(),
        vec(psd(), 32),
    );
    (identity, caps, nvm).prop_map(|(i, c, n)| {
        let (
            (vid, ssvid, rab, ieee, cmic, mdts, cntlid, ver),
            (sn, mn, fr),
            (rtd3r, rtd3e, oaes, ctratt, rrls, cntrltype, fguid, crdt),
        ) = i;
        let (
            (oacs, acl, aerl, frmw, lpa, elpe, npss, avscc, apsta),
            (wctemp, cctemp, tnvmcap, unvmcap, kas, anatt, anacap, anagrpmax, nanagrpid),
            (mtfa, hmpre, hmmin, hctma, mntmt, mxtmt, sanicap),
        ) = c;
        let (
            (sqes, cqes, maxcmd, nn, oncs, fuses, fna, vwc, awun, awupf),
            (icsvscc, nwpc, acwu, ocfs, sgls, mnan),
            subnqn,
            (ioccsz, iorcsz, icdoff, fcatt, msdbd, ofcs, dctype),
            psd,
        ) = n;
        IdentifyController {
            vid,
            ssvid,
            serial_number: sn,
            model_number: mn,
            firmware_revision: fr,
            rab,
            ieee,
            cmic,
            mdts,
            cntlid,
            ver,
            rtd3r,
            rtd3e,
            oaes,
            ctratt,
            rrls,
            cntrltype,
            fguid,
            crdt,
            oacs,
            acl,
            aerl,
            frmw,
            lpa,
            elpe,
            npss,
            avscc,
            apsta,
            wctemp,
            cctemp,
            mtfa,
            hmpre,
            hmmin,
            hctma,
            mntmt,
            mxtmt,
            sanicap,
            tnvmcap,
            unvmcap,
            kas,
            anatt,
            anacap,
            anagrpmax,
            nanagrpid,
            sqes,
            cqes,
            maxcmd,
            nn,
            oncs,
            fuses,
            fna,
            vwc,
            awun,
            awupf,
            icsvscc,
            nwpc,
            acwu,
            ocfs,
            sgls,
            mnan,
            subnqn,
            ioccsz,
            iorcsz,
            icdoff,
            fcatt,
            msdbd,
            ofcs,
            dctype,
            psd: psd.try_into().expect("32 descriptors"),
        }
    })
}

pub fn identify_namespace() -> impl Strategy<Value = IdentifyNamespace> {
    (
        any::<((u64, u64, u64), (u8, u8, u8, u8, u8, u8, u8, u8, u8))>(),
        any::<(u8, u16, u16, u16, u16, u16, u16, u16, u128)>(),
        any::<((u16, u16, u16, u16, u16, u16), (u32, u8, u32, u8, u16, u16))>(),
        any::<([u8; 16], [u8; 8])>(),
        vec((any::<u16>(), any::<u8>(), 0u8..4), 64),
    )
        .prop_map(|(a, b, c, (nguid, eui64), lbaf)| {
            let ((nsze, ncap, nuse), (nsfeat, nlbaf, flbas, mc, dpc, dps, nmic, rescap, fpi)) = a;
            let (dlfeat, nawun, nawupf, nacwu, nabsn, nabo, nabspf, noiob, nvmcap) = b;
            let (
                (npwg, npwa, npdg, npda, nows, mssrl),
                (mcl, msrc, anagrpid, nsattr, nvmsetid, endgid),
            ) = c;
            let lbaf: Vec<LbaFormat> = lbaf
                .into_iter()
                .map(|(ms, lbads, rp)| LbaFormat { ms, lbads, rp })
                .collect();
            IdentifyNamespace {
                nsze,
                ncap,
                nuse,
                nsfeat,
                nlbaf,
                flbas,
                mc,
                dpc,
                dps,
                nmic,
                rescap,
                fpi,
                dlfeat,
                nawun,
                nawupf,
                nacwu,
                nabsn,
                nabo,
                nabspf,
                noiob,
                nvmcap,
                npwg,
                npwa,
                npdg,
                npda,
                nows,
                mssrl,
                mcl,
                msrc,
                anagrpid,
                nsattr,
                nvmsetid,
                endgid,
                nguid,
                eui64,
                lbaf: lbaf.try_into().expect("64 formats"),
            }
        })
}

pub fn ns_list() -> impl Strategy<Value = NsIdList> {
    vec(1u32.., 0..=1024).prop_map(|nsids| NsIdList { nsids })
}

pub fn ns_descriptors() -> impl Strategy<Value = Vec<NsIdDescriptor>> {
    vec(
        prop_oneof![
            any::<[u8; 8]>().prop_map(NsIdDescriptor::Eui64),
            any::<[u8; 16]>().prop_map(NsIdDescriptor::Nguid),
            any::<[u8; 16]>().prop_map(NsIdDescriptor::Uuid),
            any::<u8>().prop_map(NsIdDescriptor::Csi),
        ],
        0..8,
    )
}

pub fn identify_controller_nvm() -> impl Strategy<Value = IdentifyControllerNvm> {
    any::<(u8, u8, u8, u8, u32, u64)>().prop_map(|(vsl, wzsl, wusl, dmrl, dmrsl, dmsl)| {
        IdentifyControllerNvm {
            vsl,
            wzsl,
            wusl,
            dmrl,
            dmrsl,
            dmsl,
        }
    })
}

pub fn error_info() -> impl Strategy<Value = ErrorInfoEntry> {
    any::<((u64, u16, u16, u16, u16, u64), (u32, u8, u8, u64, u16))>().prop_map(
        |((a, b, c, d, e, f), (g, h, i, j, k))| ErrorInfoEntry {
            error_count: a,
            sqid: b,
            cid: c,
            status_field: d,
            parameter_error_location: e,
            lba: f,
            nsid: g,
            vs_info_available: h,
            trtype: i,
            command_specific: j,
            transport_specific: k,
        },
    )
}

pub fn smart() -> impl Strategy<Value = SmartLog> {
    (
        any::<(u8, u16, u8, u8, u8, u8)>(),
        any::<[u128; 10]>(),
        any::<(u32, u32, [u16; 8], [u32; 2], [u32; 2])>(),
    )
        .prop_map(
            |((cw, temp, spare, thr, used, eg), c, (wt, ct, sensors, tc, tt))| SmartLog {
                critical_warning: cw,
                composite_temperature: temp,
                available_spare: spare,
                available_spare_threshold: thr,
                percentage_used: used,
                endurance_group_warning: eg,
                data_units_read: c[0],
                data_units_written: c[1],
                host_read_commands: c[2],
                host_write_commands: c[3],
                controller_busy_time: c[4],
                power_cycles: c[5],
                power_on_hours: c[6],
                unsafe_shutdowns: c[7],
                media_errors: c[8],
                error_log_entries: c[9],
                warning_temp_time: wt,
                critical_temp_time: ct,
                temp_sensors: sensors,
                thermal_transition_counts: tc,
                thermal_total_times: tt,
            },
        )
}

pub fn fw_slot() -> impl Strategy<Value = FirmwareSlotInfo> {
    (any::<u8>(), vec(ascii(8), 7)).prop_map(|(afi, frs)| FirmwareSlotInfo {
        afi,
        frs: frs.try_into().expect("7 slots"),
    })
}

pub fn effects() -> impl Strategy<Value = CommandsSupportedEffects> {
    (vec(any::<u32>(), 256), vec(any::<u32>(), 256)).prop_map(|(a, i)| CommandsSupportedEffects {
        admin: a
            .into_iter()
            .map(CommandEffects)
            .collect::<Vec<_>>()
            .try_into()
            .expect("256"),
        io: i
            .into_iter()
            .map(CommandEffects)
            .collect::<Vec<_>>()
            .try_into()
            .expect("256"),
    })
}

pub fn ana() -> impl Strategy<Value = AnaLog> {
    let group = (
        any::<u32>(),
        any::<u64>(),
        0u8..16,
        vec(any::<u32>(), 0..16),
    )
        .prop_map(
            |(anagrpid, change_count, state, nsids)| AnaGroupDescriptor {
                anagrpid,
                change_count,
                state: AnaState(state),
                nsids,
            },
        );
    (any::<u64>(), vec(group, 0..8)).prop_map(|(change_count, groups)| AnaLog {
        change_count,
        groups,
    })
}

pub fn discovery_entry() -> impl Strategy<Value = DiscoveryLogEntry> {
    (
        any::<(u8, u8, u8, u8, u16, u16, u16, u16, u8)>(),
        ascii(32),
        nqn(),
        ascii(200),
    )
        .prop_map(
            |(
                (trtype, adrfam, subtype, treq, portid, cntlid, asqsz, eflags, sectype),
                trsvcid,
                subnqn,
                traddr,
            )| {
                DiscoveryLogEntry {
                    trtype: TrType(trtype),
                    adrfam: AdrFam(adrfam),
                    subtype: SubType(subtype),
                    treq: Treq(treq),
                    portid,
                    cntlid,
                    asqsz,
                    eflags: EFlags(eflags),
                    trsvcid,
                    subnqn,
                    traddr,
                    sectype: SecType(sectype),
                }
            },
        )
}

pub fn discovery_page() -> impl Strategy<Value = DiscoveryLogPage> {
    (any::<u64>(), vec(discovery_entry(), 0..4))
        .prop_map(|(genctr, entries)| DiscoveryLogPage::new(genctr, entries))
}
