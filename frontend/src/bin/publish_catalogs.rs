//! Writes the storefront's static catalogs: `catalogs/<storefront>.json` and `resellers.json`.
//!
//! Usage: `publish-catalogs [--catalog examples/catalogs/cloudstack.json] --out <dir>`.
//! Trunk runs it before every build with `--out $TRUNK_STAGING_DIR`, so `dist/` always holds
//! catalogs published from the current wholesale catalog and nothing generated is committed.

use std::path::PathBuf;

use anyhow_free::Result;

/// A tiny `Result` alias: this binary only reports errors as text.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, String>;
}

fn main() {
    if let Err(e) = run() {
        eprintln!("publish-catalogs: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut catalog = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/catalogs/cloudstack.json"
    ));
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--catalog" => catalog = args.next().ok_or("--catalog needs a path")?.into(),
            "--out" => out = Some(args.next().ok_or("--out needs a directory")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: publish-catalogs [--catalog <wholesale catalog json>] --out <dir>"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    let out = out.ok_or("--out <dir> is required")?;
    let text = std::fs::read_to_string(&catalog)
        .map_err(|e| format!("reading {}: {e}", catalog.display()))?;
    let wholesale =
        pricing::Catalog::from_json(&text).map_err(|e| format!("{}: {e}", catalog.display()))?;
    let files = frontend::model::publish::site_files(&wholesale).map_err(|e| e.to_string())?;
    for (path, content) in files {
        let target = out.join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&target, content)
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
        println!("published {}", target.display());
    }
    Ok(())
}
