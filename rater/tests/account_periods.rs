//! An account billed by the day (Abiquo's DAY account period) through the real rater, on the embedded store and DynamoDB Local: its daily final invoices, late-usage notes and adjustments add up to the month's price, the monthly allowance and minimum granted once.

mod common;

use pricing::{BillingPeriod, Invoice};
use rater::{finalize, rate_batch, BatchRequest, EmbeddedStore, RaterConfig, Store};
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

async fn rate<S: Store>(store: &S, config: &RaterConfig, export: Vec<u8>) {
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
    // price of 340 h (14.00) minus the 11.00 billed. The late batch's answer issues them all.
    rate(&store, &config, export(3, 30, "late-3")).await;
    let mut notes = Decimal::ZERO;
    for day in 1..=31 {
        notes += notes_net(&store, day).await;
    }
    // And a correction asked for any day afterwards finds nothing left to issue.
    for day in 1..=31 {
        let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
        let again = rater::notes::correct(
            &store,
            &config,
            "abq",
            period,
            pricing::NoteReason::LateUsage,
        )
        .await
        .unwrap();
        assert_eq!(again, None, "day {day}");
    }
    assert_eq!(notes, Decimal::new(300, 2));
}

/// [`config`] with the account's late-usage policy set to `policy`.
fn config_with_policy(policy: &str) -> RaterConfig {
    let mut c: serde_json::Value =
        serde_json::from_str(&read("examples/catalogs/cloudstack.json")).unwrap();
    let products = c["products"].as_array_mut().unwrap();
    let copper = products.iter_mut().find(|p| p["id"] == "copper").unwrap();
    copper["charges"][0]["price"] = serde_json::json!({
        "model": "per_unit", "unit_price": "0.10", "included": "200", "minimum": "5.00"
    });
    let accounts = serde_json::json!({
        "schema_version": 1, "version": "t1",
        "accounts": [ { "id": "abq", "name": "Abiquo tenant", "billing_period": "day", "late_usage": policy } ]
    });
    RaterConfig::from_json(&c.to_string(), &accounts.to_string(), "test").unwrap()
}

/// Days 1 to 3 of January rated and finalized: 100 h, 150 h, 100 h of Copper. By hand (0.10
/// an hour over 200 h a month, 5.00 minimum a month): day 1 prices the month's 100 h at the
/// minimum, 5.00; day 2 the month's 250 h at 5.00 (50 h over), less the 5.00 billed: 0; day 3
/// the month's 350 h at 15.00, less 5.00: 10.00.
async fn three_days<S: Store>(store: &S, config: &RaterConfig) -> Vec<Decimal> {
    let mut finals = Vec::new();
    for (day, hours) in [(1, 100), (2, 150), (3, 100)] {
        rate(store, config, export(day, hours, &format!("r{day}"))).await;
        let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
        finals.push(net(&finalize(store, config, "abq", period).await.unwrap()));
    }
    assert_eq!(
        finals,
        [Decimal::new(500, 2), Decimal::ZERO, Decimal::new(1000, 2)]
    );
    finals
}

/// The notes stored against `day`'s final invoice, net.
async fn notes_net<S: Store>(store: &S, day: u32) -> Decimal {
    store
        .corrections("abq", &format!("2017-01-{day:02}"))
        .await
        .unwrap()
        .iter()
        .map(|c| c.note.net)
        .sum()
}

/// 100 late hours for 1 January, after days 1 to 3 were final, under policy `note`: the late
/// batch's answer corrects day 1 and the later final days of the month it re-prices. By hand:
/// day 1 now prices 200 h (all included) at the 5.00 minimum it billed: no note; day 2 prices
/// the month's 350 h (15.00) less the 200 h before it (5.00): 10.00, of which 0 was billed, a
/// 10.00 debit note; day 3 prices 450 h (25.00) less 350 h (15.00): the 10.00 it billed. In
/// all the month's 450 h price 25.00 = 15.00 billed + 10.00. (Before, only day 1 was
/// corrected: the 10.00 was never billed.)
async fn re_priced_by_note<S: Store>(store: &S) {
    let config = config_with_policy("note");

    three_days(store, &config).await;
    let resp = rate_batch(
        store,
        &config,
        BatchRequest {
            export: export(1, 100, "late-1"),
            ..BatchRequest::default()
        },
    )
    .await
    .unwrap();
    // The answer names the note of the later day it issued.
    let late = &resp.late[0];
    assert_eq!(late.period, "2017-01-01");
    let later: Vec<(&str, Decimal)> = late
        .later_notes
        .iter()
        .map(|n| (n.period_id.as_str(), n.net))
        .collect();
    assert_eq!(later, [("2017-01-02", Decimal::new(1000, 2))]);
    let notes: Vec<Decimal> = [
        notes_net(store, 1).await,
        notes_net(store, 2).await,
        notes_net(store, 3).await,
    ]
    .to_vec();
    assert_eq!(notes, [Decimal::ZERO, Decimal::new(1000, 2), Decimal::ZERO]);
    assert!(store.late_markers("abq").await.unwrap().is_empty());
    // A replay, or a close catching up, issues nothing more.
    let acc = config.known_account("abq").unwrap();
    assert!(rater::notes::settle_late(store, &config, acc)
        .await
        .unwrap()
        .is_empty());
}

/// The same under policy `next_period`: day 4's final invoice bills the differences as
/// adjustments (day 2's 10.00; day 1's marker cleared with nothing to bill) and its own 40 h,
/// priced after the month's 450 h: 490 h at 29.00 less 25.00, 4.00. The four finals then add
/// up to the month's price of its 490 h: 5.00 + 0 + 10.00 + 14.00 = 29.00.
async fn re_priced_as_adjustments<S: Store>(store: &S) {
    let config = config_with_policy("next_period");

    let mut finals = three_days(store, &config).await;
    rate(store, &config, export(1, 100, "late-1")).await;
    rate(store, &config, export(4, 40, "r4")).await;
    let period = BillingPeriod::parse("2017-01-04").unwrap();
    let inv = finalize(store, &config, "abq", period).await.unwrap();
    let section = inv
        .bill
        .sections
        .iter()
        .find(|s| s.name == pricing::bill::ADJUSTMENTS_SECTION)
        .expect("an adjustments section");
    assert!(
        section
            .lines
            .iter()
            .all(|l| l.description.ends_with("(usage of 2017-01-02)")),
        "{section:#?}"
    );
    assert_eq!(section.total, Decimal::new(1000, 2));
    finals.push(net(&inv));
    assert_eq!(
        finals[3],
        Decimal::new(1400, 2),
        "4.00 own + 10.00 adjusted"
    );
    assert_eq!(finals.iter().sum::<Decimal>(), Decimal::new(2900, 2));
    assert!(store.late_markers("abq").await.unwrap().is_empty());
}

fn embedded() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    (dir, store)
}

/// A new table of the shared DynamoDB Local (the `Arc` keeps the server up).
async fn dynamodb() -> (std::sync::Arc<e2e::DynamoLocal>, rater::DynamoStore) {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let server = e2e::DynamoLocal::shared();
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    let table = format!("ratecard-test-{:016x}", fastrand::u64(..));
    let store = rater::DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table);
    store.create_table().await.expect("create table");
    (server, store)
}

#[tokio::test]
async fn late_usage_into_an_early_day_re_prices_the_later_final_days_by_note() {
    let (_d, store) = embedded();
    re_priced_by_note(&store).await;
}

#[tokio::test]
async fn late_usage_into_an_early_day_re_prices_the_later_final_days_as_adjustments() {
    let (_d, store) = embedded();
    re_priced_as_adjustments(&store).await;
}

#[tokio::test]
async fn dynamodb_late_usage_into_an_early_day_re_prices_the_later_final_days_by_note() {
    let (_server, store) = dynamodb().await;
    re_priced_by_note(&store).await;
}

#[tokio::test]
async fn dynamodb_late_usage_into_an_early_day_re_prices_the_later_final_days_as_adjustments() {
    let (_server, store) = dynamodb().await;
    re_priced_as_adjustments(&store).await;
}

/// More later periods to adjust than one invoice bills (`ADJUSTED_PERIODS_MAX`, 12): they
/// spread over the next invoices, and the marked period's marker stays until the last. Days 1
/// to 20 of 10 h each (200 h: all included, day 1 bills the 5.00 minimum), then 200 late hours
/// for day 1. By hand, the month to date prices max(0.10 x (h - 200), 5.00): day 1 now 210 h,
/// 5.00 as billed; days 2 to 5 stay within the minimum; days 6 to 20 each owe 1.00 (15 days).
/// Day 21 (10 h: 410 h, 21.00 less 20.00) bills 1.00 and days 6 to 17 (12.00); day 22 bills
/// its own 1.00 and days 18 to 20 (3.00). The finals add up to the month's 420 h: 22.00.
async fn adjustments_spread_over_invoices<S: Store>(store: &S) {
    let config = config_with_policy("next_period");
    let mut finals = Vec::new();
    for day in 1..=20 {
        rate(store, &config, export(day, 10, &format!("r{day}"))).await;
        let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
        finals.push(net(&finalize(store, &config, "abq", period).await.unwrap()));
    }
    rate(store, &config, export(1, 200, "late-1")).await;
    let adjusted = |inv: &Invoice| {
        let s = inv
            .bill
            .sections
            .iter()
            .find(|s| s.name == pricing::bill::ADJUSTMENTS_SECTION)
            .expect("an adjustments section");
        let days: Vec<String> = s
            .lines
            .iter()
            .map(|l| {
                l.description
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .trim_end_matches(')')
                    .to_string()
            })
            .collect();
        (days, s.total)
    };
    let day = |d: u32| format!("2017-01-{d:02}");
    rate(store, &config, export(21, 10, "r21")).await;
    let inv = finalize(
        store,
        &config,
        "abq",
        BillingPeriod::parse(&day(21)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        adjusted(&inv),
        ((6..=17).map(day).collect(), Decimal::new(1200, 2))
    );
    finals.push(net(&inv));
    let markers = store.late_markers("abq").await.unwrap();
    assert_eq!(markers.len(), 1, "day 1's marker stays: {markers:?}");
    rate(store, &config, export(22, 10, "r22")).await;
    let inv = finalize(
        store,
        &config,
        "abq",
        BillingPeriod::parse(&day(22)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        adjusted(&inv),
        ((18..=20).map(day).collect(), Decimal::new(300, 2))
    );
    finals.push(net(&inv));
    assert!(store.late_markers("abq").await.unwrap().is_empty());
    assert_eq!(finals[20..], [Decimal::new(1300, 2), Decimal::new(400, 2)]);
    assert_eq!(finals.iter().sum::<Decimal>(), Decimal::new(2200, 2));
}

#[tokio::test]
async fn adjustments_of_more_later_periods_than_an_invoice_bills_spread_over_invoices() {
    let (_d, store) = embedded();
    adjustments_spread_over_invoices(&store).await;
}

#[tokio::test]
async fn dynamodb_adjustments_of_more_later_periods_than_an_invoice_bills_spread_over_invoices() {
    let (_server, store) = dynamodb().await;
    adjustments_spread_over_invoices(&store).await;
}

/// A second late batch for day 1 committed while the first one's answer corrects the later
/// days (after its reads, before its note of day 2), whose own answer dies before settling
/// anything: the first answer's correction of day 1 finds the marker moved and starts again,
/// so the later days are re-priced with the second batch too (before, it cleared the marker at
/// its new version, and day 2 never billed the second batch's share). By hand, from
/// [`three_days`]: day 1 ends at 300 h, the month at 550 h, 35.00 in all against 15.00 billed;
/// notes 20.00: day 1 5.00 (300 h: 10.00, 5.00 billed), day 2 15.00 (450 h less 300 h: 25.00 -
/// 10.00), day 3 none (550 h less 450 h: 10.00 as billed).
async fn a_late_batch_racing_the_correction_is_re_priced_too<S: Store + 'static>(inner: S) {
    let config = config_with_policy("note");
    let store = common::Sabotaged::new(std::sync::Arc::new(inner));
    three_days(&store, &config).await;
    *store.before_note.lock().unwrap() = Some(Box::new(|s: &std::sync::Arc<S>| {
        let dying = rater::store::fault::FaultyStore::new(s.clone());
        Box::pin(async move {
            // The config (two puts), its lease, its two chunks (usage, record ids) and its
            // commit: then it dies.
            dying.crash_after(6);
            let req = BatchRequest {
                export: export(1, 100, "late-2"),
                ..BatchRequest::default()
            };
            let config = config_with_policy("note");
            let err = rate_batch(&dying, &config, req).await.unwrap_err();
            assert!(err.retryable(), "{err}");
            let id = rater::sha256_hex(&export(1, 100, "late-2"));
            assert!(
                matches!(
                    dying.ledger(&id).await,
                    Ok(Some(rater::model::Ledger::Done(_)))
                ),
                "the second batch committed: {err}"
            );
        })
    }));
    rate(&store, &config, export(1, 100, "late-1")).await;
    assert!(store.before_note.lock().unwrap().is_none(), "the race ran");
    let mut notes = Vec::new();
    for day in 1..=3 {
        notes.push(notes_net(&store, day).await);
    }
    assert_eq!(
        notes.iter().sum::<Decimal>(),
        Decimal::new(2000, 2),
        "{notes:?}"
    );
    assert!(store.late_markers("abq").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_late_batch_racing_the_correction_of_the_later_days_is_re_priced_too() {
    let (_d, store) = embedded();
    a_late_batch_racing_the_correction_is_re_priced_too(store).await;
}

#[tokio::test]
async fn dynamodb_a_late_batch_racing_the_correction_of_the_later_days_is_re_priced_too() {
    let (_server, store) = dynamodb().await;
    a_late_batch_racing_the_correction_is_re_priced_too(store).await;
}

/// The example catalog with account `abq` billed by the day in EUR, late usage billed on the
/// next invoice; a customer of `reseller` (Acme, taxed in Germany) from accounts version
/// `version` on, else the provider's own.
fn moving_config(reseller: Option<&str>, version: &str) -> RaterConfig {
    let c = read("examples/catalogs/cloudstack.json");
    let mut abq = serde_json::json!({
        "id": "abq", "name": "Abiquo tenant", "billing_period": "day",
        "late_usage": "next_period", "currency": "EUR", "tax_jurisdiction": "none"
    });
    if let Some(r) = reseller {
        abq["reseller"] = r.into();
        abq["tax_jurisdiction"] = "de".into();
    }
    // Acme's own account, billed by the day as its customers are.
    let own = serde_json::json!({
        "id": "reseller-acme", "name": "Acme", "resells": "acme", "currency": "EUR",
        "tax_jurisdiction": "none", "billing_period": "day"
    });
    let accounts =
        serde_json::json!({ "schema_version": 1, "version": version, "accounts": [abq, own] });
    RaterConfig::from_json(&c, &accounts.to_string(), "test").unwrap()
}

/// `abq`, billed by the day under `next_period`, moves from the provider to Acme on 11
/// January. One late batch brings usage into 5 January (the provider's) and 12 January
/// (Acme's). 5 January is corrected by the provider's notes, whatever the policy (Acme's next
/// invoice cannot bill a correction of the provider's), with the later days of its month:
/// 12 January among them, on the condition of its own marker. Before, 12 January was expected
/// unmarked there: every round found its marker "moved", and the batch's answer, and every
/// close of the account after it, failed with a note conflict.
#[tokio::test]
async fn late_usage_into_days_two_issuers_billed_settles_each_under_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let (direct, acme) = (moving_config(None, "t1"), moving_config(Some("acme"), "t2"));
    let day = |d: u32| BillingPeriod::parse(&format!("2017-01-{d:02}")).unwrap();
    for d in 1..=15 {
        let c = if d <= 10 { &direct } else { &acme };
        rate(&store, c, export(d, 10, &format!("r{d}"))).await;
        let inv = finalize(&store, c, "abq", day(d)).await.unwrap();
        let series = if d <= 10 { "test-" } else { "acme-" };
        assert!(
            inv.number.as_deref().unwrap().starts_with(series),
            "{d}: {inv:?}"
        );
        if d == 10 {
            // What the provider is owed, paid to it before Acme's first invoice (which
            // refuses to bring another issuer's balance forward otherwise).
            let paid = rater::month::PaymentInput {
                account: "abq".into(),
                date: "2017-01-11T12:00:00Z".parse().unwrap(),
                amount: inv.carried_forward,
                currency: "EUR".into(),
                reference: "paid-to-provider".into(),
                payee: None,
            };
            rater::month::record_payment(&store, &acme, &paid)
                .await
                .unwrap();
        }
    }
    let late = [export(5, 100, "late-5"), export(12, 100, "late-12")]
        .map(|e| String::from_utf8(e).unwrap());
    let body = format!("{}{}", late[0], late[1].lines().nth(1).unwrap());
    let resp = rate_batch(
        &store,
        &acme,
        BatchRequest {
            batch_id: Some("late".into()),
            format: None,
            period: None,
            account: None,
            mode: rater::Mode::Interim,
            export: body.into_bytes(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let policies: Vec<(&str, pricing::LateUsagePolicy)> = resp
        .late
        .iter()
        .map(|l| (l.period.as_str(), l.policy))
        .collect();
    assert_eq!(
        policies,
        [
            ("2017-01-05", pricing::LateUsagePolicy::Note),
            ("2017-01-12", pricing::LateUsagePolicy::NextPeriod)
        ]
    );
    assert!(store.late_markers("abq").await.unwrap().is_empty());
    for (d, series) in [(5, "test-N"), (12, "acme-N")] {
        let notes = rater::notes::notes_of(&store, "abq", &day(d).id())
            .await
            .unwrap();
        assert!(!notes.is_empty(), "{d}");
        assert!(
            notes
                .iter()
                .all(|n| n.number.as_deref().unwrap().starts_with(series)),
            "{d}: {notes:?}"
        );
    }
}
