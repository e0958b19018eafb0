//! Usage and cost reports from the store, on the example exports: every grouping and granularity against totals summed independently from the invoices' own lines, resellers' wholesale and margin, tenancy by role, and the XLSX workbook read back equal to the CSV.

use std::collections::BTreeMap;

use calamine::{Data, Reader, Xlsx};
use pricing::report::{Dimension, Report, ReportQuery};
use pricing::{BillingPeriod, Invoice};
use rater::auth::{Caller, Role};
use rater::{invoice_for, rate_batch, BatchRequest, EmbeddedStore, RaterConfig, RaterError};
use rust_decimal::Decimal;

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

/// The CloudStack example month (direct customers, and Acme's and Nimbus's customers) rated
/// into an embedded store.
async fn cloudstack_month() -> (tempfile::TempDir, EmbeddedStore, RaterConfig) {
    let config = RaterConfig::from_json(
        &read("examples/catalogs/cloudstack.json"),
        &read("examples/accounts/cloudstack.json"),
        "examples",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    for export in ["cloudstack-2017-02.json", "resellers-2017-02.json"] {
        let req = BatchRequest {
            batch_id: None,
            format: None,
            period: Some(feb()),
            account: None,
            mode: rater::Mode::Interim,
            export: read(&format!("examples/exports/{export}")).into_bytes(),
        };
        rate_batch(&store, &config, req)
            .await
            .unwrap_or_else(|e| panic!("{export}: {e}"));
    }
    (dir, store, config)
}

async fn report(store: &EmbeddedStore, config: &RaterConfig, q: ReportQuery) -> Report {
    rater::reports::report(store, config, &Caller::operator(), q)
        .await
        .unwrap()
}

fn query(group_by: &str, by: &str) -> ReportQuery {
    ReportQuery::parse("2017-02", "2017-02", group_by, by, &[]).unwrap()
}

async fn invoices(store: &EmbeddedStore, config: &RaterConfig) -> Vec<Invoice> {
    let mut out = Vec::new();
    for a in &config.accounts.accounts {
        out.push(invoice_for(store, config, &a.id, feb()).await.unwrap());
    }
    out
}

/// Sums of `f(line) -> key` over every line of every invoice: (currency, key) -> line nets.
fn by_line(
    invoices: &[Invoice],
    f: impl Fn(&pricing::Line) -> String,
) -> BTreeMap<(String, String), Decimal> {
    let mut out: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for inv in invoices {
        for l in inv.bill.lines() {
            *out.entry((inv.bill.currency.clone(), f(l))).or_default() += l.amount + l.adjustments;
        }
    }
    out.retain(|_, v| !v.is_zero());
    out
}

/// What a line is grouped by, computed from the line itself.
type LineKey = dyn Fn(&pricing::Line) -> String;

fn rows_by_key(r: &Report) -> BTreeMap<(String, String), Decimal> {
    let mut out: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for row in &r.main.rows {
        *out.entry((row.currency.clone(), row.keys.join("/")))
            .or_default() += row.amount;
    }
    out.retain(|_, v| !v.is_zero());
    out
}

#[tokio::test]
async fn every_grouping_of_the_example_month_adds_up_to_the_invoices() {
    let (_dir, store, config) = cloudstack_month().await;
    let invs = invoices(&store, &config).await;
    let mut nets: BTreeMap<String, Decimal> = BTreeMap::new();
    for inv in &invs {
        *nets.entry(inv.bill.currency.clone()).or_default() += inv.bill.net;
    }
    // Every dimension, every granularity: the totals are the invoices' nets, per currency.
    for d in Dimension::ALL {
        for by in ["day", "week", "month"] {
            let r = report(&store, &config, query(&d.name(), by)).await;
            let totals: BTreeMap<String, Decimal> = r
                .main
                .totals
                .iter()
                .map(|t| (t.currency.clone(), t.amount))
                .collect();
            assert_eq!(totals, nets, "{} by {by}", d.name());
            let sum: Decimal = r.main.rows.iter().map(|row| row.amount).sum();
            assert_eq!(
                sum,
                nets.values().copied().sum::<Decimal>(),
                "{} by {by}",
                d.name()
            );
        }
    }
    // Account: each row is its invoice's net.
    let r = report(&store, &config, query("account", "month")).await;
    for inv in &invs {
        let row = r
            .main
            .rows
            .iter()
            .find(|row| row.keys == [inv.account.clone()]);
        match row {
            Some(row) => assert_eq!(row.amount, inv.bill.net, "{}", inv.account),
            None => assert!(inv.bill.net.is_zero(), "{} has no row", inv.account),
        }
    }
    // Product, meter, category and region: the invoices' lines summed by the same key.
    let cases: [(&str, &LineKey); 4] = [
        ("product", &|l| l.product.clone()),
        ("meter", &|l| l.meter.clone().unwrap_or_default()),
        ("category", &|l| {
            serde_json::to_value(l.category)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        }),
        ("region", &|l| l.region.clone()),
    ];
    for (g, key) in cases {
        let r = report(&store, &config, query(g, "month")).await;
        assert_eq!(rows_by_key(&r), by_line(&invs, key), "{g}");
    }
    // By day, the 2017-02 example bills bu1user1's VM `web-1` (seed 000: 24 h of copper on the
    // 14th at 4.40 = 105.60 GBP, its only day).
    let q = ReportQuery::parse(
        "2017-02-01",
        "2017-02-28",
        "resource,product",
        "day",
        &[("account", "bu1user1"), ("product", "copper")],
    )
    .unwrap();
    let r = report(&store, &config, q).await;
    let amounts: Decimal = r.main.rows.iter().map(|row| row.amount).sum();
    let line: Decimal = invs
        .iter()
        .filter(|i| i.account == "bu1user1")
        .flat_map(|i| i.bill.lines())
        .filter(|l| l.product == "copper")
        .map(|l| l.amount + l.adjustments)
        .sum();
    assert_eq!(amounts, line);
    assert!(r.main.rows.iter().all(|row| row.quantity.is_some()));
}

/// The example export tags every record of bu1user1's silver VMs (running and allocated time)
/// `env:prod` and nothing else: by `tag:env`, its `prod` row is the invoice's silver lines,
/// the untagged row the rest of its net; a filter on the tag keeps the silver VMs alone.
#[tokio::test]
async fn the_example_month_by_tag_is_the_tagged_resources_lines() {
    let (_dir, store, config) = cloudstack_month().await;
    let inv = invoice_for(&store, &config, "bu1user1", feb())
        .await
        .unwrap();
    let silver = config
        .catalog
        .products
        .iter()
        .find(|p| {
            p.aliases
                .iter()
                .any(|a| a == "5f0e1a2b-0002-4c1d-9e00-0000000s1lvr")
        })
        .unwrap()
        .id
        .clone();
    let prod: Decimal = inv
        .bill
        .lines()
        .filter(|l| l.product == silver)
        .map(|l| l.amount + l.adjustments)
        .sum();
    assert!(prod > Decimal::ZERO);
    let q = ReportQuery::parse(
        "2017-02",
        "2017-02",
        "tag:env",
        "month",
        &[("account", "bu1user1")],
    )
    .unwrap();
    let r = report(&store, &config, q).await;
    let got: Vec<(Vec<String>, Decimal)> = r
        .main
        .rows
        .iter()
        .map(|row| (row.keys.clone(), row.amount))
        .collect();
    assert_eq!(
        got,
        vec![
            (vec![String::new()], inv.bill.net - prod),
            (vec!["prod".to_string()], prod),
        ]
    );
    // Filtered on the tag, by resource: the silver VMs (four, named silver-1 to silver-4 in
    // the export), nothing untagged.
    let q = ReportQuery::parse(
        "2017-02",
        "2017-02",
        "product",
        "month",
        &[("account", "bu1user1"), ("tag:env", "prod")],
    )
    .unwrap();
    let r = report(&store, &config, q).await;
    assert_eq!(r.main.rows.len(), 1);
    assert_eq!(r.main.rows[0].keys, vec![silver]);
    assert_eq!(r.main.rows[0].amount, prod);
}

#[tokio::test]
async fn resellers_customers_carry_their_wholesale_cost_and_margin() {
    let (_dir, store, config) = cloudstack_month().await;
    let r = report(&store, &config, query("account", "month")).await;
    let acme = r
        .main
        .rows
        .iter()
        .find(|row| row.keys == ["acme-shop"])
        .unwrap();
    // The margin report's figures (tests/tests/resellers.rs, by hand): 2,975.00 retail,
    // 2,443.41 wholesale, 531.59 margin.
    assert_eq!(acme.amount, "2975.00".parse().unwrap());
    assert_eq!(acme.wholesale, Some("2443.41".parse().unwrap()));
    assert_eq!(acme.margin, Some("531.59".parse().unwrap()));
    // A direct customer has neither.
    let bu1 = r
        .main
        .rows
        .iter()
        .find(|row| row.keys == ["bu1user1"])
        .unwrap();
    assert_eq!((bu1.wholesale, bu1.margin), (None, None));
    // Spread by product, the wholesale cost still adds up to the customer's.
    let q = ReportQuery::parse(
        "2017-02",
        "2017-02",
        "product",
        "day",
        &[("account", "acme-shop")],
    )
    .unwrap();
    let r = report(&store, &config, q).await;
    let w: Decimal = r.main.rows.iter().filter_map(|row| row.wholesale).sum();
    assert_eq!(w, "2443.41".parse::<Decimal>().unwrap());
    assert_eq!(r.main.totals[0].margin, Some("531.59".parse().unwrap()));
}

#[tokio::test]
async fn a_caller_reports_only_the_accounts_it_may_read() {
    let (_dir, store, config) = cloudstack_month().await;
    let acme = Caller {
        principal: Some("arn:aws:sts::123456789012:assumed-role/acme-billing/bob".into()),
        role: Some(Role::Reseller("acme".into())),
    };
    let r = rater::reports::report(&store, &config, &acme, query("account", "month"))
        .await
        .unwrap();
    let accounts: Vec<&str> = r.main.rows.iter().map(|row| row.keys[0].as_str()).collect();
    // Its customers; its own account (what the provider bills it, already its customers'
    // wholesale cost) only when named, so revenue and cost never add up in one total.
    assert_eq!(accounts, ["acme-shop"]);
    let q = ReportQuery::parse(
        "2017-02",
        "2017-02",
        "account",
        "month",
        &[("account", "reseller-acme")],
    )
    .unwrap();
    let own = rater::reports::report(&store, &config, &acme, q)
        .await
        .unwrap();
    assert_eq!(
        own.main.totals[0].amount,
        "2443.41".parse::<Decimal>().unwrap()
    );
    // Naming another tenant's account, or one that does not exist, is refused alike.
    for other in ["bu1user1", "nimbus-studio", "no-such-account"] {
        let q =
            ReportQuery::parse("2017-02", "2017-02", "", "month", &[("account", other)]).unwrap();
        let e = rater::reports::report(&store, &config, &acme, q)
            .await
            .unwrap_err();
        assert!(matches!(e, RaterError::Forbidden { .. }), "{other}: {e}");
    }
    let uploader = Caller {
        principal: Some("arn:aws:sts::123456789012:assumed-role/exporter/nightly".into()),
        role: Some(Role::Uploader),
    };
    let e = rater::reports::report(&store, &config, &uploader, query("", "month"))
        .await
        .unwrap_err();
    assert!(matches!(e, RaterError::Forbidden { .. }), "{e}");
}

fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        // Amounts and quantities: the shortest text that reads back as the double, which is
        // the exact decimal for every figure the workbook holds as a number.
        Data::Float(f) => {
            let d: Decimal = f.to_string().parse().unwrap();
            d.normalize().to_string()
        }
        Data::Int(i) => i.to_string(),
        Data::DateTime(d) => {
            let days = d.as_f64() as i64;
            (chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap()
                + chrono::Days::new(days as u64))
            .to_string()
        }
        other => panic!("unexpected cell {other:?}"),
    }
}

#[tokio::test]
async fn the_workbook_reads_back_as_the_csv() {
    let (_dir, store, config) = cloudstack_month().await;
    let r = report(&store, &config, query("account,product", "week")).await;
    let bytes = rater::xlsx::report_xlsx(&r).unwrap();
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        wb.sheet_names(),
        ["Report", "By account", "By product"].map(str::to_string)
    );
    let range = wb.worksheet_range("Report").unwrap();
    let mut sheet: Vec<Vec<String>> = range
        .rows()
        .map(|row| row.iter().map(cell_text).collect())
        .collect();
    // The CSV has the exact decimals (amounts at 2 places: normalized to compare with the
    // doubles' shortest text) and a `row` column the sheet does not.
    let csv = rater::render::report_csv(&r);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let mut expected: Vec<Vec<String>> = vec![vec![
        "Period",
        "Currency",
        "account",
        "product",
        "Unit",
        "Quantity",
        "Amount",
        "Wholesale",
        "Margin",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()];
    for rec in reader.records() {
        let rec = rec.unwrap();
        let mut cells: Vec<String> = rec.iter().skip(1).map(str::to_string).collect();
        if &rec[0] == "total" {
            cells[0] = "Total".into();
        }
        for c in cells.iter_mut().skip(5) {
            if let Ok(d) = c.parse::<Decimal>() {
                *c = d.normalize().to_string();
            }
        }
        expected.push(cells);
    }
    for row in &mut sheet {
        row.resize(expected[0].len(), String::new());
    }
    assert_eq!(sheet, expected);
    assert!(r.main.rows.len() > 10, "{}", r.main.rows.len());
    // The sheets by one dimension total the same.
    for name in ["By account", "By product"] {
        let range = wb.worksheet_range(name).unwrap();
        let last = range.rows().next_back().unwrap();
        assert_eq!(cell_text(&last[0]), "Total");
    }
}

#[tokio::test]
async fn an_hourly_account_over_a_month_is_too_many_periods() {
    let mut accounts: serde_json::Value =
        serde_json::from_str(&read("examples/accounts/cloudstack.json")).unwrap();
    accounts["accounts"][0]["billing_period"] = "hour".into();
    let config = RaterConfig::from_json(
        &read("examples/catalogs/cloudstack.json"),
        &accounts.to_string(),
        "examples",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let e = rater::reports::report(&store, &config, &Caller::operator(), query("", "day"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RaterError::BadRequest { field: "to", message } if message.contains("billed by the hour")),
        "{e}"
    );
}
