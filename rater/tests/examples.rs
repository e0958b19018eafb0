//! Every example export under `examples/exports/` goes through the rater (format detected, stored once, invoiced) and answers its expected invoice.

use pricing::Invoice;
use rater::EmbeddedStore;
use rater::{rate_batch, BatchRequest, RaterConfig};

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[tokio::test]
async fn example_exports_answer_their_expected_invoices() {
    let cases = [
        ("canonical-2017-02.csv", "cloudstack"),
        ("canonical-2017-02.jsonl", "cloudstack"),
        ("cloudstack-2017-02.json", "cloudstack"),
        ("cloudstack-nightly-2017-02-14.json", "cloudstack"),
        ("ceilometer-2026-11.json", "openstack"),
    ];
    for (export, cloud) in cases {
        let stem = export.rsplit_once('.').unwrap().0;
        let expected_path = format!("examples/exports/{stem}.expected.json");
        let mut expected: Invoice = serde_json::from_str(&read(&expected_path)).unwrap();
        let config = RaterConfig::from_json(
            &read(&format!("examples/catalogs/{cloud}.json")),
            &read(&format!("examples/accounts/{cloud}.json")),
            "examples",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let req = BatchRequest {
            batch_id: None,
            format: None,
            period: Some(expected.period),
            account: None,
            mode: rater::Mode::Interim,
            export: read(&format!("examples/exports/{export}")).into_bytes(),
        };
        let resp = rate_batch(&store, &config, req)
            .await
            .unwrap_or_else(|e| panic!("{export}: {e}"));
        let got = resp
            .invoices
            .iter()
            .find(|i| i.account == expected.account)
            .unwrap_or_else(|| panic!("{export}: no invoice for {}", expected.account));
        expected.accounts_version = Some(config.accounts.version.clone());
        assert_eq!(got, &expected, "{export}");
    }
}
