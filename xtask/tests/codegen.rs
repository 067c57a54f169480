//! The committed generated code and trimmed models are up to date, and the
//! generator copes with shapes the ECS model does not exercise.

use std::path::Path;

use serde_json::json;

#[test]
fn generated_code_is_fresh() {
    let root = xtask::workspace_root();
    let generated = xtask::generate_all(&root).expect("codegen");
    assert!(
        generated.iter().any(|g| g.module == "ecs"),
        "no ecs model found in crates/api/model"
    );
    for g in &generated {
        let committed = std::fs::read_to_string(&g.path).unwrap_or_default();
        assert!(
            committed == g.source,
            "{} is stale: run `cargo xtask codegen` and commit the result",
            g.path.display()
        );
    }
    // No generated module is left without its model.
    for entry in std::fs::read_dir(xtask::generated_dir(&root)).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            generated.iter().any(|g| g.module == module),
            "{} has no model in crates/api/model; delete it",
            path.display()
        );
    }
}

#[test]
fn committed_models_are_trimmed_and_canonical() {
    let dir = xtask::model_dir(&xtask::workspace_root());
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let again = xtask::trim::render(&xtask::trim::trim_model(&value));
        assert!(
            again == text,
            "{} is not a canonical trimmed model: re-run `cargo xtask trim`",
            path.display()
        );
        assert!(!text.contains("\"documentation\""));
    }
    assert!(seen >= 1);
}

#[test]
fn module_names_come_from_the_file_name() {
    assert_eq!(
        xtask::module_name(Path::new("model/ecs-2014-11-13.json")).unwrap(),
        "ecs"
    );
    assert_eq!(
        xtask::module_name(Path::new("logs-2014-03-28.json")).unwrap(),
        "logs"
    );
}

#[test]
fn trim_removes_docs_but_not_members_named_documentation() {
    let model = json!({
        "documentation": "<p>service</p>",
        "metadata": {"apiVersion": "1"},
        "operations": {"Op": {
            "name": "Op",
            "documentation": "x",
            "documentationUrl": "https://example.invalid",
            "input": {"shape": "In", "documentation": "y"},
            "errors": [{"shape": "Err", "documentation": "z"}]
        }},
        "shapes": {
            "In": {
                "type": "structure",
                "documentation": "x",
                "members": {
                    "documentation": {"shape": "S", "documentation": "the member"},
                    "old": {"shape": "S", "deprecated": true, "deprecatedMessage": "m", "deprecatedSince": "d"}
                }
            },
            "L": {"type": "list", "member": {"shape": "S", "documentation": "d"}}
        }
    });
    let trimmed = xtask::trim::trim_model(&model);
    assert_eq!(
        trimmed,
        json!({
            "metadata": {"apiVersion": "1"},
            "operations": {"Op": {
                "name": "Op",
                "input": {"shape": "In"},
                "errors": [{"shape": "Err"}]
            }},
            "shapes": {
                "In": {
                    "type": "structure",
                    "members": {
                        "documentation": {"shape": "S"},
                        "old": {"shape": "S", "deprecated": true}
                    }
                },
                "L": {"type": "list", "member": {"shape": "S"}}
            }
        })
    );
    let text = xtask::trim::render(&trimmed);
    assert!(
        text.starts_with("{\n  \"metadata\": {\n    \"apiVersion\": \"1\"\n  },\n  \"operations\"")
    );
    assert!(text.ends_with("}\n"));
}

/// A model with the awkward cases: cycles, keywords, collisions, blob /
/// float / document / timestamp shapes, unions, faults.
fn awkward_model() -> xtask::model::Model {
    serde_json::from_value(json!({
        "metadata": {
            "apiVersion": "2020-01-01",
            "endpointPrefix": "awk",
            "jsonVersion": "1.1",
            "protocol": "json",
            "targetPrefix": "Awkward_20200101"
        },
        "operations": {
            "DoThing": {
                "name": "DoThing",
                "input": {"shape": "Node"},
                "output": {"shape": "Option"},
                "errors": [{"shape": "Boom"}, {"shape": "BadInput"}, {"shape": "Boom"}]
            }
        },
        "shapes": {
            "Node": {"type": "structure", "required": ["type"], "members": {
                "type": {"shape": "Kind"},
                "self": {"shape": "Str"},
                "next": {"shape": "Node"},
                "children": {"shape": "NodeList"},
                "other": {"shape": "Other"},
                "payload": {"shape": "Payload"},
                "ratio": {"shape": "Ratio"},
                "doc": {"shape": "Doc"},
                "at": {"shape": "When"},
                "byKind": {"shape": "KindMap"},
                "FooBar": {"shape": "Str"},
                "fooBar": {"shape": "Str"},
                "count": {"shape": "Count"}
            }},
            "Other": {"type": "structure", "members": {"back": {"shape": "Node"}}},
            "NodeList": {"type": "list", "member": {"shape": "Node"}, "max": 3},
            "Kind": {"type": "string", "enum": ["UNKNOWN", "a-b", "A_B", "self", "9lives"]},
            "KindMap": {"type": "map", "key": {"shape": "Kind"}, "value": {"shape": "Str"}},
            "Str": {"type": "string", "min": 1},
            "Payload": {"type": "blob"},
            "Ratio": {"type": "float", "min": 0, "max": 1.5},
            "Count": {"type": "long", "min": 1},
            "Doc": {"type": "structure", "members": {}, "document": true},
            "When": {"type": "timestamp"},
            "Option": {"type": "structure", "members": {"choice": {"shape": "Choice"}}},
            "Choice": {"type": "structure", "union": true, "members": {
                "left": {"shape": "Str"}, "right": {"shape": "Str"}
            }},
            "snake_shape": {"type": "structure", "members": {}},
            "SnakeShape": {"type": "structure", "members": {}},
            "Boom": {"type": "structure", "members": {}, "exception": true, "fault": true},
            "BadInput": {"type": "structure", "members": {}, "exception": true,
                         "error": {"httpStatusCode": 422}}
        }
    }))
    .unwrap()
}

#[test]
fn generator_handles_awkward_shapes() {
    let raw = xtask::codegen::generate(&awkward_model(), "awk", "awk-2020-01-01.json").unwrap();
    let src = xtask::rustfmt(&raw, Path::new(".")).unwrap();
    let has = |s: &str| assert!(src.contains(s), "missing {s:?} in:\n{src}");

    // Cycles through direct members are boxed (Node.next, Node.other <->
    // Other.back); through a list they are not.
    has("pub next: Option<Box<Node>>,");
    has("pub other: Option<Box<Other>>,");
    has("pub back: Option<Box<Node>>,");
    has("pub children: Option<Vec<Node>>,");
    // Keywords and colliding member names.
    has("pub r#type: Option<Kind>,");
    has("pub self_: Option<String>,");
    has("#[serde(rename = \"FooBar\", default, skip_serializing_if = \"Option::is_none\")]\n    pub foo_bar: Option<String>,");
    has("#[serde(rename = \"fooBar\", default, skip_serializing_if = \"Option::is_none\")]\n    pub foo_bar_2: Option<String>,");
    // Primitive mappings.
    has("pub payload: Option<crate::Blob>,");
    has("pub ratio: Option<f64>,");
    has("pub doc: Option<serde_json::Value>,");
    has("pub at: Option<crate::Timestamp>,");
    has("pub by_kind: Option<std::collections::BTreeMap<Kind, String>>,");
    has("pub count: Option<i64>,");
    // Type name collisions: a prelude name and a sanitised name.
    has("pub struct OptionShape {");
    has("pub struct SnakeShape {");
    has("pub struct SnakeShapeShape {");
    // Enum variants: UNKNOWN vs the catch-all, colliding values, keywords,
    // leading digits.
    has("    UnknownValue,\n");
    has("    AB,\n");
    has("    ABValue,\n");
    has("    SelfValue,\n");
    has("    V9lives,\n");
    has("    Unknown(String),\n");
    has("&[\"UNKNOWN\", \"a-b\", \"A_B\", \"self\", \"9lives\"]");
    // Validation: union, float and long ranges, list bound, map keys.
    has("rt::union_count(path, &[\"left\", \"right\"], set)");
    has("rt::check_f64(*x0, Some(0.0), Some(1.5), || rt::join(path, \"ratio\"))?;");
    has("rt::check_int(*x0, Some(1), None, || rt::join(path, \"count\"))?;");
    has("rt::check_len(x0.len(), None, Some(3), \"items\", || {\n                rt::join(path, \"children\")");
    has("for (k1, x1) in x0 {");
    // Metadata: signing name falls back to the endpoint prefix; errors are
    // sorted and deduplicated; status codes from fault / error traits.
    has("pub const SIGNING_NAME: &str = \"awk\";");
    has("pub const TARGET_PREFIX: &str = \"Awkward_20200101\";");
    has("Operation::DoThing => &[\"BadInput\", \"Boom\"],");
    has("ErrorCode::BadInput => 422,");
    has("ErrorCode::Boom => 500,");
    assert!(!src.contains("_ => 4"), "http_status lists every code");

    // Deterministic.
    let again = xtask::codegen::generate(&awkward_model(), "awk", "awk-2020-01-01.json").unwrap();
    assert_eq!(raw, again);
}

#[test]
fn generator_rejects_dangling_references() {
    let model: xtask::model::Model = serde_json::from_value(json!({
        "metadata": {"apiVersion": "1", "endpointPrefix": "x", "protocol": "json"},
        "shapes": {"A": {"type": "structure", "members": {"b": {"shape": "Missing"}}}}
    }))
    .unwrap();
    let err = xtask::codegen::generate(&model, "x", "x-1.json").unwrap_err();
    assert_eq!(err.to_string(), "shape A refers to unknown shape Missing");
}
