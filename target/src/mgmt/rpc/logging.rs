//! SPDK's log methods: `log_set_level`, `log_get_level`, `log_set_print_level`,
//! `log_get_print_level`, `log_set_flag`, `log_clear_flag` and `log_get_flags`, changing the
//! log filter of the running target (see [`crate::logs::log_control`] for what each means in
//! Lamina). They are run-time settings, as in SPDK: not saved in the configuration.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dispatch::Methods;
use super::error::RpcError;
use super::fields::{Described, Field, NoParams, applied};
use crate::logs::log_control::LogControl;
use crate::mgmt::context::Target;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "log_set_level", |_t, p: Level| async move {
        apply(|c| c.set_level(&p.level))?;
        tracing::info!(level = %p.level, "log level set");
        Ok(json!(true))
    });
    super::reg(m, t, "log_set_print_level", |_t, p: Level| async move {
        apply(|c| c.set_print_level(&p.level))?;
        tracing::info!(level = %p.level, "log print level set");
        Ok(json!(true))
    });
    super::reg(m, t, "log_get_level", |_t, _p: NoParams| async move {
        Ok(json!(control()?.level()))
    });
    super::reg(m, t, "log_get_print_level", |_t, _p: NoParams| async move {
        Ok(json!(control()?.print_level()))
    });
    super::reg(m, t, "log_set_flag", |_t, p: Flag| async move {
        apply(|c| c.set_flag(&p.flag, true))?;
        tracing::info!(flag = %p.flag, "log flag set");
        Ok(json!(true))
    });
    super::reg(m, t, "log_clear_flag", |_t, p: Flag| async move {
        apply(|c| c.set_flag(&p.flag, false))?;
        tracing::info!(flag = %p.flag, "log flag cleared");
        Ok(json!(true))
    });
    super::reg(m, t, "log_get_flags", |_t, _p: NoParams| async move {
        let flags: Map<String, Value> = control()?
            .flags()
            .into_iter()
            .map(|(f, on)| (f.to_owned(), json!(on)))
            .collect();
        Ok(Value::Object(flags))
    });
}

fn control() -> Result<&'static LogControl, RpcError> {
    LogControl::global().map_err(|e| RpcError::new(super::error::ENOTSUP, e))
}

/// Runs a change; an unknown name is the caller's error, anything else the target's.
fn apply(f: impl FnOnce(&LogControl) -> Result<(), String>) -> Result<(), RpcError> {
    f(control()?).map_err(|e| {
        if e.starts_with("unknown") {
            RpcError::invalid_params(e)
        } else {
            RpcError::internal(e)
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Level {
    level: String,
}

impl Described for Level {
    const FIELDS: &'static [Field] = &[applied("level")];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flag {
    flag: String,
}

impl Described for Flag {
    const FIELDS: &'static [Field] = &[applied("flag")];
}
