//! A batch whose record ids must spill to a temporary file, with no writable temporary directory: a clear error, and nothing written.
//!
//! Its own test binary with one test: it changes `TMPDIR` for the whole process.

mod common;

use common::*;
use rater::{rate_batch, Mode};
use rater::{EmbeddedStore, RaterError};

#[tokio::test]
async fn no_temporary_directory_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let before = store.snapshot().await;
    let mut config = config();
    config.id_run_entries = 1;
    let export = [
        line_with_id("r1", "vm-a", "1", 1),
        line_with_id("r2", "vm-a", "1", 2),
    ]
    .join("\n");
    // SAFETY: this binary runs this one test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("TMPDIR", dir.path().join("missing")) };
    let err = rate_batch(
        &store,
        &config,
        request(export.as_bytes(), Some("b1"), Mode::Interim),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RaterError::TempFile(_)), "{err}");
    assert_eq!((err.http_status(), err.code()), (500, "temp_file"));
    assert!(err.to_string().contains("TMPDIR"), "{err}");
    assert_eq!(store.snapshot().await, before, "nothing written");
}
