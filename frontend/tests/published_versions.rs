//! Published price list versions are immutable: each `catalogs/<storefront>/<version>.json` the build writes has the SHA-256 the manifest recorded when that version was first published.
//!
//! A share link pins the version it was made with, and opening it later replays that file
//! (`model/replay.rs`); the deployment never deletes a versioned file. Publishing other
//! content under a version already out would change what old links show without a word, so a
//! change to what a storefront publishes (prices, products, the catalog's shape) needs a new
//! `version` in the catalog. `examples/catalogs/published.sha256` (`sha256sum` format) holds
//! one line per version ever published, old ones included: lines are added, never edited.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The manifest: path to hex SHA-256.
fn manifest() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("examples/catalogs/published.sha256")).unwrap();
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (hash, path) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("published.sha256 line {}: `<sha256>  <path>`", n + 1));
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "published.sha256 line {}: not a SHA-256",
            n + 1
        );
        let before = out.insert(path.to_string(), hash.to_ascii_lowercase());
        assert!(before.is_none(), "published.sha256 lists {path} twice");
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_published_version_keeps_the_content_it_was_published_with() {
    let manifest = manifest();
    // The catalog the storefront build publishes (`publish-catalogs`' default).
    let text = std::fs::read_to_string(root().join("examples/catalogs/cloudstack.json")).unwrap();
    let catalog = pricing::Catalog::from_json(&text).unwrap();
    let files = frontend::model::publish::site_files(&catalog).unwrap();
    let versioned: Vec<&(String, String)> = files
        .iter()
        .filter(|(path, _)| path.ends_with(&format!("/{}.json", catalog.version)))
        .collect();
    assert!(
        versioned.len() >= 3,
        "the direct storefront and each reseller's"
    );
    let mut missing = Vec::new();
    for (path, json) in versioned {
        let hash = sha256_hex(json.as_bytes());
        match manifest.get(path) {
            Some(recorded) => assert_eq!(
                recorded, &hash,
                "{path} was published with other content. Published versions are immutable \
                 (share links made with it replay it): give the catalog a new `version` and \
                 add its files' lines to examples/catalogs/published.sha256"
            ),
            None => missing.push(format!("{hash}  {path}")),
        }
    }
    assert!(
        missing.is_empty(),
        "a new version: add these lines to examples/catalogs/published.sha256 (never edit the \
         old ones):\n{}",
        missing.join("\n")
    );
}

/// The manifest's own rule: versions are added, never rewritten, and each names a file the
/// router serves (`catalogs/<storefront>/<version>.json`).
#[test]
fn the_manifest_names_only_versioned_files() {
    for path in manifest().keys() {
        let parts: Vec<&str> = path.split('/').collect();
        assert!(
            parts.len() == 3
                && parts[0] == "catalogs"
                && parts[2]
                    .strip_suffix(".json")
                    .is_some_and(frontend::model::publish::is_version_name),
            "{path}"
        );
    }
}
