//! The configuration's side of every state-changing RPC, installed as the target's
//! [`ChangeHook`]: before the call, the guard that keeps pending entries' names and parents
//! ([`super::guard`]); after a successful call, the persisted file is rewritten
//! ([`super::persist`]) and the retry of pending entries is woken (the call may be what one
//! waited for); a retry pass's own calls do neither (the pass persists when it is done).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::mgmt::context::{ChangeHook, Target};
use crate::mgmt::rpc::error::RpcError;

/// Guard, persistence and pending-entry wake-up around RPC changes.
#[derive(Debug, Default)]
pub struct Persistence;

impl ChangeHook for Persistence {
    fn admit(&self, t: &Target, method: &str, params: &Value) -> Result<(), RpcError> {
        super::guard::check(t, method, params)
    }

    fn applied<'a>(
        &'a self,
        t: &'a Arc<Target>,
        method: &'a str,
        params: &'a Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            // A retry's own call (the pending entry itself) neither persists nor wakes the
            // retry: until the pass removes the entry, the object would be in the file twice
            // (live and pending), and the pass persists once it is done.
            if t.pending.has_call(method, params) {
                return;
            }
            super::persist(t).await;
            if !t.pending.is_empty() {
                t.pending.wake();
            }
        })
    }
}
