//! The parameter catalogue: every parameter every method accepts, and what Lamina does with it.
//!
//! SPDK's clients send every parameter SPDK's schema defines for a method (`spdk-rpc` fills
//! many with defaults: `no_srq: false`, `enable_nssr: false`...), and a configuration saved by
//! SPDK carries more. Lamina accepts each of them, under one rule: **a parameter is never
//! accepted and then ignored**. Each params struct implements [`Described`], listing each of its
//! fields with one [`Use`]:
//!
//! - [`Use::Applied`]: Lamina implements it; the handler applies it, or checks it against what
//!   it depends on (an `anagrpid` against the NSID).
//! - [`Use::Only`]: Lamina does not implement it. It is accepted only at the values under which
//!   SPDK behaves as Lamina does (a switch that is off, a count of 0, the value naming what
//!   Lamina does), and [`strip`] refuses any other with -32602 and a message naming the
//!   parameter, the value and why.
//! - [`Use::Same`]: every value means the same in Lamina (`include_aliases` where there are no
//!   aliases); the reason is part of the catalogue.
//! - [`Use::Object`]: a nested object with a catalogue of its own (`namespace`,
//!   `listen_address`).
//!
//! Only `Applied` (and `Object`) parameters are fields of the params struct; `Only` and `Same`
//! ones are not. [`Params::parse`](super::Params::parse) first runs [`strip`], which refuses an
//! `Only` parameter at a value its catalogue does not list (or a `Same` one of the wrong type),
//! naming it, and removes both kinds from the request; then serde decodes what is left, and
//! `deny_unknown_fields` refuses any name the catalogue does not know. So every field a struct
//! holds is one the handler applies, and the compiler's dead-code lint (never allowed on a params
//! struct: a test greps for it) proves something reads it. The catalogue is registered with each
//! method (`rpc::reg`); `catalogue_matches_the_params_structs` checks that its `Applied`
//! names are exactly the fields serde accepts ([`serde_names`]), and the SPDK client test
//! (`integration/clients/`) that every parameter SPDK's own `spdk-rpc` sends is accepted.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

use super::error::RpcError;

/// A literal a [`Use::Only`] parameter is accepted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string (compared exactly).
    Str(&'static str),
    /// An empty array.
    EmptyList,
}

impl Lit {
    /// Whether the JSON value `v` is this literal.
    pub fn matches(&self, v: &Value) -> bool {
        match *self {
            Self::Bool(b) => v.as_bool() == Some(b),
            Self::Int(i) => {
                v.as_i64() == Some(i) || u64::try_from(i).is_ok_and(|u| v.as_u64() == Some(u))
            }
            Self::Str(s) => v.as_str() == Some(s),
            Self::EmptyList => v.as_array().is_some_and(Vec::is_empty),
        }
    }

    /// The literal as JSON.
    pub fn to_json(&self) -> Value {
        match *self {
            Self::Bool(b) => Value::Bool(b),
            Self::Int(i) => Value::from(i),
            Self::Str(s) => Value::from(s),
            Self::EmptyList => Value::Array(Vec::new()),
        }
    }
}

/// The JSON type of a [`Use::Same`] parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `true` or `false`.
    Bool,
    /// An integer.
    Int,
    /// A string.
    Str,
    /// An array of strings.
    StrList,
    /// An object.
    Object,
}

impl Ty {
    fn matches(self, v: &Value) -> bool {
        match self {
            Self::Bool => v.is_boolean(),
            Self::Int => v.is_i64() || v.is_u64(),
            Self::Str => v.is_string(),
            Self::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Self::Object => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bool => "a boolean",
            Self::Int => "an integer",
            Self::Str => "a string",
            Self::StrList => "an array of strings",
            Self::Object => "an object",
        }
    }
}

/// What Lamina does with one parameter.
#[derive(Debug, Clone, Copy)]
pub enum Use {
    /// Lamina implements it: the handler applies it or checks it against what it depends on.
    Applied,
    /// Lamina does not implement it: accepted (besides absent or null) only at `values`, and
    /// refused otherwise with `why`.
    Only {
        /// The values accepted; empty when only absent is.
        values: &'static [Lit],
        /// Why other values are refused: what Lamina does instead.
        why: &'static str,
    },
    /// Every value (of type `ty`) means the same in Lamina, for reason `why`.
    Same {
        /// The JSON type the value must have.
        ty: Ty,
        /// Why the value makes no difference.
        why: &'static str,
    },
    /// A nested object with parameters of its own.
    Object(Catalog),
}

/// One parameter and its [`Use`].
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The parameter's name, as SPDK spells it.
    pub name: &'static str,
    /// What Lamina does with it.
    pub usage: Use,
}

/// A parameter Lamina implements.
pub const fn applied(name: &'static str) -> Field {
    Field {
        name,
        usage: Use::Applied,
    }
}

/// A parameter accepted only at `values` (or absent); anything else is refused with `why`.
pub const fn only(name: &'static str, values: &'static [Lit], why: &'static str) -> Field {
    Field {
        name,
        usage: Use::Only { values, why },
    }
}

/// A parameter whose every value of type `ty` means the same in Lamina, for reason `why`.
pub const fn same(name: &'static str, ty: Ty, why: &'static str) -> Field {
    Field {
        name,
        usage: Use::Same { ty, why },
    }
}

/// A nested object described by `T`.
pub const fn object<T: Described>(name: &'static str) -> Field {
    Field {
        name,
        usage: Use::Object(Catalog::of::<T>()),
    }
}

/// `tgt_name`, which every `nvmf_*` method takes: SPDK can run several NVMe-oF targets in one
/// process, Lamina runs one, answering to the name of SPDK's default target.
pub const TGT_NAME: Field = only(
    "tgt_name",
    &[Lit::Str(DEFAULT_TGT_NAME)],
    "Lamina runs one NVMe-oF target, named like SPDK's default one; leave tgt_name out",
);

/// The name of Lamina's one NVMe-oF target (SPDK's default target's name).
pub const DEFAULT_TGT_NAME: &str = "nvmf_tgt";

/// The catalogue of one params struct: its fields' uses and the names serde accepts.
#[derive(Clone, Copy)]
pub struct Catalog {
    /// Every parameter with its use.
    pub fields: &'static [Field],
    names: fn() -> Vec<&'static str>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// The catalogue of `T`.
    pub const fn of<T: Described>() -> Self {
        Self {
            fields: T::FIELDS,
            names: serde_names::<T>,
        }
    }

    /// The field names serde accepts for the struct (to compare with [`Self::fields`]).
    pub fn accepted(&self) -> Vec<&'static str> {
        (self.names)()
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A params struct with its catalogue.
pub trait Described: DeserializeOwned {
    /// Every field of the struct, with what Lamina does with it.
    const FIELDS: &'static [Field];
}

/// The params of a method that takes none (an empty object or no params at all).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Described for NoParams {
    const FIELDS: &'static [Field] = &[];
}

/// Refuses any [`Use::Only`] parameter of `value` that is not at a value its catalogue lists
/// (and any [`Use::Same`] one of the wrong type), naming it (`namespace.no_auto_visible` for a
/// nested one), then removes both kinds from `value`, leaving what the params struct decodes.
pub fn strip(fields: &[Field], value: &mut Value) -> Result<(), RpcError> {
    strip_at(fields, value, "")
}

fn strip_at(fields: &[Field], value: &mut Value, path: &str) -> Result<(), RpcError> {
    let Some(obj) = value.as_object_mut() else {
        return Ok(());
    };
    for f in fields {
        let Some(v) = obj.get_mut(f.name) else {
            continue;
        };
        match f.usage {
            Use::Applied => {}
            Use::Object(c) => {
                strip_at(c.fields, v, &format!("{path}{}.", f.name))?;
                // An object whose parameters are all checked and stripped holds nothing for
                // the struct: it goes too.
                if held(c.fields).is_empty() {
                    obj.remove(f.name);
                }
            }
            Use::Only { values, why } => {
                if !v.is_null() && !values.iter().any(|l| l.matches(v)) {
                    let accepted = if values.is_empty() {
                        "only leaving it out".to_owned()
                    } else {
                        let list: Vec<String> =
                            values.iter().map(|l| l.to_json().to_string()).collect();
                        list.join(" or ")
                    };
                    return Err(RpcError::invalid_params(format!(
                        "{path}{} {v} is not supported: {why} (Lamina accepts {accepted})",
                        f.name
                    )));
                }
                obj.remove(f.name);
            }
            Use::Same { ty, .. } => {
                if !v.is_null() && !ty.matches(v) {
                    return Err(RpcError::invalid_params(format!(
                        "{path}{} {v}: expected {}",
                        f.name,
                        ty.name()
                    )));
                }
                obj.remove(f.name);
            }
        }
    }
    Ok(())
}

/// The names of the fields a params struct holds: the [`Use::Applied`] ones and the
/// [`Use::Object`] ones that hold something themselves.
pub fn held(fields: &[Field]) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|f| match f.usage {
            Use::Applied => true,
            Use::Object(c) => !held(c.fields).is_empty(),
            Use::Only { .. } | Use::Same { .. } => false,
        })
        .map(|f| f.name)
        .collect()
}

/// The field names serde's derived `Deserialize` of `T` accepts (aliases included): what it
/// passes to `deserialize_struct`. Empty for a type that is not a plain struct (a
/// `#[serde(flatten)]` one is read as a map and has no fixed list: the catalogue test fails).
pub fn serde_names<T: DeserializeOwned>() -> Vec<&'static str> {
    match T::deserialize(Recorder) {
        Err(Recorded(Some(fields))) => fields.to_vec(),
        _ => Vec::new(),
    }
}

/// A deserializer that only records the field list of the struct asked of it.
struct Recorder;

#[derive(Debug)]
struct Recorded(Option<&'static [&'static str]>);

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field list recorded")
    }
}

impl std::error::Error for Recorded {}

impl de::Error for Recorded {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Self(None)
    }
}

impl<'de> Deserializer<'de> for Recorder {
    type Error = Recorded;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Recorded> {
        Err(Recorded(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Recorded> {
        Err(Recorded(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        b: Option<u32>,
    }

    impl Described for Inner {
        const FIELDS: &'static [Field] =
            &[applied("b"), only("a", &[Lit::Bool(false)], "no a here")];
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    impl Described for Outer {
        const FIELDS: &'static [Field] = &[
            applied("name"),
            only("count", &[Lit::Int(0), Lit::Int(7)], "counts are 0 or 7"),
            same("verbose", Ty::Bool, "Lamina says the same either way"),
            object::<Inner>("inner"),
        ];
    }

    fn parse(v: Value) -> Result<Outer, RpcError> {
        let mut v = v;
        strip(Outer::FIELDS, &mut v)?;
        Outer::deserialize(v).map_err(RpcError::invalid_params)
    }

    #[test]
    fn serde_names_are_the_held_fields() {
        assert_eq!(serde_names::<Outer>(), ["name", "inner"]);
        assert_eq!(held(Outer::FIELDS), ["name", "inner"]);
        assert_eq!(serde_names::<NoParams>(), Vec::<&str>::new());
        assert_eq!(Catalog::of::<Inner>().accepted(), ["b"]);
    }

    #[test]
    fn only_fields_are_accepted_at_their_values_and_removed() {
        let o = parse(json!({"name": "x", "count": 7, "verbose": true})).unwrap();
        assert_eq!(o.name, "x");
        parse(json!({"name": "x", "count": null})).unwrap();
        let o = parse(json!({"name": "x", "inner": {"a": false, "b": 3}})).unwrap();
        assert_eq!(o.inner.and_then(|i| i.b), Some(3));
    }

    #[test]
    fn only_fields_are_refused_outside_their_values() {
        let e = parse(json!({"name": "x", "count": 3})).err().unwrap();
        assert_eq!(e.code, super::super::error::INVALID_PARAMS);
        assert!(e.message.contains("count 3"), "{}", e.message);
        assert!(e.message.contains("counts are 0 or 7"), "{}", e.message);
        assert!(e.message.contains("0 or 7)"), "{}", e.message);
        let e = parse(json!({"name": "x", "inner": {"a": true}}))
            .err()
            .unwrap();
        assert!(e.message.contains("inner.a true"), "{}", e.message);
        let e = parse(json!({"name": "x", "verbose": "yes"})).err().unwrap();
        assert!(
            e.message.contains("verbose \"yes\": expected a boolean"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_fields_are_still_refused_by_name() {
        let e = parse(json!({"name": "x", "colour": 1})).err().unwrap();
        assert!(e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn literals_match_their_json() {
        assert!(Lit::Int(0).matches(&json!(0)));
        assert!(Lit::Int(-1).matches(&json!(-1)));
        assert!(!Lit::Int(0).matches(&json!(false)));
        assert!(Lit::Str("posix").matches(&json!("posix")));
        assert!(!Lit::Bool(false).matches(&json!(0)));
    }
}
