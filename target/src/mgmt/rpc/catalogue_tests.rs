//! Checks of every method's parameter catalogue (see [`super::fields`]) against the params
//! struct it describes and against requests: a parameter is never accepted and then ignored.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::fields::{Lit, Use, held};
use crate::mgmt::context::Target;
use crate::options::TransportOptions;

fn table() -> (Arc<Target>, super::Methods) {
    let t = Target::new(TransportOptions::default());
    let m = crate::mgmt::methods(&t);
    (t, m)
}

#[test]
fn every_method_has_a_catalogue_matching_its_params_struct() {
    let (_t, m) = table();
    for name in m.names() {
        let c = m
            .catalog(name)
            .unwrap_or_else(|| panic!("{name} is registered without a catalogue"));
        let mut seen = BTreeSet::new();
        for f in c.fields {
            assert!(seen.insert(f.name), "{name}: {} listed twice", f.name);
        }
        let mut nested = vec![(name.to_owned(), c)];
        while let Some((path, c)) = nested.pop() {
            let held: BTreeSet<_> = held(c.fields).into_iter().collect();
            let accepted: BTreeSet<_> = c.accepted().into_iter().collect();
            assert_eq!(
                held, accepted,
                "{path}: the fields the struct decodes must be exactly the Applied ones"
            );
            for f in c.fields {
                if let Use::Object(inner) = f.usage {
                    nested.push((format!("{path}.{}", f.name), inner));
                }
            }
        }
    }
}

/// A value outside `values` of the same JSON kind.
fn outside(values: &[Lit]) -> Value {
    match values.first() {
        None | Some(Lit::Str(_)) => json!("lamina-test"),
        Some(Lit::Bool(b)) => json!(!b),
        Some(Lit::Int(_)) => json!(987_654),
        Some(Lit::EmptyList) => json!(["lamina-test"]),
    }
}

#[tokio::test]
async fn every_only_parameter_is_refused_outside_its_values_by_name() {
    let (_t, m) = table();
    let mut checked = 0;
    for name in m.names() {
        let Some(c) = m.catalog(name) else { continue };
        let mut cases = Vec::new();
        for f in c.fields {
            match f.usage {
                Use::Only { values, .. } => cases.push((json!({f.name: outside(values)}), f.name)),
                Use::Object(inner) => {
                    for g in inner.fields {
                        if let Use::Only { values, .. } = g.usage {
                            cases.push((json!({f.name: {g.name: outside(values)}}), g.name));
                        }
                    }
                }
                _ => {}
            }
        }
        for (params, field) in cases {
            let req = json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": params});
            let resp = m.handle_value(req).await.expect("a response");
            let err = &resp["error"];
            assert_eq!(err["code"], -32602, "{name} {params}: {resp}");
            let msg = err["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(field) && msg.contains("not supported"),
                "{name} {params}: {msg}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} refusals checked");
}

#[test]
fn no_params_struct_hides_an_unread_field() {
    // The dead-code lint is what proves every Applied field is read by its handler: it must
    // never be switched off in the method files.
    for (file, text) in [
        ("bdev.rs", include_str!("bdev.rs")),
        ("lvol.rs", include_str!("lvol.rs")),
        ("lvol_ops.rs", include_str!("lvol_ops.rs")),
        ("lvol_check.rs", include_str!("lvol_check.rs")),
        ("framework.rs", include_str!("framework.rs")),
        ("compat.rs", include_str!("compat.rs")),
        ("nvmf/config.rs", include_str!("nvmf/config.rs")),
        ("nvmf/referral.rs", include_str!("nvmf/referral.rs")),
        ("nvmf/mod.rs", include_str!("nvmf/mod.rs")),
        ("nvmf/transport.rs", include_str!("nvmf/transport.rs")),
        ("nvmf/subsystem.rs", include_str!("nvmf/subsystem.rs")),
        ("nvmf/listener.rs", include_str!("nvmf/listener.rs")),
        ("nvmf/namespace.rs", include_str!("nvmf/namespace.rs")),
        ("nvmf/host.rs", include_str!("nvmf/host.rs")),
        ("nvmf/status.rs", include_str!("nvmf/status.rs")),
        ("../config/methods.rs", include_str!("../config/methods.rs")),
    ] {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        assert!(
            !code.contains(concat!("allow(", "dead_code")),
            "{file} switches the dead-code lint off"
        );
    }
}
