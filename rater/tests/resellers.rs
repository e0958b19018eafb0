//! A reseller's customer's late usage after the month is closed: the customer gets its note at the reseller's prices, and the reseller gets the wholesale difference on its statement when its next statement is issued (or when an operator re-rates it), never twice.
//!
//! Figures by hand from the example catalog: 10 late hours of copper are 10 x 2.20 x 1.25 x
//! 1.17 = 32.175, EUR 32.18 half-even, plus 19 % VAT (6.11) at Acme's prices; 10 x 2.20 x 1.17 =
//! EUR 25.74 at wholesale, reverse-charged.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pricing::import::Format;
use pricing::BillingPeriod;
use rater::invoices::Finalizing;
use rater::{rate_batch, BatchRequest, EmbeddedStore, Mode, RaterConfig, Store};
use rust_decimal::Decimal;

const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
const ACCOUNTS: &str = include_str!("../../examples/accounts/cloudstack.json");
const EXPORT: &str = include_str!("../../examples/exports/resellers-2017-02.json");

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The example book with acme-shop's late usage billed by a note, priced by `catalog`.
fn config_with(catalog: &str, clock: &Arc<AtomicI64>) -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "acme-shop" {
            a["late_usage"] = "note".into();
        }
    }
    let mut c = RaterConfig::from_json(catalog, &book.to_string(), "prov").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// The example book with `account`'s fields set to `fields` (moved to a reseller, or another
/// currency), as accounts version `version`, on `clock`.
fn book_with(
    account: &str,
    fields: &[(&str, &str)],
    version: &str,
    clock: &Arc<AtomicI64>,
) -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == account {
            for (k, v) in fields {
                a[*k] = (*v).into();
            }
        }
    }
    book["version"] = version.into();
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

fn config(clock: &Arc<AtomicI64>) -> RaterConfig {
    config_with(CATALOG, clock)
}

/// The example resellers' February rated and closed on 2017-03-04 by `config`, in a new store.
async fn february_closed(clock: &Arc<AtomicI64>) -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    clock.store(1_488_600_000, Ordering::SeqCst); // 2017-03-04
    let c = config(clock);
    rate_batch(&s, &c, batch("feb", Format::CloudStack, EXPORT.into()))
        .await
        .unwrap();
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let report = rater::month::close(&s, &c, feb, Finalizing::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    (dir, s)
}

fn batch(id: &str, format: Format, export: String) -> BatchRequest {
    BatchRequest {
        batch_id: Some(id.into()),
        format: Some(format),
        period: None,
        account: None,
        mode: Mode::Interim,
        export: export.into_bytes(),
    }
}

#[tokio::test]
async fn a_customers_late_usage_is_billed_to_its_reseller_at_wholesale_once() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let c = config(&clock);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let statement = rater::invoice_for(&s, &c, "reseller-acme", feb)
        .await
        .unwrap();
    assert_eq!(statement.bill.net, d("2443.41"));

    // Ten more hours of shop-web-1 in February, after the close: the customer's debit note.
    let late = r#"{"record_id":"late-1","account":"acme-shop","resource":"shop-web-1","product":"copper","meter":"vm.running","quantity":"10","unit":"hours","start":"2017-02-27T00:00:00Z","end":"2017-02-27T10:00:00Z"}"#;
    let resp = rate_batch(
        &s,
        &c,
        batch("late", Format::JsonLines, late.to_string() + "\n"),
    )
    .await
    .unwrap();
    let notes = rater::notes::notes_of(&s, "acme-shop", "2017-02")
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "{resp:?}");
    assert_eq!(notes[0].number.as_deref(), Some("acme-N000001"));
    assert_eq!((notes[0].net, notes[0].total), (d("32.18"), d("38.29")));

    // The reseller's statement is not corrected yet; an operator's re-rate, or its next
    // statement, bills the wholesale difference: EUR 25.74, in the provider's note series.
    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = rater::month::close(&s, &c, mar, Finalizing::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let wholesale = rater::notes::notes_of(&s, "reseller-acme", "2017-02")
        .await
        .unwrap();
    assert_eq!(wholesale.len(), 1, "{report:?}");
    assert_eq!(wholesale[0].number.as_deref(), Some("prov-N000001"));
    assert_eq!(
        (wholesale[0].net, wholesale[0].total),
        (d("25.74"), d("25.74"))
    );
    // Nothing more to bill: the close again, and a re-rate, issue nothing.
    rater::month::close(&s, &c, mar, Finalizing::default())
        .await
        .unwrap();
    let again = rater::notes::correct(
        &s,
        &c,
        "reseller-acme",
        feb,
        pricing::NoteReason::CorrectedAccount,
    )
    .await
    .unwrap();
    assert!(again.is_none(), "{again:?}");
    assert_eq!(
        rater::notes::notes_of(&s, "reseller-acme", "2017-02")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A wholesale price change between two statements is not late usage: the reseller's next
/// statement issues no note for the month before (it issued one re-billing the whole month at
/// the new price, as "late usage"). A re-rate under the changed catalog, when an operator asks
/// for it, does: each copper line moves by its hours x 0.10 x 1.17, rounded half-up once per
/// line at both prices, figured here from the statement's hours.
#[tokio::test]
async fn a_price_change_between_statements_bills_the_reseller_nothing_unasked() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();

    // March's catalog: copper running hours at 2.30 instead of 2.20.
    assert_eq!(CATALOG.matches(r#""version": "2017-02.1""#).count(), 1);
    let copper =
        r#"{ "meter": "vm.running", "price": { "model": "per_unit", "unit_price": "2.2000" } }"#;
    assert_eq!(CATALOG.matches(copper).count(), 1);
    let c2 = config_with(
        // A new version: the store keeps each version's content, and refuses to price with
        // other content under a version it knows.
        &CATALOG
            .replacen(copper, &copper.replace("2.2000", "2.3000"), 1)
            .replacen(r#""version": "2017-02.1""#, r#""version": "2017-03.1""#, 1),
        &clock,
    );

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = rater::month::close(&s, &c2, mar, Finalizing::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let notes = rater::notes::notes_of(&s, "reseller-acme", "2017-02")
        .await
        .unwrap();
    assert!(notes.is_empty(), "a note nobody asked for: {notes:?}");

    // The operator's re-rate under the new catalog bills the difference, copper lines only.
    let statement = rater::invoice_for(&s, &c2, "reseller-acme", feb)
        .await
        .unwrap();
    let round = |x: Decimal| {
        // The wholesale catalog's mode (`"rounding": "half_up"`), which the provider's
        // statements use in the reseller's currency too.
        x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let (mut want, mut lines) = (Decimal::ZERO, 0);
    for l in statement.bill.sections.iter().flat_map(|s| &s.lines) {
        if l.product == "copper" && l.meter.as_deref() == Some("vm.running") {
            assert_eq!(l.amount, round(l.quantity * d("2.20") * d("1.17")), "{l:?}");
            want += round(l.quantity * d("2.30") * d("1.17")) - l.amount;
            lines += 1;
        }
    }
    assert!(
        lines > 0 && want > Decimal::ZERO,
        "the statement bills copper hours"
    );
    let note = rater::notes::correct(
        &s,
        &c2,
        "reseller-acme",
        feb,
        pricing::NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap()
    .expect("a re-rate under a new price issues a note");
    assert_eq!(note.kind, pricing::NoteKind::Debit);
    assert_eq!((note.net, note.total), (want, want), "{note:?}");
    assert!(note
        .sections
        .iter()
        .flat_map(|s| &s.lines)
        .all(|l| l.product == "copper" && l.amount != Decimal::ZERO));
}

/// A reseller's customer whose February came after February's close (the customer and its
/// reseller both skipped, nothing to bill then) is billed by March's close, not lost: the
/// customer's February invoice first, then the reseller's February statement billing it at
/// wholesale, each before its March. 10 hours of copper: 10 x 2.20 x 1.30 (Nimbus's 30 %
/// markup) = GBP 28.60 net to the customer; 10 x 2.20 = 22.00 net at wholesale to Nimbus.
#[tokio::test]
async fn a_customers_usage_after_a_skipped_close_reaches_its_invoice_and_the_resellers() {
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let c = config(&clock);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let report = rater::month::close(&s, &c, feb, Finalizing::default())
        .await
        .unwrap();
    for skipped in ["nimbus-studio", "reseller-nimbus"] {
        assert!(
            report.skipped_accounts.iter().any(|a| a == skipped),
            "{report:?}"
        );
    }
    let late = r#"{"record_id":"studio-1","account":"nimbus-studio","resource":"studio-web-1","product":"copper","meter":"vm.running","quantity":"10","unit":"hours","start":"2017-02-27T00:00:00Z","end":"2017-02-27T10:00:00Z"}"#;
    rate_batch(
        &s,
        &c,
        batch("studio-feb", Format::JsonLines, late.to_string() + "\n"),
    )
    .await
    .unwrap();

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = rater::month::close(&s, &c, mar, Finalizing::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let issued: Vec<(&str, &str)> = report
        .issued
        .iter()
        .filter(|i| i.account.contains("nimbus"))
        .map(|i| (i.account.as_str(), i.period.as_str()))
        .collect();
    assert_eq!(
        issued,
        [
            ("nimbus-studio", "2017-02"),
            ("nimbus-studio", "2017-03"),
            ("reseller-nimbus", "2017-02"),
            ("reseller-nimbus", "2017-03"),
        ],
        "each March brings its February's balance forward: {report:?}"
    );
    let invoice = rater::invoice_for(&s, &c, "nimbus-studio", feb)
        .await
        .unwrap();
    assert_eq!(
        (invoice.kind, invoice.bill.net),
        (pricing::InvoiceKind::Final, d("28.60"))
    );
    let statement = rater::invoice_for(&s, &c, "reseller-nimbus", feb)
        .await
        .unwrap();
    assert_eq!(
        (statement.kind, statement.bill.net),
        (pricing::InvoiceKind::Final, d("22.00"))
    );
}

/// The example book after acme-shop moved from Acme to Nimbus (and to the UK, taxed there as
/// Nimbus's customers are), its late usage billed under `policy`.
fn moved_config(clock: &Arc<AtomicI64>, policy: &str) -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "acme-shop" {
            a["reseller"] = "nimbus".into();
            a["tax_jurisdiction"] = "gb".into();
            a["late_usage"] = policy.into();
            a["country"] = "GB".into();
        }
    }
    let version = format!("{}-moved", book["version"].as_str().unwrap());
    book["version"] = version.into();
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// acme-shop, Acme's customer in February and March, is Nimbus's when ten more hours of its
/// February come in. February was billed by Acme, at Acme's prices, on Acme's statement: the late usage
/// is too, whichever policy the account has now (Nimbus's next invoice cannot bill a
/// correction of Acme's). Figures as at the top of this file: the customer's note is Acme's
/// (its series, EUR 32.18 net, 38.29 with German VAT), Acme's statement gets the EUR 25.74
/// wholesale note, Nimbus's nothing. Before, the note was priced at Nimbus's prices in GBP
/// (refused: another currency than the invoice's) and the wholesale marker went to Nimbus,
/// whose statement never billed acme-shop's February: the reseller's share was lost.
#[tokio::test]
async fn a_moved_customers_late_usage_is_billed_where_its_period_was() {
    for policy in ["note", "next_period"] {
        let clock = Arc::new(AtomicI64::new(0));
        let (_dir, s) = february_closed(&clock).await;
        let feb = BillingPeriod::parse("2017-02").unwrap();
        let mar = BillingPeriod::parse("2017-03").unwrap();
        let apr = BillingPeriod::parse("2017-04").unwrap();
        // March closed before the move: Acme's last statement is March's, so only the marker
        // of acme-shop's late commit brings its February back to Acme's next close.
        clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
        let report = rater::month::close(&s, &config(&clock), mar, Finalizing::default())
            .await
            .unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        clock.store(1_491_700_000, Ordering::SeqCst); // 2017-04-09
        let c = moved_config(&clock, policy);

        let late = r#"{"record_id":"late-1","account":"acme-shop","resource":"shop-web-1","product":"copper","meter":"vm.running","quantity":"10","unit":"hours","start":"2017-02-27T00:00:00Z","end":"2017-02-27T10:00:00Z"}"#;
        let resp = rate_batch(
            &s,
            &c,
            batch("late", Format::JsonLines, late.to_string() + "\n"),
        )
        .await
        .unwrap();
        let answered: Vec<_> = resp.late.iter().map(|l| l.policy).collect();
        assert_eq!(answered, [pricing::LateUsagePolicy::Note], "{policy}");
        let notes = rater::notes::notes_of(&s, "acme-shop", "2017-02")
            .await
            .unwrap();
        assert_eq!(notes.len(), 1, "{policy}: {resp:?}");
        let n = &notes[0];
        assert_eq!(n.number.as_deref(), Some("acme-N000001"), "{policy}");
        assert_eq!(
            (n.currency.as_str(), n.net, n.total),
            ("EUR", d("32.18"), d("38.29")),
            "{policy}"
        );
        // Priced with the account record the invoice was (Acme's customer, taxed in Germany),
        // and says so.
        let original: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
        assert_eq!(n.accounts_version.as_deref(), original["version"].as_str());
        assert!(s.late_markers("acme-shop").await.unwrap().is_empty());
        // Its documents are Acme's, as the invoice it corrects, to the customer as it was then.
        let acc = c.known_account("acme-shop").unwrap();
        let version = n.accounts_version.as_deref();
        let issued = rater::documents::as_issued(&s, &c, acc, &n.catalog_id, version)
            .await
            .unwrap();
        let xml = rater::documents::note_xml(&c, &issued, n).unwrap();
        assert!(
            xml.contains("Acme Cloud GmbH") && !xml.contains("Nimbus") && !xml.contains(">GB<"),
            "{xml}"
        );
        let invoice = rater::invoice_for(&s, &c, "acme-shop", feb).await.unwrap();
        let version = invoice.accounts_version.as_deref();
        let catalog = &invoice.bill.catalog_id;
        let issued = rater::documents::as_issued(&s, &c, acc, catalog, version)
            .await
            .unwrap();
        let xml = rater::documents::einvoice_xml(&c, &issued, &invoice).unwrap();
        assert!(
            xml.contains("Acme Cloud GmbH") && !xml.contains("Nimbus"),
            "{xml}"
        );

        // April's close: Acme's statement bills the late hours at wholesale; Nimbus's nothing.
        clock.store(1_493_900_000, Ordering::SeqCst); // 2017-05-04
        let report = rater::month::close(&s, &c, apr, Finalizing::default())
            .await
            .unwrap();
        assert!(
            report.failures.iter().all(|f| f.account != "reseller-acme"),
            "{report:?}"
        );
        let wholesale = rater::notes::notes_of(&s, "reseller-acme", "2017-02")
            .await
            .unwrap();
        let got: Vec<_> = wholesale.iter().map(|n| (n.net, n.total)).collect();
        assert_eq!(got, [(d("25.74"), d("25.74"))], "{policy}: {report:?}");
        assert!(rater::notes::notes_of(&s, "reseller-nimbus", "2017-02")
            .await
            .unwrap()
            .is_empty());
        // A re-rate of Acme's February under the moved book re-prices acme-shop's section
        // there (it used to drop it: a credit of everything Acme was billed for it).
        let again = rater::notes::correct(
            &s,
            &c,
            "reseller-acme",
            feb,
            pricing::NoteReason::CorrectedAccount,
        )
        .await
        .unwrap();
        assert!(again.is_none(), "{policy}: {again:?}");
    }
}

/// A Function URL GET by `arn` (the IAM principal the URL authenticated): its status and body.
async fn get_as(
    s: &EmbeddedStore,
    c: &RaterConfig,
    arn: &str,
    path: &str,
    query: serde_json::Value,
) -> (u16, serde_json::Value) {
    let event = serde_json::json!({
        "version": "2.0",
        "rawPath": path,
        "headers": {},
        "queryStringParameters": query,
        "requestContext": {
            "http": { "method": "GET", "path": path },
            "authorizer": { "iam": { "userArn": arn } },
        },
        "body": "",
        "isBase64Encoded": false,
    });
    let out = rater::event::handle_event(s, c, event).await.unwrap();
    let resp: rater::event::FunctionUrlResponse = serde_json::from_value(out).unwrap();
    let body = serde_json::from_str(&resp.body).unwrap_or(serde_json::Value::Null);
    (resp.status_code, body)
}

/// Tenancy follows the documents, not the book: once acme-shop moved to Nimbus, Acme still
/// reads the February invoice and note it issued (and its history, cut to its own series),
/// and not the period Nimbus bills now; Nimbus reads the open period, and none of Acme's
/// documents (its retail prices), nor a statement listing them. Before, the function asked
/// only whose customer the account is now: Nimbus read Acme's February, Acme nothing.
#[tokio::test]
async fn a_moved_customers_documents_stay_with_the_reseller_that_issued_them() {
    use serde_json::json;
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    clock.store(1_489_100_000, Ordering::SeqCst); // 2017-03-09
    let late = r#"{"record_id":"late-1","account":"acme-shop","resource":"shop-web-1","product":"copper","meter":"vm.running","quantity":"10","unit":"hours","start":"2017-02-27T00:00:00Z","end":"2017-02-27T10:00:00Z"}"#;
    let mut c = moved_config(&clock, "note");
    rate_batch(
        &s,
        &c,
        batch("late", Format::JsonLines, late.to_string() + "\n"),
    )
    .await
    .unwrap();
    let march = r#"{"record_id":"mar-1","account":"acme-shop","resource":"shop-web-1","product":"copper","meter":"vm.running","quantity":"5","unit":"hours","start":"2017-03-02T00:00:00Z","end":"2017-03-02T05:00:00Z"}"#;
    rate_batch(
        &s,
        &c,
        batch("mar", Format::JsonLines, march.to_string() + "\n"),
    )
    .await
    .unwrap();
    let acme = "arn:aws:sts::123456789012:assumed-role/acme-billing/bob";
    let nimbus = "arn:aws:sts::123456789012:assumed-role/nimbus-billing/carol";
    c.principals.resellers = vec![
        (
            "acme".into(),
            "arn:aws:sts::123456789012:assumed-role/acme-billing/*".into(),
        ),
        (
            "nimbus".into(),
            "arn:aws:sts::123456789012:assumed-role/nimbus-billing/*".into(),
        ),
    ];
    let shop = |period: &str| json!({"account": "acme-shop", "period": period});

    // February: Acme's invoice and note.
    let (status, body) = get_as(&s, &c, acme, "/", shop("2017-02")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invoices"][0]["number"], "acme-000001", "{body}");
    let (status, body) = get_as(&s, &c, acme, "/notes", shop("2017-02")).await;
    assert_eq!(
        (status, body["notes"][0]["number"].as_str()),
        (200, Some("acme-N000001"))
    );
    for path in ["/", "/notes"] {
        let (status, body) = get_as(&s, &c, nimbus, path, shop("2017-02")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    // March, open, at Nimbus's prices: Nimbus's, not Acme's.
    let (status, body) = get_as(&s, &c, nimbus, "/", shop("2017-03")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_as(&s, &c, acme, "/", shop("2017-03")).await;
    assert_eq!(status, 403);
    // History (newest first): Acme's own documents only; none for Nimbus yet.
    let who = json!({"account": "acme-shop"});
    let (status, body) = get_as(&s, &c, acme, "/history", who.clone()).await;
    let numbers: Vec<&str> = body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        (status, numbers),
        (200, vec!["acme-N000001", "acme-000001"])
    );
    let (status, body) = get_as(&s, &c, nimbus, "/history", who).await;
    assert_eq!(
        (status, body["documents"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    // A statement listing Acme's documents is not Nimbus's to read.
    let range = json!({"account": "acme-shop", "from": "2017-02", "to": "2017-03"});
    let (status, body) = get_as(&s, &c, nimbus, "/statements", range).await;
    assert_eq!(status, 403, "{body}");
    // Reports: Nimbus's of acme-shop has the month Nimbus bills only; the operator's both.
    let months = |r: &pricing::report::Report| -> Vec<String> {
        let mut m: Vec<String> = r
            .main
            .rows
            .iter()
            .map(|row| row.period.to_string())
            .collect();
        m.dedup();
        m
    };
    let q = || {
        pricing::report::ReportQuery::parse(
            "2017-02",
            "2017-03",
            "account",
            "month",
            &[("account", "acme-shop")],
        )
        .unwrap()
    };
    let as_nimbus = rater::auth::Caller {
        principal: Some(nimbus.into()),
        role: Some(rater::auth::Role::Reseller("nimbus".into())),
    };
    let r = rater::reports::report(&s, &c, &as_nimbus, q())
        .await
        .unwrap();
    assert_eq!(months(&r), ["2017-03-01"]);
    let r = rater::reports::report(&s, &c, &rater::auth::Caller::operator(), q())
        .await
        .unwrap();
    assert_eq!(months(&r), ["2017-02-01", "2017-03-01"]);
    // Margin reports: acme-shop's February is Acme's (its invoice against its statement's
    // wholesale line), not Nimbus's.
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let customers = |m: &pricing::wholesale::MarginReport| -> Vec<String> {
        m.customers.iter().map(|c| c.account.clone()).collect()
    };
    let m = rater::margin::report(&s, &c, "acme", feb).await.unwrap();
    assert!(customers(&m).contains(&"acme-shop".to_string()), "{m:?}");
    let m = rater::margin::report(&s, &c, "nimbus", feb).await.unwrap();
    assert_eq!(customers(&m), ["nimbus-studio"]);
    // A bad parameter is answered alike whether the account exists or not (400 before any
    // tenancy question, so it tells nothing).
    for account in ["acme-shop", "nimbus-studio", "no-such-account"] {
        for path in ["/", "/notes"] {
            let q = json!({"account": account, "period": "not-a-period"});
            let (status, body) = get_as(&s, &c, acme, path, q).await;
            assert_eq!(status, 400, "{account} {path}: {body}");
        }
    }
    // An account Acme never had is refused it as one that does not exist.
    for account in ["nimbus-studio", "no-such-account"] {
        let q = json!({"account": account, "period": "2017-02"});
        let (status, _) = get_as(&s, &c, acme, "/", q).await;
        assert_eq!(status, 403, "{account}");
    }
}

/// acme-shop's February is final at Acme's prices when the book moves it to Nimbus, before
/// either reseller's February statement is issued. Nimbus's statement does not bill it (its
/// invoice is Acme's: Nimbus would pay wholesale for a month Acme invoiced). Figures: Nimbus's
/// February statement bills nimbus-studio alone, as the example's February does.
#[tokio::test]
async fn a_customer_moved_after_its_final_is_not_on_its_new_resellers_statement() {
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let c = config(&clock);
    rate_batch(&s, &c, batch("feb", Format::CloudStack, EXPORT.into()))
        .await
        .unwrap();
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let shop = rater::finalize(&s, &c, "acme-shop", feb).await.unwrap();
    assert_eq!(shop.number.as_deref(), Some("acme-000001"));
    let before = rater::invoice_for(&s, &c, "reseller-nimbus", feb)
        .await
        .unwrap();

    let moved = moved_config(&clock, "note");
    let report = rater::month::close(&s, &moved, feb, Finalizing::default())
        .await
        .unwrap();
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.account != "reseller-nimbus"),
        "{report:?}"
    );
    let statement = s
        .final_statement("reseller-nimbus", "2017-02")
        .await
        .unwrap()
        .expect("Nimbus's February statement");
    let customers: Vec<&str> = statement
        .resold
        .iter()
        .map(|r| r.account.as_str())
        .collect();
    assert_eq!(customers, ["nimbus-studio"]);
    let after = rater::invoice_for(&s, &moved, "reseller-nimbus", feb)
        .await
        .unwrap();
    assert_eq!(after.bill.net, before.bill.net);
}

/// bu1user1, the provider's own customer (GBP), moves to Acme (EUR) owing the provider its
/// February invoice. Acme's first invoice of it (March) starts from zero, in euros: February's
/// balance is handed over to the provider (owed to it, `owed_elsewhere`), not brought forward
/// (it would be Acme asking for the provider's money, and pounds as euros). Before, that
/// invoice was refused (`issuer_changed`) until the provider's payment was recorded, and then
/// refused again for the pounds (`currency_changed`): the customer could not be invoiced at all.
/// The provider's payment, in pounds, names it (`payee`) and settles what was handed over.
#[tokio::test]
async fn a_moved_customers_old_balance_stays_owed_to_its_former_issuer() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let february = s
        .final_invoice("bu1user1", "2017-02")
        .await
        .unwrap()
        .unwrap();
    // What the customer owes the provider after February: its carried-forward, less the
    // prepaid credit the provider still holds for it.
    let owed = february.carried_forward - february.prepaid_remaining.unwrap_or_default();
    assert!(owed > Decimal::ZERO, "{february:?}");
    assert!(february.number.as_deref().unwrap().starts_with("prov-"));
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "bu1user1" {
            a["reseller"] = "acme".into();
            a["tax_jurisdiction"] = "de".into();
            a["country"] = "DE".into();
            a["currency"] = "EUR".into();
        }
    }
    book["version"] = "bu1-to-acme".into();
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock2 = clock.clone();
    c.clock = Arc::new(move || clock2.load(Ordering::SeqCst));

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = rater::month::close(&s, &c, mar, Finalizing::default())
        .await
        .unwrap();
    assert!(
        report.failures.iter().all(|f| f.account != "bu1user1"),
        "{report:?}"
    );
    let march = s
        .final_invoice("bu1user1", "2017-03")
        .await
        .unwrap()
        .unwrap();
    assert!(
        march.number.as_deref().unwrap().starts_with("acme-"),
        "{march:?}"
    );
    assert_eq!(march.bill.currency, "EUR");
    assert_eq!(march.brought_forward, Decimal::ZERO);
    assert_eq!(march.prepaid_available.unwrap_or_default(), Decimal::ZERO);
    let owed_to_prov = |b: rater::model::Balance| b.owed_elsewhere.into_iter().collect::<Vec<_>>();
    assert_eq!(
        owed_to_prov(s.balance("bu1user1").await.unwrap()),
        [("prov".to_string(), owed)]
    );

    // Paid to the provider, in its currency: settles it. In euros, or to an issuer that never
    // billed the account, refused naming the field.
    let pay = |currency: &str, payee: &str| rater::month::PaymentInput {
        account: "bu1user1".into(),
        date: "2017-04-20T00:00:00Z".parse().unwrap(),
        amount: owed,
        currency: currency.into(),
        reference: "prov-paid-feb".into(),
        payee: Some(payee.into()),
    };
    for (currency, payee, field) in [("EUR", "prov", "currency"), ("GBP", "nimbus", "payee")] {
        match rater::month::record_payment(&s, &c, &pay(currency, payee)).await {
            Err(rater::RaterError::BadRequest { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{currency} to {payee}: {other:?}"),
        }
    }
    rater::month::record_payment(&s, &c, &pay("GBP", "prov"))
        .await
        .unwrap();
    assert_eq!(
        owed_to_prov(s.balance("bu1user1").await.unwrap()),
        [("prov".to_string(), Decimal::ZERO)]
    );
    // Acme's April takes none of it: it brings forward March's carried-forward.
    clock.store(1_493_900_000, Ordering::SeqCst); // 2017-05-04
    let apr = BillingPeriod::parse("2017-04").unwrap();
    let report = rater::month::close(&s, &c, apr, Finalizing::default())
        .await
        .unwrap();
    assert!(
        report.failures.iter().all(|f| f.account != "bu1user1"),
        "{report:?}"
    );
    let april = s
        .final_invoice("bu1user1", "2017-04")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(april.brought_forward, march.carried_forward);
    assert!(april.payments.is_empty(), "{:?}", april.payments);
    // Its statement is in euros, Acme's two invoices: the provider's pounds (February, the
    // payment) are another chain's, not added to euros.
    let (from, to) = rater::statements::parse_range("2017-02", Some("2017-05")).unwrap();
    let st = rater::statements::statement(&s, &c, "bu1user1", from, to, None)
        .await
        .unwrap();
    let refs: Vec<&str> = st.entries.iter().map(|e| e.reference.as_str()).collect();
    assert_eq!(
        refs,
        [
            march.number.as_deref().unwrap(),
            april.number.as_deref().unwrap()
        ]
    );
    assert_eq!(
        (st.opening, st.closing),
        (Decimal::ZERO, april.carried_forward)
    );
    // It names the other currency, whose own statement is the provider's chain: February's
    // invoice with the payments it took, and the payment to the provider after the move,
    // which settled what February left (no prepaid credit held: owed is its carried-forward).
    assert_eq!(st.other_currencies, ["GBP"]);
    assert!(rater::render::statement_table(&st)
        .contains("Not on this statement: the account's documents and payments in GBP"));
    assert_eq!(
        february.prepaid_remaining.unwrap_or_default(),
        Decimal::ZERO
    );
    let gbp = rater::statements::statement(&s, &c, "bu1user1", from, to, Some("GBP"))
        .await
        .unwrap();
    assert_eq!(gbp.currency, "GBP");
    assert_eq!(gbp.other_currencies, ["EUR"]);
    let last_two: Vec<(&str, Decimal, Option<&str>)> = gbp.entries[gbp.entries.len() - 2..]
        .iter()
        .map(|e| (e.reference.as_str(), e.amount, e.owed_to.as_deref()))
        .collect();
    assert_eq!(
        last_two,
        [
            (
                february.number.as_deref().unwrap(),
                february.amount_due,
                None
            ),
            ("prov-paid-feb", -owed, Some("prov")),
        ]
    );
    assert_eq!(gbp.closing, Decimal::ZERO);
    assert!(gbp.adds_up().unwrap());
    // A currency the account has nothing in is refused, naming the parameter.
    match rater::statements::statement(&s, &c, "bu1user1", from, to, Some("JPY")).await {
        Err(rater::RaterError::BadRequest {
            field: "currency", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Its PDF is in the provider's name, whose chain it is, not Acme's.
    let acc = c.known_account("bu1user1").unwrap();
    let pdf = rater::documents::statement_pdf_of(&c, acc, &gbp).unwrap();
    let path = _dir.path().join("gbp-statement.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // (This book names the provider `prov`, an issuer its `issuers` list does not describe.)
    assert!(
        text.trim_start().starts_with("prov") && !text.contains("Acme"),
        "{text}"
    );
}

/// bu1user1 moves from the provider (pounds) to Acme (euros) in March, leaving February's
/// balance owed to the provider in pounds, and back to the provider from April, now invoiced
/// in euros. What it still owes the provider is in pounds: the provider's April invoice is not
/// issued bringing it forward as euros (409 `currency_changed`, as for any currency change with
/// an amount carried), and the customer's payment to the provider in pounds, naming it, settles
/// it even though the provider bills the account again: then April is issued in euros, from
/// zero, and Acme's March balance is handed over to Acme. Before, that payment was taken as
/// the account's own and refused for its currency: nothing but an operator's note could
/// unblock the account.
#[tokio::test]
async fn a_customer_back_with_its_former_issuer_in_another_currency_pays_it_in_the_old_one() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let february = s
        .final_invoice("bu1user1", "2017-02")
        .await
        .unwrap()
        .unwrap();
    let owed = february.carried_forward - february.prepaid_remaining.unwrap_or_default();
    assert!(owed > Decimal::ZERO, "{february:?}");
    let book = |reseller: Option<&str>, version: &str| {
        let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
        for a in book["accounts"].as_array_mut().unwrap() {
            if a["id"] == "bu1user1" {
                if let Some(r) = reseller {
                    a["reseller"] = r.into();
                    a["tax_jurisdiction"] = "de".into();
                    a["country"] = "DE".into();
                }
                a["currency"] = "EUR".into();
            }
        }
        book["version"] = version.into();
        let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
        let clock = clock.clone();
        c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
        c
    };
    let to_acme = book(Some("acme"), "bu1-to-acme");
    let back = book(None, "bu1-back-in-eur");
    assert!(
        close_account(&s, &clock, &to_acme, "bu1user1", "2017-03", 1_491_300_000)
            .await
            .is_empty()
    ); // 2017-04-04
    let march = s
        .final_invoice("bu1user1", "2017-03")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(march.bill.currency, "EUR");

    // Back with the provider, in euros: the pounds it is owed block its invoice.
    assert_eq!(
        close_account(&s, &clock, &back, "bu1user1", "2017-04", 1_493_900_000).await, // 2017-05-04
        ["currency_changed"]
    );
    let pay = |reference: &str| rater::month::PaymentInput {
        account: "bu1user1".into(),
        date: "2017-05-05T00:00:00Z".parse().unwrap(),
        amount: owed,
        currency: "GBP".into(),
        reference: reference.into(),
        payee: Some("prov".into()),
    };
    rater::month::record_payment(&s, &back, &pay("prov-gbp"))
        .await
        .unwrap();
    let owed_now = |b: rater::model::Balance| b.owed_elsewhere.into_iter().collect::<Vec<_>>();
    assert_eq!(
        owed_now(s.balance("bu1user1").await.unwrap()),
        [("prov".to_string(), Decimal::ZERO)]
    );
    // Nothing more owed in pounds: another payment in pounds is the account's own, refused
    // for its currency.
    match rater::month::record_payment(&s, &back, &pay("prov-gbp-2")).await {
        Err(rater::RaterError::BadRequest {
            field: "currency", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        close_account(&s, &clock, &back, "bu1user1", "2017-04", 1_493_900_100)
            .await
            .is_empty()
    );
    let april = s
        .final_invoice("bu1user1", "2017-04")
        .await
        .unwrap()
        .unwrap();
    assert!(april.number.as_deref().unwrap().starts_with("prov-"));
    assert_eq!(
        (april.bill.currency.as_str(), april.brought_forward),
        ("EUR", Decimal::ZERO)
    );
    assert_eq!(
        owed_now(s.balance("bu1user1").await.unwrap()),
        [
            ("acme".to_string(), march.carried_forward),
            ("prov".to_string(), Decimal::ZERO)
        ]
    );
}

/// smb-tenant (the provider's, EUR) paid February from its prepaid credit (100.00) and moves
/// to Acme in March, then back to the provider in April. The provider still held part of the
/// credit when Acme's first invoice handed the balance over: the customer owes the provider
/// its carried-forward (0.00) less that credit, so the provider owes it the credit. The account
/// statement shows the credit applied, and the provider's April invoice brings it forward as a
/// credit; every statement of the account reconciles (before, they were all refused once the
/// provider's April invoice was issued). Expected figures are the documents' own: February's
/// prepaid credit left and carried-forward, March's carried-forward.
#[tokio::test]
async fn a_former_issuers_prepaid_credit_is_applied_and_brought_back() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let feb = s
        .final_invoice("smb-tenant", "2017-02")
        .await
        .unwrap()
        .unwrap();
    let credit = feb.prepaid_remaining.unwrap_or_default();
    assert!(credit > Decimal::ZERO, "{feb:?}");
    let to_acme = book_with(
        "smb-tenant",
        &[
            ("reseller", "acme"),
            ("tax_jurisdiction", "de"),
            ("country", "DE"),
        ],
        "smb-to-acme",
        &clock,
    );
    let direct = config(&clock);
    let failures = |codes: Vec<String>| codes.is_empty();
    let close_of =
        |config, period, now| close_account(&s, &clock, config, "smb-tenant", period, now);
    assert!(failures(close_of(&to_acme, "2017-03", 1_491_300_000).await)); // 2017-04-04
    let march = s
        .final_invoice("smb-tenant", "2017-03")
        .await
        .unwrap()
        .unwrap();
    assert!(march.number.as_deref().unwrap().starts_with("acme-"));
    let owed = |b: rater::model::Balance| b.owed_elsewhere.into_iter().collect::<Vec<_>>();
    assert_eq!(
        owed(s.balance("smb-tenant").await.unwrap()),
        [("prov".to_string(), feb.carried_forward - credit)]
    );
    let statement = |to: &'static str| {
        let (s, direct) = (&s, &direct);
        async move {
            let (from, to) = rater::statements::parse_range("2017-02", Some(to)).unwrap();
            rater::statements::statement(s, direct, "smb-tenant", from, to, None)
                .await
                .unwrap()
        }
    };
    let st = statement("2017-04").await;
    let applied: Vec<_> = st
        .entries
        .iter()
        .filter(|e| e.kind == pricing::account_statement::EntryKind::PrepaidApplied)
        .map(|e| (e.reference.as_str(), e.amount, e.owed_to.as_deref()))
        .collect();
    assert_eq!(
        applied,
        [(feb.number.as_deref().unwrap(), -credit, Some("prov"))]
    );
    assert_eq!(
        st.closing,
        feb.carried_forward + march.carried_forward - credit
    );
    assert!(st.adds_up().unwrap());

    // Back with the provider: its April brings the credit it owes forward.
    assert!(failures(close_of(&direct, "2017-04", 1_493_900_000).await)); // 2017-05-04
    let april = s
        .final_invoice("smb-tenant", "2017-04")
        .await
        .unwrap()
        .unwrap();
    assert!(april.number.as_deref().unwrap().starts_with("prov-"));
    assert_eq!(april.brought_forward, feb.carried_forward - credit);
    let st = statement("2017-05").await;
    assert!(st.adds_up().unwrap());
    assert_eq!(st.closing, april.carried_forward + march.carried_forward);
    // Opening balances: on 1 May (before April's invoice, issued on the 4th), March's
    // carried-forward less the credit applied; after April's invoice, its carried-forward
    // (the credit brought back in it) and what is owed to Acme.
    let opening = |from: &'static str| {
        let (s, direct) = (&s, &direct);
        async move {
            let (from, to) = rater::statements::parse_range(from, Some("2017-05-31")).unwrap();
            rater::statements::statement(s, direct, "smb-tenant", from, to, None)
                .await
                .unwrap()
                .opening
        }
    };
    assert_eq!(opening("2017-05-01").await, march.carried_forward - credit);
    assert_eq!(
        opening("2017-05-05").await,
        april.carried_forward + march.carried_forward
    );
}

/// The codes of `account`'s failures in a close of `period` at `now` (epoch seconds).
async fn close_account(
    s: &EmbeddedStore,
    clock: &AtomicI64,
    config: &RaterConfig,
    account: &str,
    period: &str,
    now: i64,
) -> Vec<String> {
    clock.store(now, Ordering::SeqCst);
    let p = BillingPeriod::parse(period).unwrap();
    rater::month::close(s, config, p, Finalizing::default())
        .await
        .unwrap()
        .failures
        .into_iter()
        .filter(|f| f.account == account)
        .map(|f| f.code)
        .collect()
}

/// Nimbus's February statement is issued (nimbus-studio only) before the accounts book moves
/// acme-shop, not yet invoiced for February, from Acme to Nimbus; February's close then has
/// Nimbus invoice acme-shop. Nimbus's statement was final without it, and Acme's leaves out a
/// period another reseller invoiced: Nimbus's next finalize (March's close) bills it, a
/// wholesale debit note on its February statement with acme-shop's section, so the provider
/// is paid for it once, by the reseller that invoiced it.
#[tokio::test]
async fn a_customer_invoiced_after_its_resellers_statement_is_billed_on_the_next_one() {
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let c = config(&clock);
    rate_batch(&s, &c, batch("feb", Format::CloudStack, EXPORT.into()))
        .await
        .unwrap();
    let feb = BillingPeriod::parse("2017-02").unwrap();
    for account in ["nimbus-studio", "reseller-nimbus"] {
        rater::invoices::finalize(&s, &c, account, feb)
            .await
            .unwrap();
    }
    let moved = book_with(
        "acme-shop",
        &[
            ("reseller", "nimbus"),
            ("country", "GB"),
            ("tax_jurisdiction", "gb"),
        ],
        "shop-to-nimbus",
        &clock,
    );
    assert!(
        close_account(&s, &clock, &moved, "acme-shop", "2017-02", 1_488_600_100)
            .await
            .is_empty()
    );
    let shop = s
        .final_invoice("acme-shop", "2017-02")
        .await
        .unwrap()
        .unwrap();
    assert!(shop.number.as_deref().unwrap().starts_with("nimbus-"));
    let resold = |account: &'static str| {
        let s = &s;
        async move {
            s.final_statement(account, "2017-02")
                .await
                .unwrap()
                .map(|st| st.resold.into_iter().map(|r| r.account).collect::<Vec<_>>())
        }
    };
    assert_eq!(
        resold("reseller-nimbus").await,
        Some(vec!["nimbus-studio".into()])
    );
    assert_eq!(resold("reseller-acme").await, None);

    // March's close: Nimbus's next statement settles February's, with acme-shop in it.
    assert!(close_account(
        &s,
        &clock,
        &moved,
        "reseller-nimbus",
        "2017-03",
        1_491_300_000
    )
    .await
    .is_empty());
    let notes = rater::notes::notes_of(&s, "reseller-nimbus", "2017-02")
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, pricing::NoteKind::Debit);
    // acme-shop at wholesale: Acme's statement bills it EUR 2,443.41 (by hand, see
    // `tests/documents.rs`), lines converted at 1.17 EUR per GBP and rounded per line, so in
    // pounds within a few pence of 2,443.41 / 1.17; then UK VAT 20 % on the net.
    let note = &notes[0];
    let sections: Vec<&str> = note.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        sections,
        ["Resold to Shop of Acme's customer (shop.acme.example) (acme-shop)"]
    );
    assert!(
        (note.net * d("1.17") - d("2443.41")).abs() <= d("0.05"),
        "{note:?}"
    );
    assert_eq!(note.total, note.net + (note.net * d("0.20")).round_dp(2));
}

/// smb-tenant (the provider's, EUR, February paid from its prepaid credit) moves to Nimbus,
/// which bills in pounds. Its statement in euros (the provider's chain) shows the credit the
/// provider still held applied when Nimbus's first invoice handed the balance over, so its
/// closing balance is what the store says the account owes the provider (negative: the
/// provider owes the customer the credit). Before, it showed February's carried-forward, the
/// credit ignored.
#[tokio::test]
async fn a_former_issuers_prepaid_credit_is_applied_on_its_own_currencys_statement() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_dir, s) = february_closed(&clock).await;
    let feb = s
        .final_invoice("smb-tenant", "2017-02")
        .await
        .unwrap()
        .unwrap();
    let credit = feb.prepaid_remaining.unwrap_or_default();
    assert!(credit > Decimal::ZERO, "{feb:?}");
    let moved = book_with(
        "smb-tenant",
        &[
            ("reseller", "nimbus"),
            ("tax_jurisdiction", "gb"),
            ("country", "GB"),
            ("currency", "GBP"),
        ],
        "smb-to-nimbus",
        &clock,
    );
    let failures = close_account(&s, &clock, &moved, "smb-tenant", "2017-03", 1_491_300_000).await;
    assert!(failures.is_empty(), "{failures:?}"); // 2017-04-04
    let march = s
        .final_invoice("smb-tenant", "2017-03")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(march.bill.currency, "GBP");
    let owed = s.balance("smb-tenant").await.unwrap().owed_elsewhere;
    assert_eq!(owed.get("prov"), Some(&(feb.carried_forward - credit)));
    let (from, to) = rater::statements::parse_range("2017-02", Some("2017-04")).unwrap();
    let eur = rater::statements::statement(&s, &moved, "smb-tenant", from, to, Some("eur"))
        .await
        .unwrap();
    let applied: Vec<_> = eur
        .entries
        .iter()
        .filter(|e| e.kind == pricing::account_statement::EntryKind::PrepaidApplied)
        .map(|e| (e.reference.as_str(), e.amount, e.owed_to.as_deref()))
        .collect();
    assert_eq!(
        applied,
        [(feb.number.as_deref().unwrap(), -credit, Some("prov"))]
    );
    assert_eq!(eur.closing, feb.carried_forward - credit);
    assert!(eur.adds_up().unwrap());
    // A range from 5 April (after the hand-over on the 4th) opens at the same amount.
    let (from, to) = rater::statements::parse_range("2017-04-05", Some("2017-04-30")).unwrap();
    let later = rater::statements::statement(&s, &moved, "smb-tenant", from, to, Some("EUR"))
        .await
        .unwrap();
    assert_eq!(later.opening, feb.carried_forward - credit);
}
