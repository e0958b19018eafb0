//! An account billed by the day (Abiquo's DAY account period) through the real rater and store: its daily final invoices and a late-usage note add up to the month's price, the monthly allowance and minimum granted once.

use pricing::{BillingPeriod, Invoice};
use rater::{finalize, rate_batch, BatchRequest, EmbeddedStore, RaterConfig};
use rust_decimal::Decimal;

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The example catalog with Copper at 0.10 an hour, 200 hours a month included and a 5.00
/// monthly minimum; one account billed by the day whose late usage is corrected by notes.
fn config() -> RaterConfig {
    let mut c: serde_json::Value =
        serde_json::from_str(&read("examples/catalogs/cloudstack.json")).unwrap();
    let products = c["products"].as_array_mut().unwrap();
    let copper = products.iter_mut().find(|p| p["id"] == "copper").unwrap();
    copper["charges"][0]["price"] = serde_json::json!({
        "model": "per_unit", "unit_price": "0.10", "included": "200", "minimum": "5.00"
    });
    let accounts = serde_json::json!({
        "schema_version": 1, "version": "t1",
        "accounts": [ { "id": "abq", "name": "Abiquo tenant", "billing_period": "day", "late_usage": "note" } ]
    });
    RaterConfig::from_json(&c.to_string(), &accounts.to_string(), "test").unwrap()
}

/// `hours` of Copper on January `day`, 2017, as canonical CSV.
fn export(day: u32, hours: u32, id: &str) -> Vec<u8> {
    format!(
        "record_id,account,resource,product,meter,quantity,unit,start,end\n\
         {id},abq,vm-1,copper,vm.running,{hours},hours,2017-01-{day:02}T08:00:00Z,2017-01-{day:02}T09:00:00Z\n"
    )
    .into_bytes()
}

async fn rate(store: &EmbeddedStore, config: &RaterConfig, export: Vec<u8>) {
    let req = BatchRequest {
        batch_id: None,
        format: None,
        period: None,
        account: None,
        mode: rater::Mode::Interim,
        export,
    };
    rate_batch(store, config, req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

fn net(inv: &Invoice) -> Decimal {
    inv.bill.net
}

#[tokio::test]
async fn daily_finals_add_up_to_the_months_price() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let mut finals = Vec::new();
    for day in 1..=31 {
        rate(&store, &config, export(day, 10, &format!("r{day}"))).await;
        let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
        let inv = finalize(&store, &config, "abq", period).await.unwrap();
        finals.push(net(&inv));
    }
    // By hand: 310 hours, 200 included, 110 x 0.10 = 11.00 (over the 5.00 minimum): day 1
    // bills the minimum, days 2 to 25 nothing more, days 26 to 31 1.00 each.
    assert_eq!(finals[0], Decimal::new(500, 2));
    assert!(finals[1..25].iter().all(Decimal::is_zero), "{finals:?}");
    assert_eq!(finals.iter().sum::<Decimal>(), Decimal::new(1100, 2));

    // 30 late hours for 3 January: they fall inside the allowance as of that day (40 h by
    // then), so 3 January's own note is 0; the days after it are now 30 h further into the
    // month, and their notes bill what moved past the allowance: 3.00 in all, the month's
    // price of 340 h (14.00) minus the 11.00 billed.
    rate(&store, &config, export(3, 30, "late-3")).await;
    let mut notes = Decimal::ZERO;
    for day in 1..=31 {
        let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
        if let Some(n) = rater::notes::correct(
            &store,
            &config,
            "abq",
            period,
            pricing::NoteReason::LateUsage,
        )
        .await
        .unwrap()
        {
            notes += n.net;
        }
    }
    assert_eq!(notes, Decimal::new(300, 2));
}
