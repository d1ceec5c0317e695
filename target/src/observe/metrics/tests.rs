//! Unit tests of the exposition over a bare target; the end-to-end checks (I/O, lvols, a real
//! Prometheus) are in `target/tests/metrics*.rs` and `integration/prometheus/run.sh`.

use super::catalog::{CATALOG, Kind};
use super::*;
use crate::options::TransportOptions;

fn bare() -> Arc<Target> {
    Target::new(TransportOptions::default())
}

#[test]
fn module_doc_lists_every_metric() {
    let doc: String = include_str!("mod.rs")
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    for d in CATALOG {
        assert!(
            doc.contains(&format!("`{}", d.name)),
            "{} is not documented",
            d.name
        );
    }
}

#[test]
fn every_family_is_declared_with_its_type_and_labels() {
    let t = bare();
    let rpc = RpcStats::new(&["spdk_get_version"]);
    rpc.observe("spdk_get_version", true, 0.000_2);
    let e = Exporter::new(&t, Some(rpc)).unwrap();
    for mf in e.gather() {
        if mf.name().starts_with("process_") {
            continue;
        }
        let def = catalog::find(mf.name()).unwrap_or_else(|| panic!("{} undeclared", mf.name()));
        let kind = match def.kind {
            Kind::Counter => prometheus::proto::MetricType::COUNTER,
            Kind::Gauge => prometheus::proto::MetricType::GAUGE,
            Kind::Histogram => prometheus::proto::MetricType::HISTOGRAM,
        };
        assert_eq!(mf.get_field_type(), kind, "{}", mf.name());
        for m in mf.get_metric() {
            let names: Vec<&str> = m
                .get_label()
                .iter()
                .map(prometheus::proto::LabelPair::name)
                .collect();
            assert_eq!(names, def.labels, "{}", mf.name());
        }
    }
}

#[test]
fn bare_target_exposes_build_transport_and_process_metrics() {
    let t = bare();
    let text = Exporter::new(&t, None).unwrap().render().unwrap();
    let build = format!(
        "lamina_build_info{{version=\"{}\",git_commit=\"{GIT_COMMIT}\"}} 1",
        crate::VERSION
    );
    assert!(text.contains(&build), "{text}");
    assert!(text.contains("lamina_io_stats_enabled 1"));
    assert!(text.contains("lamina_connections 0"));
    assert!(text.contains("lamina_config_pending_entries 0"));
    assert!(text.contains("lamina_queues{type=\"io\"} 0"));
    assert!(text.contains("lamina_term_reqs_sent_total{fes=\"pdu_sequence_error\"} 0"));
    // The discovery subsystem always exists.
    assert!(
        text.contains("lamina_controllers{subsystem=\"nqn.2014-08.org.nvmexpress.discovery\"} 0")
    );
    #[cfg(target_os = "linux")]
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    // No RPC stats given: no RPC families.
    assert!(!text.contains("lamina_rpc_requests_total"));
}

#[test]
fn rpc_observer_counts_calls_by_method_and_result() {
    let t = bare();
    let rpc = RpcStats::new(&["bdev_get_bdevs", "nvmf_get_subsystems"]);
    let observe = rpc_observer(&rpc);
    let err = crate::mgmt::rpc::RpcError::method_not_found("x");
    observe("bdev_get_bdevs", Ok(()), 0.003);
    observe("bdev_get_bdevs", Err(&err), 0.000_05);
    observe("unknown", Err(&err), 0.000_01);
    let text = Exporter::new(&t, Some(rpc)).unwrap().render().unwrap();
    for line in [
        "lamina_rpc_requests_total{method=\"bdev_get_bdevs\",result=\"ok\"} 1",
        "lamina_rpc_requests_total{method=\"bdev_get_bdevs\",result=\"error\"} 1",
        "lamina_rpc_requests_total{method=\"unknown\",result=\"error\"} 1",
        "lamina_rpc_request_duration_seconds_bucket{method=\"bdev_get_bdevs\",le=\"0.0001\"} 1",
        "lamina_rpc_request_duration_seconds_bucket{method=\"bdev_get_bdevs\",le=\"0.005\"} 2",
        "lamina_rpc_request_duration_seconds_count{method=\"bdev_get_bdevs\"} 2",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
    assert!(
        !text.contains("method=\"nvmf_get_subsystems\""),
        "never-called methods have no series"
    );
}

#[test]
fn a_dropped_target_exposes_only_build_info() {
    let t = bare();
    let e = Exporter::new(&t, None).unwrap();
    drop(t);
    let text = e.render().unwrap();
    assert!(text.contains("lamina_build_info"));
    assert!(!text.contains("lamina_connections"));
}
