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

/// The export of `window` alone, without the previous window's last sample.
fn export_alone(all: &[(DateTime<Utc>, Value)], window: BillingPeriod) -> Vec<u8> {
    let docs: Vec<Value> = all
        .iter()
        .filter(|(at, _)| window.contains(*at))
        .map(|(_, v)| v.clone())
        .collect();
    Value::Array(docs).to_string().into_bytes()
}

/// Issue 18: nightly exports that do not overlap lose no cumulative interval, because the
/// rater carries each counter's last reading to the next batch (in the store, merged before a
/// batch is stored); an overlapping export sent later finds the same records, counted once.
#[tokio::test]
async fn cumulative_readings_are_carried_from_one_nightly_export_to_the_next() {
    let config = config();
    let all = month_end();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let mut invoice = None;
    for day in ["2026-11-28", "2026-11-29", "2026-11-30"] {
        let window = BillingPeriod::parse(day).unwrap();
        invoice = Some(november(
            &rate(&store, &config, window, export_alone(&all, window)).await,
        ));
    }
    // By hand, as in the overlapping case: the counter grows 1 GiB an hour, read from 28
    // November 00:00 to 30 November 23:00: 71 GiB. The first reading is the first export's
    // baseline (nothing before it); the 29th's and 30th's first intervals are measured from
    // the reading the night before left.
    let nightly = invoice.unwrap();
    assert_eq!(
        line_quantity(&nightly, "network.outgoing.bytes"),
        Decimal::from(71)
    );
    // Without the carried readings (each night in a store of its own), each of those two
    // nights loses its first hour.
    let mut lost = Decimal::ZERO;
    for day in ["2026-11-28", "2026-11-29", "2026-11-30"] {
        let d = tempfile::tempdir().unwrap();
        let alone = EmbeddedStore::open(&d.path().join("s.redb")).unwrap();
        let window = BillingPeriod::parse(day).unwrap();
        let inv = november(&rate(&alone, &config, window, export_alone(&all, window)).await);
        lost += line_quantity(&inv, "network.outgoing.bytes");
    }
    assert_eq!(lost, Decimal::from(69));
    // Out of order (the 30th rated before the 29th): the 30th finds no reading of the window
    // just before it and bridges nothing (its first hour is not billed); the 29th then
    // bridges from the 28th. 70 GiB, never more than the 71 there are.
    let d2 = tempfile::tempdir().unwrap();
    let shuffled = EmbeddedStore::open(&d2.path().join("s.redb")).unwrap();
    let mut last = None;
    for day in ["2026-11-28", "2026-11-30", "2026-11-29"] {
        let window = BillingPeriod::parse(day).unwrap();
        last = Some(november(
            &rate(&shuffled, &config, window, export_alone(&all, window)).await,
        ));
    }
    assert_eq!(
        line_quantity(&last.unwrap(), "network.outgoing.bytes"),
        Decimal::from(70)
    );
    // The overlapping export of the 30th, sent as well: its traffic records are the ones the
    // carried reading made (same ids, same quantities), so the traffic is unchanged.
    let nov30 = BillingPeriod::parse("2026-11-30").unwrap();
    let resp = rate(&store, &config, nov30, export(&all, nov30)).await;
    assert_eq!(
        line_quantity(&november(&resp), "network.outgoing.bytes"),
        Decimal::from(71)
    );
}

/// Seed 002's month in one golden, through the real rater and store: two virtual datacenters
/// (projects) of one customer billed as two blocks, a lost poll, a counter reset, exports
/// overlapping by one sample per series (one delivered twice), and traffic published both as
/// raw bytes and as the pipeline's `.gb` copy. Every figure is worked out by hand below.
#[tokio::test]
async fn an_atomia_month_with_two_virtual_datacenters_golden() {
    const GIB: i64 = 1 << 30;
    let mut c: Value = serde_json::from_str(&read("examples/catalogs/openstack.json")).unwrap();
    c["mappings"]["ceilometer"]["account_by_project"] = json!({ "p-web": "vdc", "p-db": "vdc" });
    // Outgoing traffic at a flat 0.09 a GB, so that the golden is about importing, not tiers.
    let network = c["products"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["id"] == "network")
        .unwrap();
    network["charges"][1]["price"] = json!({ "model": "per_unit", "unit_price": "0.0900" });
    let accounts = json!({ "schema_version": 1, "version": "t", "accounts": [
        { "id": "vdc", "name": "Two datacenters AB", "invoice_blocks": "project" } ] });
    let config = RaterConfig::from_json(&c.to_string(), &accounts.to_string(), "t").unwrap();

    // (series, time, sample), hourly from 29 November 00:00 (hour h).
    let mut all: Vec<(String, DateTime<Utc>, Value)> = Vec::new();
    let start = t("2026-11-29T00:00:00Z");
    let mut add = |name: &str,
                   kind: &str,
                   unit: &str,
                   volume: Value,
                   res: &str,
                   project: &str,
                   at: DateTime<Utc>| {
        all.push((
            format!("{name} {res}"),
            at,
            json!({
                "counter_name": name, "counter_type": kind, "counter_unit": unit, "counter_volume": volume,
                "resource_id": res, "project_id": project, "timestamp": stamp(at),
                "message_id": format!("{name}/{res}/{}", stamp(at)), "resource_metadata": {}
            }),
        ));
    };
    for h in 0..48i64 {
        // p-web's server, polled a little late each hour; the poll of 29 November 10:00 lost.
        let at = start + Duration::hours(h) + Duration::milliseconds((h * 1_300) % 9_000);
        if h != 10 {
            add(
                "instance:m1.small",
                "gauge",
                "instance",
                json!(1),
                "srv-w",
                "p-web",
                at,
            );
        }
        // Its traffic counter, reset at hour 36 (to 0.5 GiB), published in bytes and in GB.
        let bytes = if h < 36 {
            (h + 1) * GIB
        } else {
            GIB / 2 + (h - 36) * GIB
        };
        add(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            json!(bytes),
            "tap-w",
            "p-web",
            at,
        );
        let gb = Decimal::from(bytes) / Decimal::from(GIB);
        add(
            "network.outgoing.bytes.gb",
            "cumulative",
            "GB",
            json!(gb.to_string()),
            "tap-w",
            "p-web",
            at,
        );
        // p-db's server runs the first 12 hours, its traffic growing 2 GiB an hour.
        if h < 12 {
            let at = start + Duration::hours(h);
            add(
                "instance:m1.large",
                "gauge",
                "instance",
                json!(1),
                "srv-d",
                "p-db",
                at,
            );
            add(
                "network.outgoing.bytes",
                "cumulative",
                "B",
                json!((h + 1) * 2 * GIB),
                "tap-d",
                "p-db",
                at,
            );
        }
    }
    // A night's export: its window's samples, after each series' last sample before it.
    let export = |window: BillingPeriod| -> Vec<u8> {
        let mut last_before: std::collections::BTreeMap<&str, (DateTime<Utc>, &Value)> =
            Default::default();
        for (series, at, v) in &all {
            if *at < window.start && last_before.get(series.as_str()).is_none_or(|(a, _)| a < at) {
                last_before.insert(series, (*at, v));
            }
        }
        let docs: Vec<Value> = last_before
            .values()
            .map(|(_, v)| (*v).clone())
            .chain(
                all.iter()
                    .filter(|(_, at, _)| window.contains(*at))
                    .map(|(_, _, v)| v.clone()),
            )
            .collect();
        Value::Array(docs).to_string().into_bytes()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let mut invoice = None;
    for day in ["2026-11-29", "2026-11-30", "2026-11-30"] {
        let window = BillingPeriod::parse(day).unwrap();
        invoice = Some(november(
            &rate(&store, &config, window, export(window)).await,
        ));
    }
    let inv = invoice.unwrap();
    inv.check_totals().unwrap();

    // By hand.
    // - srv-w (m1.small, 0.032): 29 November 00:00 to the month's end, 48 h (the lost poll's
    //   2 h + 1.3 s gap is bridged, the last poll held to midnight): 1.536 -> 1.54.
    // - srv-d (m1.large, 0.128): 12 polls, the last held an hour: 12 h: 1.536 -> 1.54.
    // - traffic (0.09 a GB): tap-w's readings from hour 1 to 35 add 35 GiB, the reset at 36
    //   counts 0.5 GiB from zero, hours 37 to 47 add 11 GiB: 46.5; tap-d 11 readings of 2 GiB:
    //   22. The .gb copy is skipped. 68.5 GB x 0.09 = 6.165 -> 6.16 (half-even, on the line).
    // - Blocks split the traffic line by quantity: p-web 46.5/68.5 x 6.16 = 4.1816 -> 4.18,
    //   p-db 22/68.5 x 6.16 = 1.9784 -> 1.97, and the cent left goes to the larger remainder,
    //   p-db: 1.98. p-db: 1.54 + 1.98 = 3.52; p-web: 1.54 + 4.18 = 5.72; together 9.24.
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(line_quantity(&inv, "network.outgoing.bytes"), d("68.5"));
    let blocks: Vec<(String, Decimal)> = inv
        .blocks
        .iter()
        .map(|b| (b.name.clone(), b.total))
        .collect();
    assert_eq!(
        blocks,
        vec![
            ("p-db".to_string(), d("3.52")),
            ("p-web".to_string(), d("5.72"))
        ]
    );
    let lines: Vec<(String, Decimal, Decimal)> = inv
        .bill
        .lines()
        .map(|l| (l.product.clone(), l.quantity, l.amount))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("m1.small".to_string(), d("48"), d("1.54")),
            ("m1.large".to_string(), d("12"), d("1.54")),
            ("network".to_string(), d("68.5"), d("6.16")),
        ]
    );
    assert_eq!(inv.bill.subtotal, d("9.24"));
}
