//! Build tooling for the workspace: `cargo xtask trim` and
//! `cargo xtask codegen` (see `main.rs`).

pub mod codegen;
pub mod model;
pub mod naming;
pub mod trim;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Root of the workspace (parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Directory holding the trimmed models.
pub fn model_dir(root: &Path) -> PathBuf {
    root.join("crates/api/model")
}

/// Directory the generated modules go to.
pub fn generated_dir(root: &Path) -> PathBuf {
    root.join("crates/api/src/generated")
}

/// Module name for a model file: the file name's first dash-separated part
/// (`ecs-2014-11-13.json` -> `ecs`), snake-cased.
pub fn module_name(model_file: &Path) -> Result<String> {
    let stem = model_file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("bad model file name {}", model_file.display()))?;
    let first = stem.split(['-', '.']).next().unwrap_or_default();
    let module = naming::field_ident(&naming::snake_case(first));
    if module.starts_with("r#") || module.ends_with('_') || first.is_empty() {
        bail!("model file {stem} does not start with a usable module name");
    }
    Ok(module)
}

/// One generated module: where it goes and its (formatted) source.
pub struct Generated {
    pub module: String,
    pub path: PathBuf,
    pub source: String,
}

/// Generate every module from `crates/api/model/*.json`, formatted, in file
/// name order. Nothing is written.
pub fn generate_all(root: &Path) -> Result<Vec<Generated>> {
    let dir = model_dir(root);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let out_dir = generated_dir(root);
    let mut out: Vec<Generated> = Vec::new();
    for file in files {
        let module = module_name(&file)?;
        if out.iter().any(|g| g.module == module) {
            bail!("two models map to module {module}");
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let model: model::Model =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let raw = codegen::generate(&model, &module, file_name)
            .with_context(|| format!("generating from {}", file.display()))?;
        let source = rustfmt(&raw, &out_dir)?;
        out.push(Generated {
            path: out_dir.join(format!("{module}.rs")),
            module,
            source,
        });
    }
    Ok(out)
}

/// Format Rust source with `rustfmt --edition 2021`, fed on stdin and run in
/// `dir` (where the file lives, so config lookup matches `cargo fmt`).
pub fn rustfmt(src: &str, dir: &Path) -> Result<String> {
    let cwd = if dir.is_dir() { dir } else { Path::new(".") };
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (is it installed? `rustup component add rustfmt`)")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = src.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)?;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)?;
    writer.join().expect("writer thread")?;
    let status = child.wait()?;
    if !status.success() {
        bail!("rustfmt failed ({status}):\n{stderr}");
    }
    Ok(stdout)
}
