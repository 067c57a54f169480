//! The parts of a botocore service model (`service-2.json`) the generator
//! reads. Maps are `BTreeMap`s so iteration order is sorted and stable.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    #[serde(default)]
    pub operations: BTreeMap<String, OperationDef>,
    pub shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub protocol: String,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
    #[serde(default)]
    pub signing_name: Option<String>,
    pub endpoint_prefix: String,
    #[serde(default)]
    pub service_id: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    /// Present (as `{}`) on JSON models whose errors must also carry their
    /// Query error code (`x-amzn-query-error`).
    #[serde(default)]
    pub aws_query_compatible: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct OperationDef {
    pub name: String,
    #[serde(default)]
    pub input: Option<ShapeRef>,
    #[serde(default)]
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Deserialize)]
pub struct ShapeRef {
    pub shape: String,
}

#[derive(Debug, Deserialize)]
pub struct Shape {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    #[serde(default)]
    pub min: Option<serde_json::Number>,
    #[serde(default)]
    pub max: Option<serde_json::Number>,
    #[serde(default)]
    pub member: Option<ShapeRef>,
    #[serde(default)]
    pub key: Option<ShapeRef>,
    #[serde(default)]
    pub value: Option<ShapeRef>,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
    #[serde(default)]
    pub document: bool,
    #[serde(default)]
    pub union: bool,
    #[serde(default)]
    pub error: Option<ErrorTrait>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    #[serde(default)]
    pub http_status_code: Option<u16>,
}
