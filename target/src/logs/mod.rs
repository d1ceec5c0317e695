//! Logs: the tracing subscriber and its formats ([`telemetry`]) and the log filter an
//! operator changes at run time ([`log_control`]). Every layer logs through `tracing`; this
//! module only decides where the lines go.

pub mod log_control;
pub mod telemetry;
