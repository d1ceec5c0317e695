//! `notify_get_types` and `notify_get_notifications` over the target's event log
//! ([`crate::mgmt::notify`]).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::Methods;
use super::fields::{Described, Field, NoParams, applied};
use crate::mgmt::context::Target;
use crate::mgmt::notify::TYPES;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "notify_get_types", |_t, _p: NoParams| async move {
        Ok(json!(TYPES))
    });
    super::reg(
        m,
        t,
        "notify_get_notifications",
        |t, p: GetNotifications| async move {
            t.notifier.observe(|| t.bdev_names());
            let events: Vec<Value> = t
                .notifier
                .events(p.id.unwrap_or(0), p.max.unwrap_or(u64::MAX))
                .into_iter()
                .map(|e| json!({"id": e.id, "type": e.kind, "ctx": e.ctx}))
                .collect();
            Ok(Value::Array(events))
        },
    );
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GetNotifications {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    max: Option<u64>,
}

impl Described for GetNotifications {
    const FIELDS: &'static [Field] = &[applied("id"), applied("max")];
}
