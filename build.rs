//! Embeds the report definitions (`reports/*.toml`) in the binary: writes `OUT_DIR/reports.rs`, a
//! table of (file name, text) pairs read with `include_str!`, so a new report file needs no code.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let dir = Path::new(&manifest).join("reports");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| p.display().to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let mut out =
        String::from("/// Report definitions embedded from `reports/*.toml`: (file name, text).\n");
    out.push_str("pub static REPORT_FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={path}");
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(&format!("    ({name:?}, include_str!({path:?})),\n"));
    }
    out.push_str("];\n");
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("reports.rs");
    std::fs::write(&target, out).expect("write OUT_DIR/reports.rs");
}
