//! The method table and the JSON-RPC 2.0 request/response rules.
//!
//! [`Methods`] maps method names to async handlers. [`Methods::handle_value`] takes one decoded
//! JSON value (a request, a notification or a batch) and returns the response value to write,
//! or `None` when JSON-RPC says nothing is answered (notifications, all-notification batches).
//! Handlers receive their parameters as [`Params`] and decode them with serde, so a missing or
//! unknown parameter becomes a -32602 error that names it; then the params struct's catalogue
//! ([`super::fields`]) refuses a parameter at a value Lamina does not implement. Each method's
//! catalogue is kept in the table ([`Methods::catalog`]) for the test that checks it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tracing::Instrument;

use super::error::RpcError;
use super::fields::{Catalog, Described};

/// What a handler returns.
pub type RpcResult = Result<Value, RpcError>;

type BoxFuture = Pin<Box<dyn Future<Output = RpcResult> + Send + 'static>>;
type Handler = Arc<dyn Fn(Params) -> BoxFuture + Send + Sync + 'static>;

/// Called after every request with the method, the outcome and the elapsed seconds (metrics).
pub type Observer = Arc<dyn Fn(&str, Result<(), &RpcError>, f64) + Send + Sync + 'static>;

/// The `params` member of a request.
#[derive(Debug, Clone, Default)]
pub struct Params(Option<Value>);

impl Params {
    /// Wraps a params value (`None` when the request had none).
    pub fn new(value: Option<Value>) -> Self {
        Self(value)
    }

    /// Decodes the parameters into `T` and checks them against its catalogue: no params decode
    /// as an empty object (so a `T` whose fields are all optional accepts a request without
    /// params); positional (array) params are refused, SPDK's methods taking named ones only.
    pub fn parse<T: Described>(self) -> Result<T, RpcError> {
        let mut value = match self.0 {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params must be an object of named parameters",
                ));
            }
        };
        super::fields::strip(T::FIELDS, &mut value)?;
        T::deserialize(value).map_err(RpcError::invalid_params)
    }

    /// The parameters as sent (`None` when the request had none).
    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }
}

/// The table of methods a server answers.
#[derive(Clone, Default)]
pub struct Methods {
    handlers: BTreeMap<&'static str, Handler>,
    catalogs: BTreeMap<&'static str, Catalog>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Methods")
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Methods {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name`; a later registration of the same name replaces the earlier one.
    pub fn register<F, Fut>(&mut self, name: &'static str, f: F)
    where
        F: Fn(Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcResult> + Send + 'static,
    {
        self.handlers
            .insert(name, Arc::new(move |p| Box::pin(f(p)) as BoxFuture));
    }

    /// Records the catalogue of `name`'s parameters (see [`super::fields`]).
    pub fn describe(&mut self, name: &'static str, catalog: Catalog) {
        self.catalogs.insert(name, catalog);
    }

    /// The catalogue of `name`'s parameters, if it was described.
    pub fn catalog(&self, name: &str) -> Option<Catalog> {
        self.catalogs.get(name).copied()
    }

    /// Sets the observer told of every call.
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// The registered method names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// Answers one decoded JSON value: a request, a notification or a batch.
    pub async fn handle_value(&self, value: Value) -> Option<Value> {
        match value {
            Value::Array(items) if items.is_empty() => Some(error_response(
                Value::Null,
                &RpcError::invalid_request("empty batch"),
            )),
            Value::Array(items) => {
                let answers =
                    futures::future::join_all(items.into_iter().map(|v| self.handle_one(v))).await;
                let answers: Vec<Value> = answers.into_iter().flatten().collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            other => self.handle_one(other).await,
        }
    }

    async fn handle_one(&self, value: Value) -> Option<Value> {
        let request = match Request::from_value(value) {
            Ok(r) => r,
            Err((id, e)) => return Some(error_response(id, &e)),
        };
        let started = Instant::now();
        let span = tracing::info_span!("rpc", method = %request.method);
        let handler = self.handlers.get(request.method.as_str());
        let outcome = match handler {
            // In a task of its own: a client that hangs up cannot stop a method half-way (its
            // change made but not persisted), and a panic in it answers this request with an
            // internal error instead of ending the connection and every request on it.
            Some(handler) => {
                let work = handler(Params(request.params)).instrument(span);
                match tokio::spawn(work).await {
                    Ok(r) => r,
                    Err(e) => {
                        let what = if e.is_panic() {
                            "panicked"
                        } else {
                            "was cancelled"
                        };
                        tracing::error!(method = %request.method, "rpc method {what}");
                        Err(RpcError::internal(format!(
                            "{} {what} (a bug; the target goes on)",
                            request.method
                        )))
                    }
                }
            }
            None => Err(RpcError::method_not_found(&request.method)),
        };
        if let Some(observer) = &self.observer {
            // Metrics labels must stay bounded: a name no handler knows is "unknown".
            let label = if handler.is_some() {
                request.method.as_str()
            } else {
                "unknown"
            };
            let elapsed = started.elapsed().as_secs_f64();
            observer(label, outcome.as_ref().map(|_| ()), elapsed);
        }
        if let Err(e) = &outcome {
            tracing::debug!(method = %request.method, code = e.code, message = %e.message, "rpc failed");
        }
        let id = request.id?;
        Some(match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => error_response(id, &e),
        })
    }
}

/// A validated JSON-RPC 2.0 request.
struct Request {
    /// `None` for a notification.
    id: Option<Value>,
    method: String,
    params: Option<Value>,
}

impl Request {
    fn from_value(value: Value) -> Result<Self, (Value, RpcError)> {
        let Value::Object(mut obj) = value else {
            return Err((
                Value::Null,
                RpcError::invalid_request("a request must be a JSON object"),
            ));
        };
        let id = obj.remove("id");
        let err_id = id.clone().unwrap_or(Value::Null);
        if let Some(id) = &id
            && !(id.is_string() || id.is_number() || id.is_null())
        {
            return Err((
                Value::Null,
                RpcError::invalid_request("'id' must be a string, a number or null"),
            ));
        }
        match obj.remove("jsonrpc") {
            Some(Value::String(v)) if v == "2.0" => {}
            _ => {
                return Err((
                    err_id,
                    RpcError::invalid_request("'jsonrpc' must be \"2.0\""),
                ));
            }
        }
        let Some(Value::String(method)) = obj.remove("method") else {
            return Err((
                err_id,
                RpcError::invalid_request("'method' must be a string"),
            ));
        };
        let params = obj.remove("params");
        if let Some(p) = &params
            && !(p.is_object() || p.is_array() || p.is_null())
        {
            return Err((
                err_id,
                RpcError::invalid_request("'params' must be an object or an array"),
            ));
        }
        Ok(Self { id, method, params })
    }
}

/// A response carrying `error`.
#[allow(clippy::needless_pass_by_value)] // ids are moved in from requests; taking them by value reads best
pub fn error_response(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EchoParams {
        name: String,
        #[serde(default)]
        count: u32,
    }

    impl Described for EchoParams {
        const FIELDS: &'static [crate::mgmt::rpc::fields::Field] = &[
            crate::mgmt::rpc::fields::applied("name"),
            crate::mgmt::rpc::fields::applied("count"),
        ];
    }

    fn table() -> Methods {
        let mut m = Methods::new();
        m.register("echo", |p: Params| async move {
            let p: EchoParams = p.parse()?;
            Ok(json!({"name": p.name, "count": p.count}))
        });
        m.register("nothing", |p: Params| async move {
            let _: crate::mgmt::rpc::fields::NoParams = p.parse()?;
            Ok(Value::Bool(true))
        });
        m
    }

    async fn call(m: &Methods, v: Value) -> Option<Value> {
        m.handle_value(v).await
    }

    #[tokio::test]
    async fn a_method_that_panics_answers_an_internal_error_and_the_next_one_works() {
        let mut m = table();
        m.register("explode", |_p: Params| async move {
            let v: Vec<Value> = std::hint::black_box(Vec::new());
            #[allow(clippy::indexing_slicing)] // the bug this test plants
            Ok(v[0].clone())
        });
        let r = call(&m, json!({"jsonrpc":"2.0","id":1,"method":"explode"}))
            .await
            .unwrap();
        assert_eq!(r["error"]["code"], -32603, "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("explode panicked")
        );
        let r = call(
            &m,
            json!({"jsonrpc":"2.0","id":2,"method":"echo","params":{"name":"b"}}),
        )
        .await
        .unwrap();
        assert_eq!(r["result"]["name"], "b");
    }

    #[tokio::test]
    async fn answers_a_request() {
        let r = call(
            &table(),
            json!({"jsonrpc":"2.0","id":1,"method":"echo","params":{"name":"a"}}),
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            json!({"jsonrpc":"2.0","id":1,"result":{"name":"a","count":0}})
        );
    }

    #[tokio::test]
    async fn missing_and_unknown_params_name_the_parameter() {
        let m = table();
        let r = call(
            &m,
            json!({"jsonrpc":"2.0","id":2,"method":"echo","params":{}}),
        )
        .await
        .unwrap();
        assert_eq!(r["error"]["code"], -32602);
        assert!(r["error"]["message"].as_str().unwrap().contains("name"));
        let r = call(
            &m,
            json!({"jsonrpc":"2.0","id":3,"method":"echo","params":{"name":"a","bogus":1}}),
        )
        .await
        .unwrap();
        assert!(r["error"]["message"].as_str().unwrap().contains("bogus"));
        let r = call(
            &m,
            json!({"jsonrpc":"2.0","id":4,"method":"nothing","params":{"x":1}}),
        )
        .await
        .unwrap();
        assert_eq!(r["error"]["code"], -32602);
    }

    #[tokio::test]
    async fn positional_params_are_refused() {
        let r = call(
            &table(),
            json!({"jsonrpc":"2.0","id":1,"method":"echo","params":["a", 1]}),
        )
        .await
        .unwrap();
        assert_eq!(r["error"]["code"], -32602);
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("named parameters")
        );
    }

    #[tokio::test]
    async fn unknown_method_and_bad_requests() {
        let m = table();
        let r = call(&m, json!({"jsonrpc":"2.0","id":"x","method":"nope"}))
            .await
            .unwrap();
        assert_eq!(r["error"]["code"], -32601);
        assert_eq!(r["id"], "x");
        let r = call(&m, json!({"id":5,"method":"echo"})).await.unwrap();
        assert_eq!(r["error"]["code"], -32600);
        assert_eq!(r["id"], 5);
        let r = call(&m, json!(42)).await.unwrap();
        assert_eq!(r["error"]["code"], -32600);
        assert_eq!(r["id"], Value::Null);
        let r = call(&m, json!([])).await.unwrap();
        assert_eq!(r["error"]["code"], -32600);
    }

    #[tokio::test]
    async fn notifications_get_no_answer() {
        let m = table();
        assert!(
            call(&m, json!({"jsonrpc":"2.0","method":"nothing"}))
                .await
                .is_none()
        );
        assert!(
            call(&m, json!([{"jsonrpc":"2.0","method":"nothing"}]))
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn batch_answers_each_request_in_order() {
        let m = table();
        let r = call(
            &m,
            json!([
                {"jsonrpc":"2.0","id":1,"method":"nothing"},
                {"jsonrpc":"2.0","method":"nothing"},
                {"jsonrpc":"2.0","id":2,"method":"nope"},
                7
            ]),
        )
        .await
        .unwrap();
        let arr = r.as_array().unwrap();
        assert_eq!(arr.len(), 3);
        assert_eq!(arr[0]["result"], true);
        assert_eq!(arr[1]["error"]["code"], -32601);
        assert_eq!(arr[2]["error"]["code"], -32600);
    }

    #[tokio::test]
    async fn observer_sees_every_call() {
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut m = table();
        let s = seen.clone();
        m.set_observer(Arc::new(move |method, outcome, _| {
            s.lock().push((method.to_string(), outcome.is_ok()));
        }));
        call(&m, json!({"jsonrpc":"2.0","id":1,"method":"nothing"})).await;
        call(&m, json!({"jsonrpc":"2.0","id":2,"method":"nope"})).await;
        assert_eq!(
            *seen.lock(),
            vec![
                ("nothing".to_string(), true),
                ("unknown".to_string(), false)
            ]
        );
    }
}
