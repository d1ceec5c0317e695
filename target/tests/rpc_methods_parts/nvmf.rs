//! NVMe-oF subsystems, listeners, hosts and namespaces over JSON-RPC, what an exported lvol
//! refuses, and the target-wide settings and SPDK option methods.

use lamina_target::mgmt::rpc::error::{EBUSY, EEXIST, EINVAL, ENODEV, INVALID_PARAMS};
use serde_json::{Value, json};

use super::{NQN, Rpc, support};

pub async fn nvmf(r: &mut Rpc) {
    assert_eq!(r.ok("nvmf_get_transports", Value::Null).await, json!([]));
    let p = json!({"trtype": "TCP", "max_io_size": 131_072, "io_unit_size": 65536});
    assert_eq!(r.ok("nvmf_create_transport", p.clone()).await, true);
    // Once there, the call means "the TCP transport with these options": the same options
    // change nothing, other ones apply while no controller is connected.
    assert_eq!(r.ok("nvmf_create_transport", p).await, true);
    let p = json!({"trtype": "TCP", "max_io_size": 262_144, "io_unit_size": 65536});
    assert_eq!(r.ok("nvmf_create_transport", p).await, true);
    let transports = r.ok("nvmf_get_transports", json!({"trtype": "TCP"})).await;
    assert_eq!(transports[0]["max_io_size"], 262_144);
    let p = json!({"trtype": "TCP", "max_io_size": 131_072, "io_unit_size": 65536});
    assert_eq!(r.ok("nvmf_create_transport", p).await, true);
    r.err("nvmf_create_transport", json!({"trtype": "RDMA"}), EINVAL)
        .await;
    let transports = r.ok("nvmf_get_transports", json!({"trtype": "TCP"})).await;
    assert_eq!(transports[0]["max_io_size"], 131_072);
    let p = json!({"nqn": NQN, "serial_number": "SN1", "model_number": "M1", "max_namespaces": 8});
    assert_eq!(r.ok("nvmf_create_subsystem", p.clone()).await, true);
    r.err("nvmf_create_subsystem", p, EEXIST).await;
    let msg = r
        .err(
            "nvmf_create_subsystem",
            json!({"serial_number": "x"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("nqn"), "{msg}");
    let port = support::free_port();
    let la = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    let p = json!({"nqn": NQN, "listen_address": la});
    assert_eq!(r.ok("nvmf_subsystem_add_listener", p.clone()).await, true);
    r.err("nvmf_subsystem_add_listener", p.clone(), EEXIST)
        .await;
    let l = r
        .ok("nvmf_subsystem_get_listeners", json!({"nqn": NQN}))
        .await;
    assert_eq!(l[0]["address"]["trsvcid"], port.to_string());
    let bad = json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "traddr": "nowhere"}});
    r.err("nvmf_subsystem_add_listener", bad, INVALID_PARAMS)
        .await;
    let host = "nqn.2014-08.org.nvmexpress:uuid:0f8fad5b-d9cb-469f-a165-70867728950e";
    let h = json!({"nqn": NQN, "host": host});
    assert_eq!(r.ok("nvmf_subsystem_add_host", h.clone()).await, true);
    r.err("nvmf_subsystem_add_host", h.clone(), EEXIST).await;
    // No keys: the host connects without authenticating (keyring.rs covers keys).
    assert_eq!(r.ok("nvmf_subsystem_set_keys", h.clone()).await, true);
    let stranger = json!({"nqn": NQN, "host": "nqn.2014-08.org.nvmexpress:uuid:stranger"});
    r.err("nvmf_subsystem_set_keys", stranger, ENODEV).await;
    let any = json!({"nqn": NQN, "allow_any_host": true});
    assert_eq!(r.ok("nvmf_subsystem_allow_any_host", any).await, true);
    let lv =
        json!({"lvs_name": "lvs0", "lvol_name": "exp", "size_in_mib": 4, "thin_provision": true});
    let uuid = r.ok("bdev_lvol_create", lv).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/exp", "nsid": 2}});
    assert_eq!(r.ok("nvmf_subsystem_add_ns", ns.clone()).await, 2);
    r.err("nvmf_subsystem_add_ns", ns, EBUSY).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/zz"}});
    r.err("nvmf_subsystem_add_ns", ns, ENODEV).await;
    let subs = r.ok("nvmf_get_subsystems", json!({"nqn": NQN})).await;
    let sub = &subs[0];
    assert_eq!(sub["subtype"], "NVMe");
    assert_eq!(sub["serial_number"], "SN1");
    assert_eq!(sub["allow_any_host"], true);
    assert_eq!(sub["hosts"], json!([{"nqn": host}]));
    assert_eq!(sub["namespaces"][0]["nsid"], 2);
    assert_eq!(sub["namespaces"][0]["bdev_name"], uuid);
    assert_eq!(sub["namespaces"][0]["uuid"], uuid);
    assert_eq!(sub["listen_addresses"][0]["traddr"], "127.0.0.1");
    r.err("nvmf_get_subsystems", json!({"nqn": "nqn.zz"}), ENODEV)
        .await;
    assert_eq!(
        r.ok("nvmf_subsystem_get_controllers", json!({"nqn": NQN}))
            .await,
        json!([])
    );
    assert_eq!(
        r.ok("nvmf_subsystem_get_qpairs", json!({"nqn": NQN})).await,
        json!([])
    );
    let st = r.ok("nvmf_get_stats", Value::Null).await;
    assert!(st["poll_groups"].is_array());
    assert_eq!(r.ok("nvmf_subsystem_remove_host", h.clone()).await, true);
    r.err("nvmf_subsystem_remove_host", h, ENODEV).await;
    assert_eq!(
        r.ok("nvmf_subsystem_remove_listener", p.clone()).await,
        true
    );
    r.err("nvmf_subsystem_remove_listener", p, ENODEV).await;
}

/// An exported lvol: -EBUSY on delete (naming the namespace) and on its lvstore's delete;
/// then everything is taken down in order.
pub async fn exported(r: &mut Rpc) {
    let msg = r
        .err("bdev_lvol_delete", json!({"name": "lvs0/exp"}), EBUSY)
        .await;
    assert!(
        msg.contains("namespace 2 of") && msg.contains("nvmf_subsystem_remove_ns"),
        "{msg}"
    );
    let del = json!({"lvs_name": "lvs0"});
    r.err("bdev_lvol_delete_lvstore", del.clone(), EBUSY).await;
    let rm = json!({"nqn": NQN, "nsid": 2});
    assert_eq!(r.ok("nvmf_subsystem_remove_ns", rm.clone()).await, true);
    r.err("nvmf_subsystem_remove_ns", rm, ENODEV).await;
    assert_eq!(
        r.ok("nvmf_delete_subsystem", json!({"nqn": NQN})).await,
        true
    );
    r.err("nvmf_delete_subsystem", json!({"nqn": NQN}), ENODEV)
        .await;
    r.ok("bdev_lvol_delete", json!({"name": "lvs0/exp"})).await;
    assert_eq!(r.ok("bdev_lvol_delete_lvstore", del).await, true);
    assert_eq!(
        r.ok("bdev_malloc_delete", json!({"name": "m0"})).await,
        true
    );
    r.err("bdev_malloc_delete", json!({"name": "m0"}), ENODEV)
        .await;
}

/// Target-wide settings and SPDK's option methods: what is applied shows in `save_config`,
/// what Lamina cannot honour is refused naming the parameter.
pub async fn settings(r: &mut Rpc) {
    // framework_get_subsystems lists the sections framework_get_config serves.
    let subs = r.ok("framework_get_subsystems", Value::Null).await;
    let names: Vec<&str> = subs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subsystem"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keyring", "sock", "bdev", "nvmf"], "{subs}");
    r.err(
        "framework_get_config",
        json!({"name": "iscsi"}),
        INVALID_PARAMS,
    )
    .await;
    r.err("framework_get_config", json!({}), INVALID_PARAMS)
        .await;

    // nvmf_set_* show in the nvmf section.
    r.ok("nvmf_set_max_subsystems", json!({"max_subsystems": 64}))
        .await;
    r.err(
        "nvmf_set_max_subsystems",
        json!({"max_subsystems": 0}),
        INVALID_PARAMS,
    )
    .await;
    r.ok("nvmf_set_crdt", json!({"crdt1": 5, "crdt2": 10}))
        .await;
    r.err("nvmf_set_crdt", json!({"crdt1": -1}), INVALID_PARAMS)
        .await;
    r.ok(
        "nvmf_set_config",
        json!({"discovery_filter": "address,svcid"}),
    )
    .await;
    let msg = r
        .err(
            "nvmf_set_config",
            json!({"discovery_filter": "color"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("discovery_filter"), "{msg}");
    let msg = r
        .err(
            "nvmf_set_config",
            json!({"dup_host_policy": "reject"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("dup_host_policy"), "{msg}");
    r.ok(
        "nvmf_set_config",
        json!({"dhchap_digests": ["sha512", "sha384"], "dhchap_dhgroups": ["ffdhe4096"]}),
    )
    .await;
    for bad in [
        json!({"dhchap_digests": ["md5"]}),
        json!({"dhchap_dhgroups": []}),
    ] {
        let msg = r.err("nvmf_set_config", bad, INVALID_PARAMS).await;
        assert!(msg.contains("dhchap_"), "{msg}");
    }
    let nvmf = r.ok("framework_get_config", json!({"name": "nvmf"})).await;
    let call = |m: &str| {
        nvmf.as_array()
            .unwrap()
            .iter()
            .find(|c| c["method"] == m)
            .unwrap_or_else(|| panic!("{m} not in {nvmf}"))["params"]
            .clone()
    };
    assert_eq!(call("nvmf_set_max_subsystems")["max_subsystems"], 64);
    assert_eq!(
        call("nvmf_set_crdt"),
        json!({"crdt1": 5, "crdt2": 10, "crdt3": 0})
    );
    assert_eq!(call("nvmf_set_config")["discovery_filter"], "address,svcid");
    assert_eq!(
        call("nvmf_set_config")["dhchap_digests"],
        json!(["sha384", "sha512"])
    );
    assert_eq!(
        call("nvmf_set_config")["dhchap_dhgroups"],
        json!(["ffdhe4096"])
    );

    // Referrals: added once, listed, removed once.
    let la = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.9", "trsvcid": "8009"});
    assert_eq!(
        r.ok("nvmf_discovery_get_referrals", Value::Null).await,
        json!([])
    );
    r.ok("nvmf_discovery_add_referral", json!({"address": la}))
        .await;
    r.ok("nvmf_discovery_add_referral", json!({"address": la}))
        .await;
    r.err(
        "nvmf_discovery_add_referral",
        json!({"address": la, "subnqn": "not an nqn"}),
        INVALID_PARAMS,
    )
    .await;
    let refs = r.ok("nvmf_discovery_get_referrals", Value::Null).await;
    assert_eq!(refs.as_array().unwrap().len(), 1, "{refs}");
    assert_eq!(refs[0]["address"]["traddr"], "127.0.0.9");
    r.ok("nvmf_discovery_remove_referral", json!({"address": la}))
        .await;
    r.err(
        "nvmf_discovery_remove_referral",
        json!({"address": la}),
        ENODEV,
    )
    .await;

    // Socket options: posix applies and is saved; an unknown implementation is refused.
    let p = json!({"impl_name": "posix", "recv_buf_size": 1_048_576});
    r.ok("sock_impl_set_options", p).await;
    r.err(
        "sock_impl_set_options",
        json!({"impl_name": "uring"}),
        INVALID_PARAMS,
    )
    .await;
    r.ok("sock_set_default_impl", json!({"impl_name": "posix"}))
        .await;
    let msg = r
        .err(
            "sock_set_default_impl",
            json!({"impl_name": "uring"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("impl_name"), "{msg}");
    let sock = r.ok("framework_get_config", json!({"name": "sock"})).await;
    let posix = sock
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "sock_impl_set_options" && c["params"]["impl_name"] == "posix")
        .unwrap_or_else(|| panic!("{sock}"));
    assert_eq!(posix["params"]["recv_buf_size"], 1_048_576);

    // Options of modules Lamina does not have: any value of a `same` field, the one value of an
    // `only` field; anything else is refused by name.
    for (m, ok, bad, name) in [
        (
            "iobuf_set_options",
            json!({"small_pool_count": 8192}),
            json!({"x": 1}),
            "x",
        ),
        (
            "accel_set_options",
            json!({"task_count": 2048}),
            json!({"x": 1}),
            "x",
        ),
        (
            "bdev_set_options",
            json!({"bdev_io_pool_size": 65535}),
            json!({"bdev_auto_examine": false}),
            "bdev_auto_examine",
        ),
        (
            "framework_set_scheduler",
            json!({"name": "static"}),
            json!({"name": "dynamic"}),
            "name",
        ),
        (
            "bdev_nvme_set_options",
            json!({"timeout_us": 0, "action_on_timeout": "none"}),
            json!({"timeout_us": "x"}),
            "timeout_us",
        ),
        (
            "bdev_nvme_set_hotplug",
            json!({"enable": false}),
            json!({"enable": true}),
            "enable",
        ),
        (
            "bdev_raid_set_options",
            json!({"process_window_size_kb": 1024}),
            json!({"process_window_size_kb": "big"}),
            "process_window_size_kb",
        ),
    ] {
        assert_eq!(r.ok(m, ok).await, json!(true), "{m}");
        let msg = r.err(m, bad, INVALID_PARAMS).await;
        assert!(msg.contains(name), "{m}: {msg}");
    }
    assert_eq!(
        r.ok("bdev_wait_for_examine", Value::Null).await,
        json!(true)
    );
    r.err("bdev_wait_for_examine", json!({"x": 1}), INVALID_PARAMS)
        .await;

    // The catalogue: every method, each parameter with what Lamina does with it.
    let cat = r.ok("lamina_get_method_params", Value::Null).await;
    let hotplug = &cat["bdev_nvme_set_hotplug"];
    assert_eq!(hotplug["enable"]["only"], json!([false]), "{hotplug}");
    assert!(hotplug["period_us"]["same"].is_string(), "{hotplug}");
    assert!(!cat["nvmf_create_transport"]["max_io_size"].is_null());
    r.err("lamina_get_method_params", json!({"x": 1}), INVALID_PARAMS)
        .await;
}
