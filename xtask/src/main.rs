//! `cargo xtask <command>`:
//!
//! - `trim <in-model.json> <out.json>`: copy a botocore model without its
//!   documentation, keys sorted, pretty-printed.
//! - `codegen [--check]`: regenerate `crates/api/src/generated/*.rs` from
//!   `crates/api/model/*.json`; with `--check`, only report stale files.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["trim", input, output] => {
            let text =
                std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?;
            let model: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {input}"))?;
            let trimmed = xtask::trim::trim_model(&model);
            std::fs::write(output, xtask::trim::render(&trimmed))
                .with_context(|| format!("writing {output}"))?;
            eprintln!("wrote {output}");
            Ok(ExitCode::SUCCESS)
        }
        ["codegen"] => {
            let root = xtask::workspace_root();
            std::fs::create_dir_all(xtask::generated_dir(&root))?;
            for g in xtask::generate_all(&root)? {
                let old = std::fs::read_to_string(&g.path).unwrap_or_default();
                if old == g.source {
                    eprintln!("unchanged {}", g.path.display());
                } else {
                    std::fs::write(&g.path, &g.source)
                        .with_context(|| format!("writing {}", g.path.display()))?;
                    eprintln!("wrote {}", g.path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ["codegen", "--check"] => {
            let root = xtask::workspace_root();
            let mut stale = false;
            for g in xtask::generate_all(&root)? {
                if std::fs::read_to_string(&g.path).ok().as_deref() != Some(g.source.as_str()) {
                    eprintln!("stale: {}", g.path.display());
                    stale = true;
                }
            }
            if stale {
                eprintln!("run `cargo xtask codegen`");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!(
            "usage:\n  cargo xtask trim <in-model.json> <out.json>\n  cargo xtask codegen [--check]"
        ),
    }
}
