//! The daily operator methods, each called once with its error cases (their behaviour under
//! I/O is `rpc_daily.rs`'s): statistics, histograms, resizes, notifications, the runtime and
//! the log filter (which this process's logging, not set up by Lamina, refuses to change).

use lamina_target::mgmt::rpc::error::{EINVAL, ENODEV, ENOTSUP, INVALID_PARAMS};
use serde_json::json;

use super::Rpc;

pub async fn daily(r: &mut Rpc) {
    r.ok(
        "bdev_null_create",
        json!({"name": "Daily0", "num_blocks": 2048, "block_size": 512}),
    )
    .await;
    let s = r.ok("bdev_get_iostat", json!({"names": ["Daily0"]})).await;
    assert_eq!(s["bdevs"][0]["name"], "Daily0");
    assert_eq!(s["bdevs"][0]["num_read_ops"], 0);
    r.err("bdev_get_iostat", json!({"names": ["none"]}), ENODEV)
        .await;
    r.ok(
        "bdev_reset_iostat",
        json!({"name": "Daily0", "mode": "all"}),
    )
    .await;
    r.err("bdev_reset_iostat", json!({"name": "none"}), ENODEV)
        .await;
    let e = r
        .err(
            "bdev_enable_histogram",
            json!({"name": "Daily0"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(e.contains("enable"), "{e}");
    r.err(
        "bdev_enable_histogram",
        json!({"name": "Daily0", "enable": true}),
        ENODEV,
    )
    .await;
    r.err("bdev_get_histogram", json!({"name": "Daily0"}), EINVAL)
        .await;
    r.ok("bdev_null_resize", json!({"name": "Daily0", "new_size": 2}))
        .await;
    let b = r.ok("bdev_get_bdevs", json!({"name": "Daily0"})).await;
    assert_eq!(b[0]["num_blocks"], 4096);
    r.err(
        "bdev_null_resize",
        json!({"name": "Daily0", "new_size": 0}),
        INVALID_PARAMS,
    )
    .await;
    r.err("bdev_aio_rescan", json!({"name": "Daily0"}), ENODEV)
        .await;
    r.ok("bdev_null_delete", json!({"name": "Daily0"})).await;
    let types = r.ok("notify_get_types", json!({})).await;
    assert_eq!(types, json!(["bdev_register", "bdev_unregister"]));
    let events = r.ok("notify_get_notifications", json!({"max": 1000})).await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "bdev_unregister");
    assert_eq!(last["ctx"], "Daily0");
    let reactors = r.ok("framework_get_reactors", json!({})).await;
    assert!(!reactors["reactors"].as_array().unwrap().is_empty());
    let threads = r.ok("thread_get_stats", json!({})).await;
    assert!(!threads["threads"].as_array().unwrap().is_empty());
    for (method, params) in [
        ("log_set_level", json!({"level": "INFO"})),
        ("log_get_level", json!({})),
        ("log_set_print_level", json!({"level": "INFO"})),
        ("log_get_print_level", json!({})),
        ("log_set_flag", json!({"flag": "nvmf"})),
        ("log_clear_flag", json!({"flag": "nvmf"})),
        ("log_get_flags", json!({})),
    ] {
        r.err(method, params, ENOTSUP).await;
    }
    r.err("log_set_level", json!({}), INVALID_PARAMS).await;
}
