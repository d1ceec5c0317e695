//! `deploy/grafana/dashboards/lamina.json` uses only metrics that exist: every metric name in
//! every panel expression and variable query is in a scrape of a target that did I/O, and the
//! panels are well formed (unique ids, on the 24-column grid without overlaps, the `prometheus`
//! data source, unique refIds). `integration/prometheus/run.sh` evaluates the expressions in a
//! real Prometheus.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant

mod metrics_support;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use metrics_support::Metered;
use serde_json::Value;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/grafana/dashboards/lamina.json"
);

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every PromQL expression: panel targets and variable queries.
fn expressions(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        out.push(v["definition"].as_str().unwrap().to_owned());
    }
    out
}

/// Identifiers that name Lamina or process metrics.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            in_string = !in_string;
            continue;
        }
        if in_string || !(c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some((j, n)) = chars.peek().copied() {
            if n.is_ascii_alphanumeric() || n == '_' || n == ':' {
                end = j + n.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let word = &expr[i..end];
        if word.starts_with("lamina_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
    }
    names
}

#[test]
fn panels_are_well_formed() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "lamina-overview");
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut ids = BTreeSet::new();
    let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        let grid = &p["gridPos"];
        let at = |k: &str| grid[k].as_u64().unwrap();
        let (left, top, width, height) = (at("x"), at("y"), at("w"), at("h"));
        assert!(
            width > 0 && height > 0 && left + width <= 24,
            "{title}: {grid}"
        );
        for cx in left..left + width {
            for cy in top..top + height {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel");
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "prometheus", "{title}");
        assert!(
            !p["description"].as_str().unwrap_or("").is_empty(),
            "{title}"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        let refs: BTreeSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "{title}: duplicate refId");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_metric_exists_in_a_scrape() {
    let t = Metered::start().await;
    let host = t.host(1).await;
    let ns = host.namespace(1).await.unwrap();
    let q = host.io_queue(0).unwrap();
    let block = Bytes::from(vec![9u8; usize::try_from(ns.block_size).unwrap()]);
    for i in 0..8 {
        q.write(&ns, i, block.clone(), false).await.unwrap();
        q.read(&ns, i, 1, BytesMut::new()).await.unwrap();
    }
    let e = t.scrape().await;
    let exposed: BTreeSet<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
    let d = dashboard();
    let mut used = BTreeSet::new();
    for expr in expressions(&d) {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for n in names {
            assert!(
                exposed.contains(n.as_str()),
                "{n} (in {expr}) is not exposed"
            );
            used.insert(n);
        }
    }
    // The dashboard covers the headline families.
    for needed in [
        "lamina_commands_total",
        "lamina_command_duration_seconds_bucket",
        "lamina_read_bytes_total",
        "lamina_command_errors_total",
        "lamina_connections",
        "lamina_lvstore_free_bytes",
        "lamina_lvol_allocated_bytes",
        "lamina_rpc_requests_total",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    host.shutdown().await.unwrap();
    t.scrape_until(|e| e.value("lamina_connections", &[]) == 0.0)
        .await;
    t.stop().await;
}

#[test]
fn metric_name_scanner() {
    let n = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(lamina_command_duration_seconds_bucket{job=~"lamina_x"}[5m]))) / process_open_fds"#,
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        vec!["lamina_command_duration_seconds_bucket", "process_open_fds"]
    );
}
