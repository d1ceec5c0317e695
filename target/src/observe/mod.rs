//! Observability: the Prometheus [`metrics`] (read from the data and management planes at
//! scrape time) and the [`http`] server that serves them, with its limits
//! ([`http_limits`]). The per-namespace and per-controller counters themselves are the data
//! plane's (`crate::plane::stats`); logs are [`crate::logs`].

pub mod http;
pub mod http_limits;
pub mod metrics;
