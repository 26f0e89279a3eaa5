//! `cpyrt-docs [OUT_DIR]`: writes the docs site (default `target/docs`).
//! `cargo xtask docs` runs it in release mode.

use std::process::ExitCode;

fn main() -> ExitCode {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/docs".to_string());
    match cpyrt_docs::generate(std::path::Path::new(&out), &mut |line| eprintln!("{line}")) {
        Ok(pages) => {
            eprintln!("wrote {pages} pages to {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cpyrt-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
