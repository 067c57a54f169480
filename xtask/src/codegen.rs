//! `cargo xtask codegen`: Rust wire types from a trimmed botocore model.
//!
//! Output is one module per model: a struct per structure shape, an enum per
//! string-enum shape, a `Validate` impl per struct, and operation / error-code
//! metadata. Everything is emitted in sorted order so the output only changes
//! when the model does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};

use crate::model::{Model, Shape};
use crate::naming;

/// Generate the (unformatted) source of module `module` from `model`;
/// `source` names the model file in the module header.
pub fn generate(model: &Model, module: &str, source: &str) -> Result<String> {
    let gen = Generator::new(model)?;
    gen.render(module, source)
}

struct Generator<'a> {
    model: &'a Model,
    /// Shape name -> Rust type name, for shapes that become types
    /// (structures that are not documents, strings with an enum).
    type_names: BTreeMap<&'a str, String>,
    /// (structure, member) pairs whose field is boxed to break a cycle.
    boxed: BTreeSet<(&'a str, &'a str)>,
    /// Shapes whose values have something to validate.
    needs_check: BTreeSet<&'a str>,
}

fn is_struct(s: &Shape) -> bool {
    s.ty == "structure" && !s.document
}

fn is_enum(s: &Shape) -> bool {
    s.ty == "string" && s.enum_values.is_some()
}

impl<'a> Generator<'a> {
    fn new(model: &'a Model) -> Result<Self> {
        let shapes = &model.shapes;
        for (name, s) in shapes {
            let refs = s
                .members
                .values()
                .chain(s.member.iter())
                .chain(s.key.iter())
                .chain(s.value.iter());
            for r in refs {
                if !shapes.contains_key(&r.shape) {
                    bail!("shape {name} refers to unknown shape {}", r.shape);
                }
            }
        }

        // Type names: plain UpperCamel shape names are claimed first so a
        // sanitised name can never steal one.
        let typed: Vec<&str> = shapes
            .iter()
            .filter(|(_, s)| is_struct(s) || is_enum(s))
            .map(|(n, _)| n.as_str())
            .collect();
        let plain = |n: &str| {
            n.starts_with(|c: char| c.is_ascii_uppercase())
                && n.chars().all(|c| c.is_ascii_alphanumeric())
        };
        let mut taken = BTreeSet::new();
        let mut type_names = BTreeMap::new();
        for pass_plain in [true, false] {
            for &n in typed.iter().filter(|n| plain(n) == pass_plain) {
                let ident = naming::type_ident(n, &taken);
                taken.insert(ident.clone());
                type_names.insert(n, ident);
            }
        }

        let mut gen = Generator {
            model,
            type_names,
            boxed: BTreeSet::new(),
            needs_check: BTreeSet::new(),
        };
        gen.find_boxed();
        gen.find_needs_check();
        Ok(gen)
    }

    fn shape(&self, name: &str) -> &'a Shape {
        &self.model.shapes[name]
    }

    /// Tarjan's SCC over "structure has a (non-container) member of
    /// structure type" edges; such a member inside a cycle is boxed.
    fn find_boxed(&mut self) {
        let shapes = &self.model.shapes;
        let nodes: Vec<&'a str> = shapes
            .iter()
            .filter(|(_, s)| is_struct(s))
            .map(|(n, _)| n.as_str())
            .collect();
        let edges = |n: &str| -> Vec<&'a str> {
            shapes[n]
                .members
                .values()
                .map(|r| r.shape.as_str())
                .filter(|t| is_struct(&shapes[*t]))
                .collect()
        };

        struct State<'s> {
            index: BTreeMap<&'s str, usize>,
            low: BTreeMap<&'s str, usize>,
            stack: Vec<&'s str>,
            on_stack: BTreeSet<&'s str>,
            comp: BTreeMap<&'s str, usize>,
            next: usize,
            ncomp: usize,
        }
        fn visit<'s>(v: &'s str, st: &mut State<'s>, edges: &dyn Fn(&str) -> Vec<&'s str>) {
            st.index.insert(v, st.next);
            st.low.insert(v, st.next);
            st.next += 1;
            st.stack.push(v);
            st.on_stack.insert(v);
            for w in edges(v) {
                if !st.index.contains_key(w) {
                    visit(w, st, edges);
                    let lw = st.low[w];
                    let lv = st.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if st.on_stack.contains(w) {
                    let iw = st.index[w];
                    let lv = st.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if st.low[v] == st.index[v] {
                loop {
                    let w = st.stack.pop().expect("non-empty stack");
                    st.on_stack.remove(w);
                    st.comp.insert(w, st.ncomp);
                    if w == v {
                        break;
                    }
                }
                st.ncomp += 1;
            }
        }
        let mut st = State {
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            comp: BTreeMap::new(),
            next: 0,
            ncomp: 0,
        };
        for &n in &nodes {
            if !st.index.contains_key(n) {
                visit(n, &mut st, &edges);
            }
        }
        for &n in &nodes {
            for (m, r) in &shapes[n].members {
                let t = r.shape.as_str();
                if is_struct(&shapes[t]) && st.comp[n] == st.comp[t] {
                    self.boxed.insert((n, m.as_str()));
                }
            }
        }
    }

    /// Least fixpoint of "this shape's values can fail validation".
    fn find_needs_check(&mut self) {
        let shapes = &self.model.shapes;
        loop {
            let mut changed = false;
            for (name, s) in shapes {
                let name = name.as_str();
                if self.needs_check.contains(name) {
                    continue;
                }
                let nc = |r: &Option<crate::model::ShapeRef>| {
                    r.as_ref()
                        .is_some_and(|r| self.needs_check.contains(r.shape.as_str()))
                };
                let needs = match s.ty.as_str() {
                    "structure" if !s.document => {
                        !s.required.is_empty()
                            || s.union
                            || s.members
                                .values()
                                .any(|r| self.needs_check.contains(r.shape.as_str()))
                    }
                    "string" => s.enum_values.is_some() || length_bounds(s).is_some(),
                    "list" => length_bounds(s).is_some() || nc(&s.member),
                    "map" => length_bounds(s).is_some() || nc(&s.key) || nc(&s.value),
                    "integer" | "long" | "double" | "float" => s.min.is_some() || s.max.is_some(),
                    _ => false,
                };
                if needs {
                    self.needs_check.insert(name);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn rust_type(&self, name: &str) -> Result<String> {
        let s = self.shape(name);
        Ok(match s.ty.as_str() {
            "string" if s.enum_values.is_some() => self.type_names[name].clone(),
            "string" => "String".into(),
            "integer" => "i32".into(),
            "long" => "i64".into(),
            "boolean" => "bool".into(),
            "double" | "float" => "f64".into(),
            "blob" => "crate::Blob".into(),
            "timestamp" => "crate::Timestamp".into(),
            "structure" if s.document => "serde_json::Value".into(),
            "structure" => self.type_names[name].clone(),
            "list" => {
                let m = s
                    .member
                    .as_ref()
                    .ok_or_else(|| anyhow!("list {name} has no member"))?;
                format!("Vec<{}>", self.rust_type(&m.shape)?)
            }
            "map" => {
                let k = s
                    .key
                    .as_ref()
                    .ok_or_else(|| anyhow!("map {name} has no key"))?;
                let v = s
                    .value
                    .as_ref()
                    .ok_or_else(|| anyhow!("map {name} has no value"))?;
                if self.shape(&k.shape).ty != "string" {
                    bail!("map {name}: key shape {} is not a string", k.shape);
                }
                format!(
                    "std::collections::BTreeMap<{}, {}>",
                    self.rust_type(&k.shape)?,
                    self.rust_type(&v.shape)?
                )
            }
            other => bail!("shape {name}: unsupported type {other:?}"),
        })
    }

    fn render(&self, module: &str, source: &str) -> Result<String> {
        let md = &self.model.metadata;
        let mut out = String::new();
        let service = md.service_id.as_deref().unwrap_or(&md.endpoint_prefix);
        writeln!(
            out,
            "//! Wire types for the {service} API, version {}.",
            md.api_version
        )?;
        writeln!(out, "//!")?;
        writeln!(
            out,
            "//! Generated by `cargo xtask codegen` from `crates/api/model/{source}`; do not edit."
        )?;
        writeln!(out, "//! Module `{module}`.")?;
        writeln!(out)?;

        writeln!(out, "/// API version of the model.")?;
        writeln!(out, "pub const API_VERSION: &str = {:?};", md.api_version)?;
        if let Some(tp) = &md.target_prefix {
            writeln!(
                out,
                "/// Prefix of the `X-Amz-Target` header: `{tp}.<Operation>`."
            )?;
            writeln!(out, "pub const TARGET_PREFIX: &str = {tp:?};")?;
        }
        let signing = md.signing_name.as_deref().unwrap_or(&md.endpoint_prefix);
        writeln!(out, "/// SigV4 signing name (service) of the API.")?;
        writeln!(out, "pub const SIGNING_NAME: &str = {signing:?};")?;
        if let Some(jv) = &md.json_version {
            writeln!(
                out,
                "/// JSON protocol version: content type `application/x-amz-json-{jv}`."
            )?;
            writeln!(out, "pub const JSON_VERSION: &str = {jv:?};")?;
        }

        if md.aws_query_compatible.is_some() {
            writeln!(
                out,
                "/// The model is `awsQueryCompatible`: errors also carry `x-amzn-query-error`."
            )?;
            writeln!(out, "pub const AWS_QUERY_COMPATIBLE: bool = true;")?;
        }

        if md.protocol == "query" || md.aws_query_compatible.is_some() {
            writeln!(
                out,
                "/// The model as the Query codec reads it (awsQuery requests and XML answers)."
            )?;
            writeln!(
                out,
                "pub fn query_model() -> &'static crate::query::QueryModel {{"
            )?;
            writeln!(
                out,
                "    static MODEL: std::sync::OnceLock<crate::query::QueryModel> = std::sync::OnceLock::new();"
            )?;
            writeln!(
                out,
                "    MODEL.get_or_init(|| crate::query::QueryModel::from_json(include_str!(\"../../model/{source}\")).expect(\"the model in crates/api/model reads as a Query model (tested)\"))"
            )?;
            writeln!(out, "}}")?;
        }

        self.render_operations(&mut out)?;
        self.render_error_codes(&mut out)?;

        for (name, s) in &self.model.shapes {
            if is_struct(s) {
                self.render_struct(&mut out, name, s)?;
            } else if is_enum(s) {
                self.render_enum(&mut out, name, s)?;
            }
        }
        Ok(out)
    }

    fn render_operations(&self, out: &mut String) -> Result<()> {
        let mut taken = BTreeSet::new();
        let mut ops = Vec::new();
        for (key, op) in &self.model.operations {
            if *key != op.name {
                bail!("operation key {key} differs from its name {}", op.name);
            }
            let ident = naming::variant_ident(&op.name, &taken);
            let ident = if is_plain_ident(&op.name) && !taken.contains(&op.name) {
                op.name.clone()
            } else {
                ident
            };
            taken.insert(ident.clone());
            let errors: BTreeSet<&str> = op.errors.iter().map(|e| e.shape.as_str()).collect();
            for e in &errors {
                if !self.model.shapes.get(*e).is_some_and(|s| s.exception) {
                    bail!("operation {key}: error {e} is not an exception shape");
                }
            }
            for r in op.input.iter().chain(op.output.iter()) {
                if !self.model.shapes.contains_key(&r.shape) {
                    bail!("operation {key}: unknown shape {}", r.shape);
                }
            }
            ops.push((op, ident, errors));
        }

        writeln!(out)?;
        writeln!(out, "/// The operations of the API.")?;
        writeln!(
            out,
            "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]"
        )?;
        writeln!(out, "pub enum Operation {{")?;
        for (op, ident, _) in &ops {
            let input = op.input.as_ref().map(|r| self.type_doc(&r.shape));
            let output = op.output.as_ref().map(|r| self.type_doc(&r.shape));
            writeln!(
                out,
                "/// `{}`: input {}, output {}.",
                op.name,
                input.as_deref().unwrap_or("none"),
                output.as_deref().unwrap_or("none")
            )?;
            writeln!(out, "{ident},")?;
        }
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "impl Operation {{")?;
        writeln!(out, "/// Every operation, in name order.")?;
        writeln!(out, "pub const ALL: &'static [Operation] = &[")?;
        for (_, ident, _) in &ops {
            writeln!(out, "Operation::{ident},")?;
        }
        writeln!(out, "];")?;
        writeln!(out)?;
        writeln!(
            out,
            "/// The operation for a wire name (the part of `X-Amz-Target` after the dot)."
        )?;
        writeln!(out, "pub fn from_name(name: &str) -> Option<Operation> {{")?;
        writeln!(out, "match name {{")?;
        for (op, ident, _) in &ops {
            writeln!(out, "{:?} => Some(Operation::{ident}),", op.name)?;
        }
        writeln!(out, "_ => None,")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "/// The wire name of the operation.")?;
        writeln!(out, "pub fn name(&self) -> &'static str {{")?;
        writeln!(out, "match self {{")?;
        for (op, ident, _) in &ops {
            writeln!(out, "Operation::{ident} => {:?},", op.name)?;
        }
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(
            out,
            "/// Error shape names the model lists for the operation, sorted."
        )?;
        writeln!(out, "pub fn errors(&self) -> &'static [&'static str] {{")?;
        writeln!(out, "match self {{")?;
        for (_, ident, errors) in &ops {
            let list: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
            writeln!(out, "Operation::{ident} => &[{}],", list.join(", "))?;
        }
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "impl std::fmt::Display for Operation {{")?;
        writeln!(
            out,
            "fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{"
        )?;
        writeln!(out, "f.write_str(self.name())")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        Ok(())
    }

    fn render_error_codes(&self, out: &mut String) -> Result<()> {
        let mut taken = BTreeSet::new();
        let mut codes = Vec::new();
        for (name, s) in self.model.shapes.iter().filter(|(_, s)| s.exception) {
            let ident = if is_plain_ident(name) && !taken.contains(name) {
                name.clone()
            } else {
                naming::variant_ident(name, &taken)
            };
            taken.insert(ident.clone());
            let status = match &s.error {
                Some(e) if e.http_status_code.is_some() => e.http_status_code.unwrap_or(400),
                _ if s.fault || name == "ServerException" => 500,
                _ => 400,
            };
            codes.push((name, ident, status));
        }
        if codes.is_empty() {
            return Ok(());
        }
        writeln!(out)?;
        writeln!(
            out,
            "/// Error codes: the exception shapes of the model. On the wire the code is"
        )?;
        writeln!(out, "/// the shape name (`__type`).")?;
        writeln!(
            out,
            "// Every variant ends in `Exception` because the shape names do."
        )?;
        writeln!(out, "#[allow(clippy::enum_variant_names)]")?;
        writeln!(
            out,
            "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]"
        )?;
        writeln!(out, "pub enum ErrorCode {{")?;
        for (name, ident, status) in &codes {
            writeln!(out, "/// `{name}` (HTTP {status}).")?;
            writeln!(out, "{ident},")?;
        }
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "impl ErrorCode {{")?;
        writeln!(out, "/// Every error code, in name order.")?;
        writeln!(out, "pub const ALL: &'static [ErrorCode] = &[")?;
        for (_, ident, _) in &codes {
            writeln!(out, "ErrorCode::{ident},")?;
        }
        writeln!(out, "];")?;
        writeln!(out)?;
        writeln!(out, "/// The error code for a shape name.")?;
        writeln!(out, "pub fn from_name(name: &str) -> Option<ErrorCode> {{")?;
        writeln!(out, "match name {{")?;
        for (name, ident, _) in &codes {
            writeln!(out, "{name:?} => Some(ErrorCode::{ident}),")?;
        }
        writeln!(out, "_ => None,")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "/// The wire code (the exception shape name).")?;
        writeln!(out, "pub fn as_str(&self) -> &'static str {{")?;
        writeln!(out, "match self {{")?;
        for (name, ident, _) in &codes {
            writeln!(out, "ErrorCode::{ident} => {name:?},")?;
        }
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(
            out,
            "/// HTTP status: the model's `error.httpStatusCode` if set, else 500 for"
        )?;
        writeln!(
            out,
            "/// server faults (`fault: true`, `ServerException`), else 400."
        )?;
        writeln!(out, "pub fn http_status(&self) -> u16 {{")?;
        let by_status: BTreeMap<u16, Vec<&String>> =
            codes
                .iter()
                .fold(BTreeMap::new(), |mut acc, (_, ident, st)| {
                    acc.entry(*st).or_insert_with(Vec::new).push(ident);
                    acc
                });
        writeln!(out, "match self {{")?;
        for (st, ids) in &by_status {
            let pats: Vec<String> = ids.iter().map(|i| format!("ErrorCode::{i}")).collect();
            writeln!(out, "{} => {st},", pats.join(" | "))?;
        }
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "impl std::fmt::Display for ErrorCode {{")?;
        writeln!(
            out,
            "fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{"
        )?;
        writeln!(out, "f.write_str(self.as_str())")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        Ok(())
    }

    /// How a shape reads in docs: its Rust type in backticks.
    fn type_doc(&self, shape: &str) -> String {
        match self.rust_type(shape) {
            Ok(t) => format!("[`{t}`]"),
            Err(_) => format!("`{shape}`"),
        }
    }

    fn render_struct(&self, out: &mut String, name: &'a str, s: &'a Shape) -> Result<()> {
        let ty = &self.type_names[name];
        writeln!(out)?;
        let kind = if s.exception {
            "Exception shape"
        } else if s.union {
            "Union shape (exactly one member set)"
        } else {
            "Structure"
        };
        writeln!(out, "/// {kind} `{name}`.")?;
        writeln!(
            out,
            "#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]"
        )?;
        writeln!(out, "pub struct {ty} {{")?;
        for r in &s.required {
            if !s.members.contains_key(r) {
                bail!("structure {name}: required member {r} does not exist");
            }
        }
        let mut fields = Vec::new();
        let mut taken = BTreeSet::new();
        for (m, r) in &s.members {
            let ident = naming::member_ident(m, &taken);
            taken.insert(ident.clone());
            let mut rt = self
                .rust_type(&r.shape)
                .with_context(|| format!("structure {name}, member {m}"))?;
            if self.boxed.contains(&(name, m.as_str())) {
                rt = format!("Box<{rt}>");
            }
            if s.required.contains(m) {
                writeln!(out, "/// Required.")?;
            }
            writeln!(
                out,
                "#[serde(rename = {m:?}, default, skip_serializing_if = \"Option::is_none\")]"
            )?;
            writeln!(out, "pub {ident}: Option<{rt}>,")?;
            fields.push((m.as_str(), ident, r.shape.as_str()));
        }
        writeln!(out, "}}")?;

        // Validation.
        writeln!(out)?;
        writeln!(out, "impl crate::Validate for {ty} {{")?;
        let active = self.needs_check.contains(name);
        let path = if active { "path" } else { "_path" };
        writeln!(
            out,
            "fn validate(&self, {path}: &str) -> Result<(), crate::ValidationError> {{"
        )?;
        if active {
            writeln!(out, "use crate::__private as rt;")?;
        }
        for (m, ident, _) in &fields {
            if s.required.iter().any(|r| r == m) {
                writeln!(out, "if self.{ident}.is_none() {{")?;
                writeln!(out, "return Err(rt::missing(rt::join(path, {m:?})));")?;
                writeln!(out, "}}")?;
            }
        }
        if s.union {
            let sets: Vec<String> = fields
                .iter()
                .map(|(_, ident, _)| format!("self.{ident}.is_some()"))
                .collect();
            let names: Vec<String> = fields.iter().map(|(m, _, _)| format!("{m:?}")).collect();
            writeln!(
                out,
                "let set = [{}].into_iter().filter(|set| *set).count();",
                sets.join(", ")
            )?;
            writeln!(out, "if set != 1 {{")?;
            writeln!(
                out,
                "return Err(rt::union_count(path, &[{}], set));",
                names.join(", ")
            )?;
            writeln!(out, "}}")?;
        }
        for (m, ident, target) in &fields {
            if !self.needs_check.contains(target) {
                continue;
            }
            let member_path = format!("rt::join(path, {m:?})");
            let t = self.shape(target);
            if is_enum(t) {
                // One pattern, not two nested `if let`s (clippy::collapsible_match).
                let ty = &self.type_names[*target];
                writeln!(out, "if let Some({ty}::Unknown(value)) = &self.{ident} {{")?;
                writeln!(
                    out,
                    "return Err(rt::bad_enum({member_path}, value, {ty}::VALUES));"
                )?;
                writeln!(out, "}}")?;
                continue;
            }
            writeln!(out, "if let Some(x0) = &self.{ident} {{")?;
            self.emit_check(out, target, "x0", &member_path, 1)?;
            writeln!(out, "}}")?;
        }
        writeln!(out, "Ok(())")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        Ok(())
    }

    /// Emit checks for `val` (an expression of type `&T` for shape `shape`);
    /// `path` is an expression producing the field path as a `String`.
    fn emit_check(
        &self,
        out: &mut String,
        shape: &str,
        val: &str,
        path: &str,
        depth: usize,
    ) -> Result<()> {
        let s = self.shape(shape);
        match s.ty.as_str() {
            "structure" => {
                writeln!(out, "crate::Validate::validate({val}, &{path})?;")?;
            }
            "string" if s.enum_values.is_some() => {
                let ty = &self.type_names[shape];
                writeln!(out, "if let {ty}::Unknown(value) = {val} {{")?;
                writeln!(
                    out,
                    "return Err(rt::bad_enum({path}, value, {ty}::VALUES));"
                )?;
                writeln!(out, "}}")?;
            }
            "string" => {
                let (min, max) = length_bounds(s).expect("checked string has bounds");
                writeln!(out, "rt::check_str_len({val}, {min}, {max}, || {path})?;")?;
            }
            "integer" | "long" => {
                let min = opt_lit(s.min.as_ref().map(int_lit).transpose()?);
                let max = opt_lit(s.max.as_ref().map(int_lit).transpose()?);
                let v = if s.ty == "long" {
                    format!("*{val}")
                } else {
                    format!("i64::from(*{val})")
                };
                writeln!(out, "rt::check_int({v}, {min}, {max}, || {path})?;")?;
            }
            "double" | "float" => {
                let min = opt_lit(s.min.as_ref().map(float_lit));
                let max = opt_lit(s.max.as_ref().map(float_lit));
                writeln!(out, "rt::check_f64(*{val}, {min}, {max}, || {path})?;")?;
            }
            "list" | "map" => {
                let is_list = s.ty == "list";
                if let Some((min, max)) = length_bounds(s) {
                    let unit = if is_list { "items" } else { "entries" };
                    writeln!(
                        out,
                        "rt::check_len({val}.len(), {min}, {max}, {unit:?}, || {path})?;"
                    )?;
                }
                let p = format!("p{depth}");
                let x = format!("x{depth}");
                if is_list {
                    if let Some(member) = self.checked_target(&s.member) {
                        writeln!(out, "let {p} = {path};")?;
                        writeln!(out, "for (i{depth}, {x}) in {val}.iter().enumerate() {{")?;
                        let item_path = format!("rt::index(&{p}, i{depth})");
                        self.emit_check(out, member, &x, &item_path, depth + 1)?;
                        writeln!(out, "}}")?;
                    }
                } else {
                    let key = self.checked_target(&s.key);
                    let value = self.checked_target(&s.value);
                    if key.is_some() || value.is_some() {
                        let k = format!("k{depth}");
                        writeln!(out, "let {p} = {path};")?;
                        if value.is_some() {
                            writeln!(out, "for ({k}, {x}) in {val} {{")?;
                        } else {
                            writeln!(out, "for {k} in {val}.keys() {{")?;
                        }
                        let item_path = format!("rt::key(&{p}, {k})");
                        if let Some(key) = key {
                            self.emit_check(out, key, &k, &item_path, depth + 1)?;
                        }
                        if let Some(value) = value {
                            self.emit_check(out, value, &x, &item_path, depth + 1)?;
                        }
                        writeln!(out, "}}")?;
                    }
                }
            }
            other => bail!("no checks for shape {shape} of type {other}"),
        }
        Ok(())
    }

    /// The target of a reference, when its values need checking.
    fn checked_target<'r>(&self, r: &'r Option<crate::model::ShapeRef>) -> Option<&'r str> {
        r.as_ref()
            .map(|r| r.shape.as_str())
            .filter(|t| self.needs_check.contains(t))
    }

    fn render_enum(&self, out: &mut String, name: &str, s: &Shape) -> Result<()> {
        let ty = &self.type_names[name];
        let values = s.enum_values.as_ref().expect("enum shape");
        let mut seen = BTreeSet::new();
        let mut taken = BTreeSet::new();
        let mut variants = Vec::new();
        for v in values {
            if !seen.insert(v.as_str()) {
                continue; // duplicate value in the model
            }
            let ident = naming::variant_ident(v, &taken);
            taken.insert(ident.clone());
            variants.push((v.as_str(), ident));
        }
        writeln!(out)?;
        writeln!(out, "/// String enum `{name}`.")?;
        writeln!(out, "///")?;
        writeln!(
            out,
            "/// Values outside the model parse as `Unknown` (and fail validation)."
        )?;
        writeln!(
            out,
            "#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]"
        )?;
        writeln!(out, "pub enum {ty} {{")?;
        for (v, ident) in &variants {
            writeln!(out, "/// `{v}`")?;
            writeln!(out, "{ident},")?;
        }
        writeln!(out, "/// A value this version of the model does not list.")?;
        writeln!(out, "Unknown(String),")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "impl {ty} {{")?;
        writeln!(out, "/// The values the model lists, in model order.")?;
        let lits: Vec<String> = variants.iter().map(|(v, _)| format!("{v:?}")).collect();
        writeln!(
            out,
            "pub const VALUES: &'static [&'static str] = &[{}];",
            lits.join(", ")
        )?;
        writeln!(out)?;
        writeln!(out, "/// The wire value.")?;
        writeln!(out, "pub fn as_str(&self) -> &str {{")?;
        writeln!(out, "match self {{")?;
        for (v, ident) in &variants {
            writeln!(out, "{ty}::{ident} => {v:?},")?;
        }
        writeln!(out, "{ty}::Unknown(value) => value,")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(out, "fn known(value: &str) -> Option<Self> {{")?;
        writeln!(out, "match value {{")?;
        for (v, ident) in &variants {
            writeln!(out, "{v:?} => Some({ty}::{ident}),")?;
        }
        writeln!(out, "_ => None,")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        writeln!(
            out,
            "impl From<&str> for {ty} {{\n\
             fn from(value: &str) -> Self {{\n\
             Self::known(value).unwrap_or_else(|| {ty}::Unknown(value.to_owned()))\n\
             }}\n\
             }}\n\
             \n\
             impl From<String> for {ty} {{\n\
             fn from(value: String) -> Self {{\n\
             Self::known(&value).unwrap_or({ty}::Unknown(value))\n\
             }}\n\
             }}\n\
             \n\
             impl std::str::FromStr for {ty} {{\n\
             type Err = std::convert::Infallible;\n\
             fn from_str(value: &str) -> Result<Self, Self::Err> {{\n\
             Ok(Self::from(value))\n\
             }}\n\
             }}\n\
             \n\
             impl std::fmt::Display for {ty} {{\n\
             fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n\
             f.write_str(self.as_str())\n\
             }}\n\
             }}\n\
             \n\
             impl serde::Serialize for {ty} {{\n\
             fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{\n\
             serializer.serialize_str(self.as_str())\n\
             }}\n\
             }}\n\
             \n\
             impl<'de> serde::Deserialize<'de> for {ty} {{\n\
             fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n\
             <String as serde::Deserialize>::deserialize(deserializer).map(Self::from)\n\
             }}\n\
             }}"
        )?;
        Ok(())
    }
}

fn is_plain_ident(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_uppercase())
        && n.chars().all(|c| c.is_ascii_alphanumeric())
        && !naming::RESERVED_TYPE_NAMES.contains(&n)
}

/// Length bounds worth checking, as `Option<usize>` literals; `None` when
/// there are none (a minimum of 0 is no bound).
fn length_bounds(s: &Shape) -> Option<(String, String)> {
    let lit = |n: &Option<serde_json::Number>, skip_zero: bool| {
        n.as_ref()
            .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)))
            .filter(|v| !(skip_zero && *v == 0))
    };
    let min = lit(&s.min, true);
    let max = lit(&s.max, false);
    if min.is_none() && max.is_none() {
        return None;
    }
    Some((
        opt_lit(min.map(|v| v.to_string())),
        opt_lit(max.map(|v| v.to_string())),
    ))
}

fn opt_lit(v: Option<String>) -> String {
    match v {
        Some(v) => format!("Some({v})"),
        None => "None".into(),
    }
}

fn int_lit(n: &serde_json::Number) -> Result<String> {
    if let Some(i) = n.as_i64() {
        return Ok(i.to_string());
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok((f as i64).to_string()),
        _ => bail!("integer bound {n} is not an integer"),
    }
}

fn float_lit(n: &serde_json::Number) -> String {
    let f = n.as_f64().unwrap_or(0.0);
    let s = format!("{f:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}
