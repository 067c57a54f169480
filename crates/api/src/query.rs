//! The awsQuery protocol's payloads, driven by a botocore model: a request's
//! form parameters (`Action=...&Tags.member.1.Key=...`) become the
//! operation's input as the JSON tree the generated types deserialize, and
//! an output (serialized from a generated type) becomes the XML answer
//! `<OpResponse><OpResult>...</OpResult><ResponseMetadata>...` with the
//! model's element names. Errors are the XML `ErrorResponse`.
//!
//! Why a model at run time, not generated code: the same generated types
//! already serve the JSON protocols, and the Query layout (list member
//! names, map entry names, flattening, `locationName`, timestamp formats)
//! is all in the model's shapes, so one walker over the shapes serves every
//! Query service (STS, IAM, ELBv2, and CloudWatch's older clients).

use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A request that cannot be read as the operation's input. The message
/// names the parameter and says what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

#[derive(Debug, Clone)]
struct Member {
    /// The member's name in the model (and in the JSON tree).
    name: String,
    /// Its name on the wire (`locationName`, else the member name).
    wire: String,
    shape: String,
}

#[derive(Debug, Clone)]
enum Shape {
    Structure(Vec<Member>),
    List {
        member: String,
        /// Element name of each item (`member` unless renamed).
        item: String,
        flattened: bool,
    },
    Map {
        key: String,
        value: String,
        key_name: String,
        value_name: String,
        flattened: bool,
    },
    String,
    Integer,
    Float,
    Boolean,
    Timestamp,
    Blob,
}

#[derive(Debug, Clone)]
struct Operation {
    input: Option<String>,
    output: Option<String>,
    result_wrapper: Option<String>,
}

/// What the codec needs from one service model.
#[derive(Debug)]
pub struct QueryModel {
    namespace: String,
    api_version: String,
    shapes: HashMap<String, Shape>,
    operations: HashMap<String, Operation>,
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn shape_ref(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|r| s(r, "shape")).map(str::to_string)
}

impl QueryModel {
    /// Reads a botocore `service-2.json` (documentation may be trimmed).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("model: {e}"))?;
        let md = v.get("metadata").ok_or("model: no metadata")?;
        let namespace = s(md, "xmlNamespace").unwrap_or_default().to_string();
        let api_version = s(md, "apiVersion").unwrap_or_default().to_string();
        let mut shapes = HashMap::new();
        for (name, sh) in v
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("model: no shapes")?
        {
            let ty = s(sh, "type").unwrap_or_default();
            let flattened = sh.get("flattened").and_then(Value::as_bool) == Some(true);
            let shape = match ty {
                "structure" => {
                    let mut members = Vec::new();
                    if let Some(ms) = sh.get("members").and_then(Value::as_object) {
                        for (m, r) in ms {
                            members.push(Member {
                                name: m.clone(),
                                wire: s(r, "locationName").unwrap_or(m).to_string(),
                                shape: s(r, "shape")
                                    .ok_or_else(|| format!("model: {name}.{m} has no shape"))?
                                    .to_string(),
                            });
                        }
                    }
                    Shape::Structure(members)
                }
                "list" => {
                    let m = sh.get("member").ok_or_else(|| format!("model: {name}"))?;
                    Shape::List {
                        member: shape_ref(sh, "member")
                            .ok_or_else(|| format!("model: {name} member"))?,
                        item: s(m, "locationName").unwrap_or("member").to_string(),
                        flattened,
                    }
                }
                "map" => {
                    let k = sh.get("key").ok_or_else(|| format!("model: {name} key"))?;
                    let val = sh
                        .get("value")
                        .ok_or_else(|| format!("model: {name} value"))?;
                    Shape::Map {
                        key: shape_ref(sh, "key").ok_or_else(|| format!("model: {name} key"))?,
                        value: shape_ref(sh, "value")
                            .ok_or_else(|| format!("model: {name} value"))?,
                        key_name: s(k, "locationName").unwrap_or("key").to_string(),
                        value_name: s(val, "locationName").unwrap_or("value").to_string(),
                        flattened,
                    }
                }
                "string" => Shape::String,
                "integer" | "long" | "short" | "byte" => Shape::Integer,
                "float" | "double" => Shape::Float,
                "boolean" => Shape::Boolean,
                "timestamp" => Shape::Timestamp,
                "blob" => Shape::Blob,
                other => return Err(format!("model: {name} has type {other}")),
            };
            shapes.insert(name.clone(), shape);
        }
        let mut operations = HashMap::new();
        if let Some(ops) = v.get("operations").and_then(Value::as_object) {
            for (name, op) in ops {
                operations.insert(
                    name.clone(),
                    Operation {
                        input: shape_ref(op, "input"),
                        output: shape_ref(op, "output"),
                        result_wrapper: op
                            .get("output")
                            .and_then(|o| s(o, "resultWrapper"))
                            .map(str::to_string),
                    },
                );
            }
        }
        Ok(QueryModel {
            namespace,
            api_version,
            shapes,
            operations,
        })
    }

    /// The model's `xmlNamespace`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The model's API version (a Query request's `Version`).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    fn shape(&self, name: &str) -> Result<&Shape, QueryError> {
        self.shapes
            .get(name)
            .ok_or_else(|| QueryError(format!("the model has no shape {name}")))
    }

    /// The operation's input as a JSON object, from the request's form
    /// parameters (without `Action` and `Version`). A parameter that is
    /// not part of the input, or a value of the wrong type, is an error
    /// naming it.
    pub fn decode_input(&self, op: &str, params: &[(String, String)]) -> Result<Value, QueryError> {
        let operation = self
            .operations
            .get(op)
            .ok_or_else(|| QueryError(format!("unknown operation {op}")))?;
        let mut root = Node::default();
        for (k, v) in params {
            root.insert(k, v)?;
        }
        let Some(input) = &operation.input else {
            if let Some(k) = root.children.keys().next() {
                return Err(QueryError(format!(
                    "{k} is not a parameter of {op}, which takes none."
                )));
            }
            return Ok(Value::Object(Map::new()));
        };
        Ok(self
            .decode(input, &root, "")?
            .unwrap_or_else(|| Value::Object(Map::new())))
    }

    fn decode(&self, shape: &str, node: &Node, path: &str) -> Result<Option<Value>, QueryError> {
        match self.shape(shape)? {
            Shape::Structure(members) => {
                let mut out = Map::new();
                for (key, _) in node.children.iter() {
                    if !members.iter().any(|m| &m.wire == key) {
                        return Err(QueryError(format!(
                            "{} is not a parameter of {}.",
                            join(path, key),
                            if path.is_empty() { shape } else { path }
                        )));
                    }
                }
                if node.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    return Err(QueryError(format!(
                        "{path} is a structure; give its members as {path}.Name."
                    )));
                }
                for m in members {
                    if let Some(child) = node.children.get(&m.wire) {
                        if let Some(v) = self.decode(&m.shape, child, &join(path, &m.wire))? {
                            out.insert(m.name.clone(), v);
                        }
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Shape::List {
                member,
                item,
                flattened,
            } => {
                // botocore sends an empty list as the bare name, `Name=`.
                if node.children.is_empty() && node.value.as_deref() == Some("") {
                    return Ok(Some(Value::Array(Vec::new())));
                }
                let (items, prefix) = if *flattened {
                    (node, path.to_string())
                } else {
                    let Some(items) = node.children.get(item) else {
                        return Err(QueryError(format!(
                            "{path} is a list; give its items as {path}.{item}.1, {path}.{item}.2, ..."
                        )));
                    };
                    if node.children.len() > 1 || node.value.is_some() {
                        return Err(QueryError(format!(
                            "{path} is a list; give its items as {path}.{item}.N only."
                        )));
                    }
                    (items, join(path, item))
                };
                let mut out = Vec::new();
                for (n, child) in indexed(items, &prefix)? {
                    if let Some(v) = self.decode(member, child, &format!("{prefix}.{n}"))? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Shape::Map {
                key,
                value,
                key_name,
                value_name,
                flattened,
            } => {
                if node.children.is_empty() && node.value.as_deref() == Some("") {
                    return Ok(Some(Value::Object(Map::new())));
                }
                let (entries, prefix) = if *flattened {
                    (node, path.to_string())
                } else {
                    let Some(entries) = node.children.get("entry") else {
                        return Err(QueryError(format!(
                            "{path} is a map; give its entries as {path}.entry.N.{key_name} and {path}.entry.N.{value_name}."
                        )));
                    };
                    (entries, join(path, "entry"))
                };
                let mut out = Map::new();
                for (n, entry) in indexed(entries, &prefix)? {
                    let at = format!("{prefix}.{n}");
                    let k = entry.children.get(key_name).ok_or_else(|| {
                        QueryError(format!("{at}.{key_name} is missing: each entry needs one."))
                    })?;
                    let k = match self.decode(key, k, &format!("{at}.{key_name}"))? {
                        Some(Value::String(k)) => k,
                        _ => return Err(QueryError(format!("{at}.{key_name} must be a string."))),
                    };
                    let v = match entry.children.get(value_name) {
                        Some(v) => self.decode(value, v, &format!("{at}.{value_name}"))?,
                        None => None,
                    };
                    out.insert(k, v.unwrap_or(Value::Null));
                }
                Ok(Some(Value::Object(out)))
            }
            scalar => {
                if !node.children.is_empty() {
                    let k = node.children.keys().next().map_or("", String::as_str);
                    return Err(QueryError(format!(
                        "{} is not a parameter: {path} is a single value.",
                        join(path, k)
                    )));
                }
                let Some(text) = node.value.as_deref() else {
                    return Ok(None);
                };
                scalar_value(scalar, text, path).map(Some)
            }
        }
    }

    /// The XML answer for `op`, from its output serialized as JSON by the
    /// generated type (`Value::Null` or `{}` when there is none).
    pub fn encode_output(
        &self,
        op: &str,
        output: &Value,
        request_id: &str,
    ) -> Result<String, QueryError> {
        let operation = self
            .operations
            .get(op)
            .ok_or_else(|| QueryError(format!("unknown operation {op}")))?;
        let mut x = String::with_capacity(256);
        let _ = write!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{}\">",
            escape(&self.namespace)
        );
        if let Some(shape) = &operation.output {
            let wrapper = operation
                .result_wrapper
                .clone()
                .unwrap_or_else(|| format!("{op}Result"));
            let _ = write!(x, "<{wrapper}>");
            self.encode_members(shape, output, &mut x)?;
            let _ = write!(x, "</{wrapper}>");
        }
        let _ = write!(
            x,
            "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
            escape(request_id)
        );
        Ok(x)
    }

    /// Present members only, in member-name order (serde_json reads the
    /// model sorted); XML readers do not depend on element order.
    fn encode_members(&self, shape: &str, v: &Value, x: &mut String) -> Result<(), QueryError> {
        let Shape::Structure(members) = self.shape(shape)? else {
            return Err(QueryError(format!("{shape} is not a structure")));
        };
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        for m in members {
            if let Some(val) = obj.get(&m.name) {
                self.encode(&m.shape, &m.wire, val, x)?;
            }
        }
        Ok(())
    }

    fn encode(&self, shape: &str, name: &str, v: &Value, x: &mut String) -> Result<(), QueryError> {
        if v.is_null() {
            return Ok(());
        }
        match self.shape(shape)? {
            Shape::Structure(_) => {
                let _ = write!(x, "<{name}>");
                self.encode_members(shape, v, x)?;
                let _ = write!(x, "</{name}>");
            }
            Shape::List {
                member,
                item,
                flattened,
            } => {
                let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
                if *flattened {
                    for i in items {
                        self.encode(member, name, i, x)?;
                    }
                } else {
                    let _ = write!(x, "<{name}>");
                    for i in items {
                        self.encode(member, item, i, x)?;
                    }
                    let _ = write!(x, "</{name}>");
                }
            }
            Shape::Map {
                key,
                value,
                key_name,
                value_name,
                flattened,
            } => {
                let empty = Map::new();
                let entries = v.as_object().unwrap_or(&empty);
                if !*flattened {
                    let _ = write!(x, "<{name}>");
                }
                for (k, val) in entries {
                    let entry = if *flattened { name } else { "entry" };
                    let _ = write!(x, "<{entry}>");
                    self.encode(key, key_name, &Value::String(k.clone()), x)?;
                    self.encode(value, value_name, val, x)?;
                    let _ = write!(x, "</{entry}>");
                }
                if !*flattened {
                    let _ = write!(x, "</{name}>");
                }
            }
            scalar => {
                let text = scalar_text(scalar, v)
                    .ok_or_else(|| QueryError(format!("{name}: {v} does not fit its shape")))?;
                let _ = write!(x, "<{name}>{}</{name}>", escape(&text));
            }
        }
        Ok(())
    }
}

/// The Query protocol's error document. `fault` is `Sender` for the
/// client's mistakes and `Receiver` for the server's.
pub fn error_document(
    namespace: &str,
    fault: &str,
    code: &str,
    message: &str,
    request_id: &str,
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(namespace),
        escape(fault),
        escape(code),
        escape(message),
        escape(request_id)
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The children of a list or map node, which must be numbered 1, 2, ...
/// (botocore numbers from 1; gaps are allowed, order is by number).
fn indexed<'n>(node: &'n Node, path: &str) -> Result<Vec<(u32, &'n Node)>, QueryError> {
    let mut out = Vec::with_capacity(node.children.len());
    for (k, child) in &node.children {
        let n: u32 = k
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| QueryError(format!("{path}.{k}: items are numbered from 1.")))?;
        out.push((n, child));
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

fn scalar_value(shape: &Shape, text: &str, path: &str) -> Result<Value, QueryError> {
    let bad = |what: &str| QueryError(format!("{path} must be {what} (got {text:?})."));
    Ok(match shape {
        Shape::String | Shape::Blob => Value::String(text.to_string()),
        Shape::Integer => Value::Number(text.parse::<i64>().map_err(|_| bad("an integer"))?.into()),
        Shape::Float => {
            let f: f64 = text.parse().map_err(|_| bad("a number"))?;
            Value::Number(Number::from_f64(f).ok_or_else(|| bad("a finite number"))?)
        }
        Shape::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Shape::Timestamp => {
            // ISO 8601 is what botocore sends for Query; epoch seconds
            // are accepted as well.
            let t = if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
                t
            } else if let Ok(secs) = text.parse::<f64>() {
                return Number::from_f64(secs)
                    .map(Value::Number)
                    .ok_or_else(|| bad("a timestamp"));
            } else {
                return Err(bad("an ISO 8601 timestamp such as 2026-01-31T12:00:00Z"));
            };
            let millis = t.unix_timestamp_nanos() / 1_000_000;
            let secs = millis as f64 / 1000.0;
            Value::Number(Number::from_f64(secs).ok_or_else(|| bad("a timestamp"))?)
        }
        Shape::Structure(_) | Shape::List { .. } | Shape::Map { .. } => {
            return Err(QueryError(format!("{path} is not a single value")))
        }
    })
}

fn scalar_text(shape: &Shape, v: &Value) -> Option<String> {
    match (shape, v) {
        (Shape::String | Shape::Blob, Value::String(s)) => Some(s.clone()),
        (Shape::Integer | Shape::Float, Value::Number(n)) => Some(n.to_string()),
        (Shape::Boolean, Value::Bool(b)) => Some(b.to_string()),
        (Shape::Timestamp, Value::Number(n)) => {
            let millis = (n.as_f64()? * 1000.0).round() as i128;
            let t = OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()?;
            Some(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ))
        }
        (_, Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The form parameters as a tree split at dots: `Tags.member.1.Key`
/// is `Tags` > `member` > `1` > `Key`.
#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, key: &str, value: &str) -> Result<(), QueryError> {
        let mut node = self;
        for part in key.split('.') {
            if part.is_empty() {
                return Err(QueryError(format!("{key:?} is not a parameter name.")));
            }
            node = node.children.entry(part.to_string()).or_default();
        }
        if node.value.is_some() {
            return Err(QueryError(format!("{key} is given twice.")));
        }
        node.value = Some(value.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> QueryModel {
        QueryModel::from_json(
            &json!({
                "metadata": {"apiVersion": "2015-12-01", "protocol": "query",
                             "xmlNamespace": "http://example.com/doc/2015-12-01/"},
                "operations": {
                    "Make": {"name": "Make", "input": {"shape": "MakeInput"},
                             "output": {"shape": "MakeOutput", "resultWrapper": "MakeResult"}},
                    "Ping": {"name": "Ping"}
                },
                "shapes": {
                    "MakeInput": {"type": "structure", "members": {
                        "Name": {"shape": "Str"},
                        "Port": {"shape": "Int"},
                        "Enabled": {"shape": "Bool"},
                        "Subnets": {"shape": "StrList"},
                        "Tags": {"shape": "TagList"},
                        "Attrs": {"shape": "AttrMap"},
                        "At": {"shape": "Time"},
                        "Renamed": {"shape": "Str", "locationName": "Other"}
                    }},
                    "MakeOutput": {"type": "structure", "members": {
                        "Things": {"shape": "TagList"},
                        "At": {"shape": "Time"},
                        "Count": {"shape": "Int"},
                        "Attrs": {"shape": "AttrMap"},
                        "Note": {"shape": "Str"}
                    }},
                    "Str": {"type": "string"},
                    "Int": {"type": "integer"},
                    "Bool": {"type": "boolean"},
                    "Time": {"type": "timestamp"},
                    "StrList": {"type": "list", "member": {"shape": "Str"}},
                    "TagList": {"type": "list", "member": {"shape": "Tag"}},
                    "Tag": {"type": "structure", "members": {
                        "Key": {"shape": "Str"}, "Value": {"shape": "Str"}}},
                    "AttrMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}}
                }
            })
            .to_string(),
        )
        .unwrap()
    }

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_members_lists_maps_and_scalars() {
        let m = model();
        let v = m
            .decode_input(
                "Make",
                &params(&[
                    ("Name", "web"),
                    ("Port", "80"),
                    ("Enabled", "true"),
                    ("Subnets.member.2", "b"),
                    ("Subnets.member.1", "a"),
                    ("Tags.member.1.Key", "k"),
                    ("Tags.member.1.Value", "v"),
                    ("Attrs.entry.1.key", "x"),
                    ("Attrs.entry.1.value", "1"),
                    ("At", "2026-12-05T18:00:00.250Z"),
                    ("Other", "r"),
                ]),
            )
            .unwrap();
        assert_eq!(
            v,
            json!({
                "Name": "web", "Port": 80, "Enabled": true,
                "Subnets": ["a", "b"],
                "Tags": [{"Key": "k", "Value": "v"}],
                "Attrs": {"x": "1"},
                "At": 1_796_493_600.25,
                "Renamed": "r"
            })
        );
    }

    #[test]
    fn empty_list_and_no_input() {
        let m = model();
        assert_eq!(
            m.decode_input("Make", &params(&[("Subnets", "")])).unwrap(),
            json!({"Subnets": []})
        );
        assert_eq!(m.decode_input("Ping", &[]).unwrap(), json!({}));
    }

    #[test]
    fn refuses_what_the_input_does_not_have() {
        let m = model();
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("Nmae", "x")], "Nmae is not a parameter of MakeInput."),
            (
                &[("Port", "eighty")],
                "Port must be an integer (got \"eighty\").",
            ),
            (
                &[("Enabled", "yes")],
                "Enabled must be true or false (got \"yes\").",
            ),
            (
                &[("Subnets.1", "a")],
                "Subnets is a list; give its items as Subnets.member.1, Subnets.member.2, ...",
            ),
            (
                &[("Subnets.member.0", "a")],
                "Subnets.member.0: items are numbered from 1.",
            ),
            (
                &[("Tags.member.1.Colour", "red")],
                "Tags.member.1.Colour is not a parameter of Tags.member.1.",
            ),
            (
                &[("Name.x", "a")],
                "Name.x is not a parameter: Name is a single value.",
            ),
            (&[("Ping", "1")], "Ping is not a parameter of MakeInput."),
        ];
        for (p, want) in cases {
            assert_eq!(
                m.decode_input("Make", &params(p)).unwrap_err().0,
                *want,
                "{p:?}"
            );
        }
        assert_eq!(
            m.decode_input("Ping", &params(&[("X", "1")]))
                .unwrap_err()
                .0,
            "X is not a parameter of Ping, which takes none."
        );
    }

    #[test]
    fn encodes_the_result_wrapper_lists_maps_and_timestamps() {
        let m = model();
        let xml = m
            .encode_output(
                "Make",
                &json!({
                    "Things": [{"Key": "a<b", "Value": "c"}],
                    "At": 1_796_493_600.25,
                    "Count": 3,
                    "Attrs": {"k": "v"},
                    "Note": null
                }),
                "req-1",
            )
            .unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MakeResponse xmlns=\"http://example.com/doc/2015-12-01/\"><MakeResult>\
             <At>2026-12-05T18:00:00.250Z</At>\
             <Attrs><entry><key>k</key><value>v</value></entry></Attrs><Count>3</Count>\
             <Things><member><Key>a&lt;b</Key><Value>c</Value></member></Things>\
             </MakeResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></MakeResponse>"
        );
        let ping = m.encode_output("Ping", &Value::Null, "r").unwrap();
        assert!(ping.ends_with("<PingResponse xmlns=\"http://example.com/doc/2015-12-01/\"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PingResponse>"));
    }

    #[test]
    fn error_document_is_escaped() {
        assert_eq!(
            error_document("ns", "Sender", "ValidationError", "a < b", "r"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"ns\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>a &lt; b</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        );
    }
}
