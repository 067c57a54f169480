//! Architecture invariants as a test: the dependency rules ARCHITECTURE.md
//! states, checked against `cargo metadata`. The rules live in [`RULES`]
//! only; ARCHITECTURE.md must carry each rule's text on an
//! `Architecture invariant:` line, and this test fails if the two drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// IO runtimes and backends a pure crate must not reach, even transitively.
const IO: &[&str] = &[
    "stevedore-store",
    "stevedore-store-sqlite",
    "stevedore-logstore-sqlite",
    "stevedore-server",
    "stevedore-runtime",
    "stevedore-agent",
    "tokio",
    "bollard",
    "axum",
    "hyper",
    "rusqlite",
    "reqwest",
];

enum Rule {
    /// `crates` never depend on any of `forbidden`, directly or
    /// transitively (normal and build dependencies; tests may use more).
    Pure {
        crates: &'static [&'static str],
        forbidden: &'static [&'static str],
    },
    /// Only `allowed` workspace crates depend directly on `dep` (any kind).
    OnlyDirect {
        dep: &'static str,
        allowed: &'static [&'static str],
    },
}

const RULES: &[(Rule, &str)] = &[
    (
        Rule::Pure {
            crates: &["stevedore-model", "stevedore-scheduler", "stevedore-controllers"],
            forbidden: IO,
        },
        "model, scheduler and controllers never depend, even transitively, on store, store-sqlite, logstore-sqlite, server, runtime, agent, tokio, bollard, axum, hyper, rusqlite or reqwest.",
    ),
    (
        Rule::OnlyDirect {
            dep: "bollard",
            allowed: &["stevedore-runtime"],
        },
        "only runtime depends on bollard.",
    ),
    (
        Rule::OnlyDirect {
            dep: "rusqlite",
            allowed: &["stevedore-store-sqlite", "stevedore-logstore-sqlite"],
        },
        "only store-sqlite and logstore-sqlite depend on rusqlite.",
    ),
    (
        Rule::OnlyDirect {
            dep: "axum",
            allowed: &["stevedore-server"],
        },
        "only server depends on axum.",
    ),
    (
        Rule::OnlyDirect {
            dep: "hyper",
            allowed: &["stevedore-server"],
        },
        "only server depends on hyper.",
    ),
    (
        Rule::OnlyDirect {
            dep: "reqwest",
            allowed: &["stevedore-agent", "stevedore"],
        },
        "only agent (its control-plane client) and cli (the `stevedore` package) depend on reqwest.",
    ),
];

/// Source rules, checked by reading the files: no `.rs` file at `path`
/// (a file, or a directory read recursively; relative to the workspace)
/// contains any of the `forbidden` strings. A string that starts and ends
/// with an identifier character matches only as a whole word, so `Cx`
/// does not match `Cxs` and `Caller` does not match `Callers`.
const SOURCE_RULES: &[(&str, &[&str], &str)] = &[
    (
        "crates/server/src/ecs",
        &[
            "super::tasks::",
            "super::placement",
            "ecs::tasks::",
            "ecs::placement",
            "super::super::tasks",
        ],
        "handler modules in server/src/ecs do not import each other's launch or placement code; they call server/src/domain.",
    ),
    (
        "crates/server/src/domain",
        &["crate::ecs", "crate::state", "Cx", "Caller"],
        "the domain layer (server/src/domain) imports no handler module and knows no request context or caller.",
    ),
    (
        "crates/server/src/controller.rs",
        &[
            "crate::ecs::tasks",
            "crate::ecs::instances",
            "crate::ecs::placement",
            "crate::ecs::internal",
            "Cx",
            "Caller",
        ],
        "the service controller launches and stops tasks through server/src/domain, never a handler module, and builds no caller.",
    ),
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read dir") {
            rust_files(&e.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

fn contains_word(src: &str, needle: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let word_start = needle.starts_with(ident);
    let word_end = needle.ends_with(ident);
    src.match_indices(needle).any(|(i, _)| {
        let before = src[..i].chars().next_back();
        let after = src[i + needle.len()..].chars().next();
        let glued_before = word_start && before.is_some_and(ident);
        let glued_after = word_end && after.is_some_and(ident);
        !glued_before && !glued_after
    })
}

#[test]
fn source_rules_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut broken = Vec::new();
    for (path, forbidden, text) in SOURCE_RULES {
        let mut files = Vec::new();
        rust_files(&root.join(path), &mut files);
        assert!(
            !files.is_empty(),
            "{path} has no .rs files; fix SOURCE_RULES"
        );
        for f in files {
            let src = std::fs::read_to_string(&f).expect("read source");
            for bad in *forbidden {
                if contains_word(&src, bad) {
                    broken.push(format!("{} mentions `{bad}`; breaks: {text}", f.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "architecture invariants broken:\n  {}",
        broken.join("\n  ")
    );
}

struct Graph {
    names: BTreeMap<String, String>,
    workspace: BTreeSet<String>,
    /// package id -> (dependency package id, is a normal or build dependency)
    deps: BTreeMap<String, Vec<(String, bool)>>,
}

fn metadata() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let workspace = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let deps = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let not_dev = d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].as_str() != Some("dev"));
                    (d["pkg"].as_str().unwrap().to_owned(), not_dev)
                })
                .collect();
            (n["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph {
        names,
        workspace,
        deps,
    }
}

impl Graph {
    fn id(&self, name: &str) -> &str {
        self.workspace
            .iter()
            .find(|id| self.names[*id] == name)
            .unwrap_or_else(|| panic!("rule names crate {name}, which is not in the workspace"))
    }

    /// One path from `from` to every crate it reaches through normal/build
    /// dependencies, so a violation can be explained.
    fn reachable(&self, from: &str) -> BTreeMap<String, Vec<String>> {
        let mut paths = BTreeMap::new();
        let mut stack = vec![(from.to_owned(), vec![self.names[from].clone()])];
        while let Some((id, path)) = stack.pop() {
            for (dep, not_dev) in &self.deps[&id] {
                let name = &self.names[dep];
                if *not_dev && !paths.contains_key(name) {
                    let mut p = path.clone();
                    p.push(name.clone());
                    paths.insert(name.clone(), p.clone());
                    stack.push((dep.clone(), p));
                }
            }
        }
        paths
    }
}

fn violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (rule, text) in RULES {
        match rule {
            Rule::Pure { crates, forbidden } => {
                for krate in *crates {
                    let reach = graph.reachable(graph.id(krate));
                    for bad in *forbidden {
                        if let Some(path) = reach.get(*bad) {
                            out.push(format!(
                                "{krate} reaches {bad} via {}; breaks: {text}",
                                path.join(" -> ")
                            ));
                        }
                    }
                }
            }
            Rule::OnlyDirect { dep, allowed } => {
                for id in &graph.workspace {
                    let name = &graph.names[id];
                    let direct = graph.deps[id].iter().any(|(d, _)| graph.names[d] == *dep);
                    if direct && !allowed.contains(&name.as_str()) {
                        out.push(format!("{name} depends on {dep}; breaks: {text}"));
                    }
                }
                for a in *allowed {
                    graph.id(a);
                }
            }
        }
    }
    out
}

#[test]
fn dependency_rules_hold() {
    let broken = violations(&metadata());
    assert!(
        broken.is_empty(),
        "architecture invariants broken:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn architecture_md_states_every_rule() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&path).expect("read ARCHITECTURE.md");
    let stated: BTreeSet<&str> = doc
        .lines()
        .filter_map(|l| {
            l.split_once("Architecture invariant: ")
                .map(|(_, r)| r.trim())
        })
        .collect();
    let expected: BTreeSet<&str> = RULES
        .iter()
        .map(|(_, text)| *text)
        .chain(SOURCE_RULES.iter().map(|(_, _, text)| *text))
        .collect();
    assert_eq!(
        stated, expected,
        "ARCHITECTURE.md's `Architecture invariant:` lines must match xtask/tests/tidy.rs RULES and SOURCE_RULES"
    );
}
