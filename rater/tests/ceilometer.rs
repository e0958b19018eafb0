//! Nightly Ceilometer exports overlapping by one sample, rated into their day windows, bill each hour and byte once: the month's invoice equals one export's, computed by hand.

use chrono::{DateTime, Duration, Utc};
use pricing::{BillingPeriod, Invoice};
use rater::EmbeddedStore;
use rater::{rate_batch, BatchRequest, RaterConfig};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn config() -> RaterConfig {
    RaterConfig::from_json(
        &read("examples/catalogs/openstack.json"),
        &read("examples/accounts/openstack.json"),
        "examples",
    )
    .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An instance's gauge and its outgoing traffic, raw bytes and the pipeline's `.gb` copy.
fn samples_at(at: DateTime<Utc>, bytes: i64) -> Vec<(DateTime<Utc>, Value)> {
    let s = |name: &str, kind: &str, unit: &str, volume: Value, resource: &str| {
        json!({
            "counter_name": name, "counter_type": kind, "counter_unit": unit, "counter_volume": volume,
            "resource_id": resource, "project_id": "tenant-acme", "timestamp": stamp(at),
            "message_id": format!("{name}/{resource}/{}", stamp(at)),
            "resource_metadata": {}
        })
    };
    let gb = Decimal::from(bytes) / Decimal::from(1u64 << 30);
    vec![
        (
            at,
            s("instance:m1.small", "gauge", "instance", json!(1), "srv-1"),
        ),
        (
            at,
            s(
                "network.outgoing.bytes",
                "cumulative",
                "B",
                json!(bytes),
                "tap-1",
            ),
        ),
        (
            at,
            s(
                "network.outgoing.bytes.gb",
                "cumulative",
                "GB",
                json!(gb.to_string()),
                "tap-1",
            ),
        ),
    ]
}

/// Hourly polls from 28 November 00:00 to 2 December 12:00, a few seconds late each, the poll
/// of 30 November 02:00 lost; the counter grows by 1 GiB an hour.
fn month_end() -> Vec<(DateTime<Utc>, Value)> {
    let start = t("2026-11-28T00:00:00Z");
    let mut out = Vec::new();
    for h in 0..=108i64 {
        let at = start + Duration::hours(h) + Duration::milliseconds((h * 1_700) % 9_000);
        if at.date_naive() == t("2026-11-30T00:00:00Z").date_naive() && h % 24 == 2 {
            continue;
        }
        out.extend(samples_at(at, (h + 1) << 30));
    }
    out
}

/// The export of `window`: its samples and, first, the previous window's last sample of every
/// series (here all series are polled together, so the last poll before the window).
fn export(all: &[(DateTime<Utc>, Value)], window: BillingPeriod) -> Vec<u8> {
    let before = all
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at < window.start)
        .max();
    let docs: Vec<Value> = all
        .iter()
        .filter(|(at, _)| window.contains(*at) || Some(*at) == before)
        .map(|(_, v)| v.clone())
        .collect();
    Value::Array(docs).to_string().into_bytes()
}

async fn rate(
    store: &EmbeddedStore,
    config: &RaterConfig,
    period: BillingPeriod,
    export: Vec<u8>,
) -> rater::RateResponse {
    let req = BatchRequest {
        batch_id: None,
        format: None,
        period: Some(period),
        account: None,
        mode: rater::Mode::Interim,
        export,
    };
    rate_batch(store, config, req)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", period.id()))
}

fn november(resp: &rater::RateResponse) -> Invoice {
    resp.invoices
        .iter()
        .find(|i| i.period_id == "2026-11")
        .cloned()
        .expect("November's invoice")
}

fn line_quantity(invoice: &Invoice, meter: &str) -> Decimal {
    invoice
        .bill
        .lines()
        .filter(|l| l.meter.as_deref() == Some(meter))
        .map(|l| l.quantity)
        .sum()
}

#[tokio::test]
async fn nightly_overlapping_exports_bill_what_one_export_bills() {
    let config = config();
    let all = month_end();
    let nights = tempfile::tempdir().unwrap();
    let nightly = EmbeddedStore::open(&nights.path().join("s.redb")).unwrap();
    let mut last_november = None;
    for day in ["2026-11-28", "2026-11-29", "2026-11-30"] {
        let window = BillingPeriod::parse(day).unwrap();
        let resp = rate(&nightly, &config, window, export(&all, window)).await;
        last_november = Some(november(&resp));
        // The same export delivered again changes nothing.
        let again = rate(&nightly, &config, window, export(&all, window)).await;
        assert!(again.replayed);
    }
    let nightly_invoice = last_november.unwrap();

    let whole = tempfile::tempdir().unwrap();
    let monthly = EmbeddedStore::open(&whole.path().join("s.redb")).unwrap();
    let nov = BillingPeriod::month(2026, 11).unwrap();
    let one = november(&rate(&monthly, &config, nov, export(&all, nov)).await);

    // By hand: the instance ran from 28 November 00:00 to the month's end, 72 hours: the lost
    // poll (a 7,200 s + jitter gap) is bridged, and the last November poll (23:00 + seconds)
    // is held to midnight. Traffic: readings from 28 November 01:00 to 30 November 23:00 of
    // the counter growing 1 GiB an hour, the 02:00 reading of the 30th lost (its hour is in the
    // next reading): 71 GiB, counted once although published in bytes and in GB.
    let running = config
        .catalog
        .meter_for_role("m1.small", pricing::MeterRole::Running)
        .unwrap()
        .id
        .clone();
    assert_eq!(line_quantity(&one, &running), Decimal::from(72));
    assert_eq!(
        line_quantity(&one, "network.outgoing.bytes"),
        Decimal::from(71)
    );
    assert_eq!(nightly_invoice.bill, one.bill);

    // December's first night starts with November's last poll: it bills December only.
    let dec1 = BillingPeriod::parse("2026-12-01").unwrap();
    let resp = rate(&nightly, &config, dec1, export(&all, dec1)).await;
    assert!(resp.invoices.iter().all(|i| i.period_id == "2026-12"));
}

#[test]
fn a_catalog_with_bad_mappings_is_refused_at_load_naming_the_path() {
    let mut c: Value = serde_json::from_str(&read("examples/catalogs/openstack.json")).unwrap();
    c["mappings"]["ceilometer"]["gauge_jitter_s"] = json!(99_999);
    let e = RaterConfig::from_json(
        &c.to_string(),
        &read("examples/accounts/openstack.json"),
        "examples",
    )
    .err()
    .expect("refused");
    assert!(
        e.to_string()
            .contains("$.mappings.ceilometer.gauge_jitter_s"),
        "{e}"
    );
}
