//! `cargo xtask trim`: strip documentation from a botocore model.

use serde_json::{Map, Value};

/// Keys that only carry documentation.
const DOC_KEYS: &[&str] = &[
    "documentation",
    "documentationUrl",
    "deprecatedMessage",
    "deprecatedSince",
];

fn strip(obj: &mut Value) {
    if let Value::Object(map) = obj {
        for k in DOC_KEYS {
            map.remove(*k);
        }
    }
}

/// Remove documentation keys at the places botocore puts them (the service,
/// operations and their shape references, shapes and their member
/// references). Member *names* are never touched, so a member that happens to
/// be called `documentation` survives.
pub fn trim_model(model: &Value) -> Value {
    let mut m = model.clone();
    strip(&mut m);
    if let Some(ops) = m.get_mut("operations").and_then(Value::as_object_mut) {
        for op in ops.values_mut() {
            strip(op);
            for key in ["input", "output"] {
                if let Some(r) = op.get_mut(key) {
                    strip(r);
                }
            }
            if let Some(errs) = op.get_mut("errors").and_then(Value::as_array_mut) {
                errs.iter_mut().for_each(strip);
            }
        }
    }
    if let Some(shapes) = m.get_mut("shapes").and_then(Value::as_object_mut) {
        for shape in shapes.values_mut() {
            strip(shape);
            for key in ["member", "key", "value"] {
                if let Some(r) = shape.get_mut(key) {
                    strip(r);
                }
            }
            if let Some(members) = shape.get_mut("members").and_then(Value::as_object_mut) {
                members.values_mut().for_each(strip);
            }
        }
    }
    sort_keys(&m)
}

/// Rebuild a value with every object's keys inserted in sorted order, so the
/// output is sorted whether or not serde_json's `preserve_order` is enabled.
pub fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sort_keys(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Pretty JSON (two-space indent) with a trailing newline.
pub fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values always serialize");
    s.push('\n');
    s
}
