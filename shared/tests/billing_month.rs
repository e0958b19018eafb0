//! Golden cases of the billing month (issue 14): statements (brought forward, payments, prepaid
//! credit consumed across periods, issue and due dates), interim invoices to date, credit and
//! debit notes, several notes on one invoice, adjustments of a closed period on the next
//! invoice, and the late-usage policy setting. Every expected amount is computed by hand in the
//! comments beside it.

mod common;

use chrono::NaiveDate;
use common::*;
use pricing::catalog::{Discount, DiscountScope, DiscountValue};
use pricing::error::{CorrectionRule, StatementRule};
use pricing::invoice::{Payment, Subscription};
use pricing::note::{standing, Standing};
use pricing::{
    invoice, invoice_with, note, Account, BillingPeriod, Catalog, Invoice, InvoiceKind,
    LateUsagePolicy, Note, NoteKind, NoteReason, PriceModel, PricingError, Statement, Unit, Usage,
    UsageRecord,
};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn month(m: u32) -> BillingPeriod {
    BillingPeriod::month(2017, m).unwrap()
}

fn rated(c: &Catalog, period: BillingPeriod, records: &[UsageRecord]) -> Usage {
    pricing::rate(c, period, records).unwrap_or_else(|e| panic!("{e}"))
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn payment(at: &str, amount: &str, reference: &str) -> Payment {
    Payment {
        date: t(at),
        amount: d(amount),
        reference: reference.into(),
    }
}

/// `inv` as the rater finalizes it: numbered, final.
fn finalized(mut inv: Invoice, number: &str) -> Invoice {
    inv.kind = InvoiceKind::Final;
    inv.number = Some(number.into());
    inv
}

/// The example catalog with copper's running hour at GBP 2.00 instead of 2.20 (a corrected
/// version).
fn cheaper_copper() -> Catalog {
    let mut c = cloudstack();
    c.version = "2017-02.2".into();
    let copper = c.products.iter_mut().find(|p| p.id == "copper").unwrap();
    let running = copper
        .charges
        .iter_mut()
        .find(|ch| ch.meter == "vm.running")
        .unwrap();
    running.price.model = PriceModel::PerUnit {
        unit_price: d("2.0000"),
    };
    c
}

fn copper_hours(account: &str, hours: &str, at: &str) -> UsageRecord {
    rec(
        account,
        "vm-1",
        "copper",
        "vm.running",
        hours,
        Unit::Hours,
        at,
    )
}

/// (section, description, quantity change, amount change) of every note line.
fn note_lines(n: &Note) -> Vec<(String, String, String, String)> {
    n.sections
        .iter()
        .flat_map(|s| {
            s.lines.iter().map(move |l| {
                (
                    s.name.clone(),
                    l.description.clone(),
                    l.quantity.normalize().to_string(),
                    l.amount.to_string(),
                )
            })
        })
        .collect()
}

fn row(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into())
}

#[test]
fn statement_brought_forward_payments_and_prepaid_credit_across_two_periods() {
    let c = cloudstack();
    let acc = bare_account("x");
    // January: 10 h of copper at GBP 2.20 = 22.00; 30.00 prepaid, 50.00 owed, 40.00 paid.
    let jan = rated(
        &c,
        month(1),
        &[copper_hours("x", "10", "2017-01-05T00:00:00Z")],
    );
    let statement = Statement {
        brought_forward: d("50.00"),
        prepaid_available: d("30.00"),
        payments: vec![payment("2017-01-10T00:00:00Z", "40.00", "wire 1")],
        issue_date: Some(date("2017-02-01")),
        ..Statement::default()
    };
    let first = invoice_with(&c, &acc, month(1), &jan, &statement).unwrap();
    first.check_totals().unwrap();
    assert_eq!(first.bill.total.to_string(), "22.00");
    assert_eq!(first.credits_applied.to_string(), "22.00");
    assert_eq!(first.amount_due.to_string(), "0.00");
    // 30.00 available, 22.00 used: 8.00 left for February.
    assert_eq!(first.prepaid_available, Some(d("30.00")));
    assert_eq!(first.prepaid_remaining.unwrap().to_string(), "8.00");
    // 50.00 - 40.00 + 0.00
    assert_eq!(first.carried_forward.to_string(), "10.00");
    // Issued Feb 1 on the default 30-day terms: due March 3 (February 2017 has 28 days).
    assert_eq!(first.issue_date, Some(date("2017-02-01")));
    assert_eq!(first.due_date, Some(date("2017-03-03")));

    // February: 20 h = 44.00; the statement carries what January left, never the 30.00 again.
    let feb = rated(
        &c,
        month(2),
        &[copper_hours("x", "20", "2017-02-05T00:00:00Z")],
    );
    let statement = Statement {
        brought_forward: first.carried_forward,
        prepaid_available: first.prepaid_remaining.unwrap(),
        payments: vec![payment("2017-02-15T00:00:00Z", "10.00", "wire 2")],
        issue_date: Some(date("2017-03-01")),
        ..Statement::default()
    };
    let second = invoice_with(&c, &acc, month(2), &feb, &statement).unwrap();
    second.check_totals().unwrap();
    assert_eq!(second.bill.total.to_string(), "44.00");
    assert_eq!(second.credits_applied.to_string(), "8.00");
    assert_eq!(second.amount_due.to_string(), "36.00");
    assert_eq!(second.prepaid_remaining.unwrap().to_string(), "0.00");
    // 10.00 - 10.00 + 36.00
    assert_eq!(second.carried_forward.to_string(), "36.00");
    assert_eq!(second.due_date, Some(date("2017-03-31")));
    // The prepaid remaining is a row of its own after the balance statement.
    let last = *second.summary_rows().last().unwrap();
    assert_eq!(last, pricing::SummaryRow::PrepaidRemaining(d("0.00")));

    // The same invoice on 14-day terms is due March 15.
    let mut short = acc.clone();
    short.payment_terms_days = 14;
    let inv = invoice_with(&c, &short, month(2), &feb, &statement).unwrap();
    assert_eq!(inv.due_date, Some(date("2017-03-15")));
}

#[test]
fn a_statement_refuses_payments_and_instants_outside_the_period() {
    let c = cloudstack();
    let acc = bare_account("x");
    let usage = Usage::default();
    let cases = [
        (
            Statement {
                payments: vec![payment("2017-03-01T00:00:00Z", "1.00", "late")],
                ..Statement::default()
            },
            "payment of 2017-03-01 00:00:00 UTC (late) is outside the period 2017-02",
        ),
        (
            Statement {
                as_of: Some(t("2017-03-01T00:00:01Z")),
                ..Statement::default()
            },
            "as_of 2017-03-01 00:00:01 UTC is outside the period 2017-02",
        ),
    ];
    for (statement, message) in cases {
        let err = invoice_with(&c, &acc, month(2), &usage, &statement).unwrap_err();
        assert!(matches!(err, PricingError::Statement { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("statement of account x: {message}")
        );
    }
}

#[test]
fn the_book_statement_gives_exactly_the_invoice_of_today() {
    let c = cloudstack();
    let acc = account(CLOUDSTACK_ACCOUNTS, "smb-tenant");
    let usage = rated(
        &c,
        month(2),
        &[rec(
            "smb-tenant",
            "web-1",
            "copper",
            "vm.running",
            "50",
            Unit::Hours,
            "2017-02-20T00:00:00Z",
        )],
    );
    let today = invoice(&c, &acc, month(2), &usage).unwrap();
    let by_hand = Statement {
        brought_forward: acc.balance_brought_forward,
        prepaid_available: acc.prepaid_credit,
        payments: Vec::new(),
        ..Statement::default()
    };
    assert_eq!(
        invoice_with(&c, &acc, month(2), &usage, &by_hand).unwrap(),
        today
    );
    // And none of the statement's fields shows in today's JSON.
    let json = serde_json::to_string(&today).unwrap();
    for field in ["issue_date", "due_date", "as_of", "prepaid_"] {
        assert!(!json.contains(field), "{field} in {json}");
    }
}

/// An account with the DDoS service (GBP 500.00 a month) since 2016 and GBP 28.00 a month off.
fn ddos_account() -> Account {
    let mut acc = bare_account("x");
    acc.subscriptions = vec![Subscription {
        id: "ddos".into(),
        product: "ddos".into(),
        quantity: d("1"),
        project: None,
        start: t("2016-01-01T00:00:00Z"),
        end: None,
        changes: vec![],
    }];
    acc.discounts = vec![Discount {
        id: "loyal".into(),
        name: "loyal".into(),
        scope: DiscountScope::All,
        value: DiscountValue::Fixed { amount: d("28") },
        valid_from: None,
        valid_to: None,
    }];
    acc
}

#[test]
fn an_interim_invoice_to_date_prorates_subscriptions_to_the_days_begun() {
    let c = cloudstack();
    let acc = ddos_account();
    // (period, as_of, days charged, fee, fixed discount)
    let cases = [
        // Halfway through February: 14 of 28 days, 500.00 x 14/28 = 250.00, 28.00 x 14/28 off.
        (2, "2017-02-15T00:00:00Z", "14", "250.00", "-14.00"),
        // Noon on the 14th: the 14th has begun and counts whole, as a first day does.
        (2, "2017-02-14T12:00:00Z", "14", "250.00", "-14.00"),
        // One second into the 15th: 15 days, 500.00 x 15/28 = 267.857... -> 267.86, and
        // 28.00 x 15/28 = 15.00 off.
        (2, "2017-02-15T00:00:01Z", "15", "267.86", "-15.00"),
        // Halfway through January (31 days, noon on the 16th): 16 days, 500.00 x 16/31 =
        // 258.0645... -> 258.06; 28.00 x 16/31 = 14.4516... -> 14.45 off.
        (1, "2017-01-16T12:00:00Z", "16", "258.06", "-14.45"),
        // The end of the period is the whole month.
        (2, "2017-03-01T00:00:00Z", "28", "500.00", "-28.00"),
        // The start of it is nothing yet (a fixed discount never exceeds the charges).
        (2, "2017-02-01T00:00:00Z", "", "", ""),
    ];
    for (m, as_of, days, fee, discount) in cases {
        let statement = Statement {
            as_of: Some(t(as_of)),
            ..Statement::default()
        };
        let inv = invoice_with(&c, &acc, month(m), &Usage::default(), &statement).unwrap();
        inv.check_totals().unwrap();
        assert_eq!(inv.as_of, Some(t(as_of)));
        assert_eq!(inv.kind, InvoiceKind::Interim);
        let line = inv.bill.lines().next();
        assert_eq!(
            line.map(|l| l.days.unwrap().to_string())
                .unwrap_or_default(),
            days,
            "{as_of}"
        );
        assert_eq!(
            line.map(|l| l.amount.to_string()).unwrap_or_default(),
            fee,
            "{as_of}"
        );
        let off = inv.bill.discounts.first().map(|a| a.amount.to_string());
        assert_eq!(off.unwrap_or_default(), discount, "{as_of}");
    }
}

/// The seed 000 invoice, finalized as invoice 1575.
fn seed_final() -> (Catalog, Account, Invoice) {
    let c = cloudstack();
    let acc = account(CLOUDSTACK_ACCOUNTS, "bu1user1");
    let inv = invoice(
        &c,
        &acc,
        month(2),
        &rated(&c, month(2), &seed_000_records()),
    )
    .unwrap();
    (c, acc, finalized(inv, "1575"))
}

/// Late usage of February: 10 more hours of copper and 3.5 M disk writes.
fn late_records() -> Vec<UsageRecord> {
    vec![
        copper_hours("bu1user1", "10", "2017-02-27T00:00:00Z"),
        rec(
            "bu1user1",
            "vm-1",
            "disk-io",
            "disk.write.requests",
            "3500000",
            Unit::Requests,
            "2017-02-27T00:00:00Z",
        ),
    ]
}

fn with_late() -> Vec<UsageRecord> {
    let mut all = seed_000_records();
    all.extend(late_records());
    all
}

#[test]
fn a_corrected_cheaper_catalog_issues_a_credit_note() {
    let (_, acc, fin) = seed_final();
    let c2 = cheaper_copper();
    let corrected = invoice(
        &c2,
        &acc,
        month(2),
        &rated(&c2, month(2), &seed_000_records()),
    )
    .unwrap();
    let n = note(
        &fin,
        &[],
        &corrected,
        NoteReason::CorrectedCatalog,
        date("2017-03-05"),
    )
    .unwrap()
    .expect("the price changed");
    n.check_totals().unwrap();
    assert_eq!(n.kind, NoteKind::Credit);
    assert_eq!(n.corrects, "1575");
    assert_eq!(n.number, None);
    assert_eq!(n.catalog_version, "2017-02.2");
    // 1,343.5955 h x 2.00 = 2,687.191 -> 2,687.19, was x 2.20 = 2,955.9101 -> 2,955.91.
    assert_eq!(
        note_lines(&n),
        vec![row(
            "Running VM",
            "Copper - 1CPU @ 2.4GHz - 512MB RAM",
            "0",
            "-268.72"
        )]
    );
    assert_eq!(n.net.to_string(), "-268.72");
    // VAT is per invoice: 20 % of 14,393.20 = 2,878.64, was 20 % of 14,661.92 = 2,932.384 ->
    // 2,932.38: the change is -53.74 (not 20 % of -268.72 = -53.744).
    assert_eq!(n.taxes.len(), 1);
    assert_eq!(n.taxes[0].base.to_string(), "-268.72");
    assert_eq!(n.taxes[0].amount.to_string(), "-53.74");
    assert_eq!(n.total.to_string(), "-322.46");
    // The invoice plus its note is the corrected invoice: 17,594.30 - 322.46 = 17,271.84.
    let now = standing(&fin, std::slice::from_ref(&n)).unwrap();
    assert_eq!(now.total, corrected.bill.total);
    assert_eq!(corrected.bill.total.to_string(), "17271.84");
}

#[test]
fn late_usage_issues_a_debit_note_then_a_re_rate_only_the_new_difference() {
    let (c, acc, fin) = seed_final();
    let corrected = invoice(&c, &acc, month(2), &rated(&c, month(2), &with_late())).unwrap();
    let first = note(
        &fin,
        &[],
        &corrected,
        NoteReason::LateUsage,
        date("2017-03-02"),
    )
    .unwrap()
    .expect("late usage");
    first.check_totals().unwrap();
    assert_eq!(first.kind, NoteKind::Debit);
    // Copper: 1,353.5955 h x 2.20 = 2,977.91, was 2,955.91; writes: 3.5 M x 0.05 per M = 0.175
    // -> 0.18, a new line.
    assert_eq!(
        note_lines(&first),
        vec![
            row(
                "Running VM",
                "Copper - 1CPU @ 2.4GHz - 512MB RAM",
                "10",
                "22.00"
            ),
            row(
                "Disk I/O",
                "VM disk I/O - Disk write requests",
                "3500000",
                "0.18"
            ),
        ]
    );
    assert_eq!(first.net.to_string(), "22.18");
    // 20 % of 14,684.10 = 2,936.82, was 2,932.38: +4.44 (20 % of 22.18 would be 4.436).
    assert_eq!(first.taxes[0].amount.to_string(), "4.44");
    assert_eq!(first.total.to_string(), "26.62");
    let mut first = first;
    first.number = Some("DN-1".into());

    // Then the catalog is corrected: the period re-rated with everything it has now.
    let c2 = cheaper_copper();
    let now = invoice(&c2, &acc, month(2), &rated(&c2, month(2), &with_late())).unwrap();
    let earlier = [first];
    let second = note(
        &fin,
        &earlier,
        &now,
        NoteReason::CorrectedCatalog,
        date("2017-03-09"),
    )
    .unwrap()
    .expect("the price changed");
    second.check_totals().unwrap();
    assert_eq!(second.kind, NoteKind::Credit);
    // Only copper changes since the first note: 1,353.5955 h x 2.00 = 2,707.19, was 2,977.91.
    assert_eq!(
        note_lines(&second),
        vec![row(
            "Running VM",
            "Copper - 1CPU @ 2.4GHz - 512MB RAM",
            "0",
            "-270.72"
        )]
    );
    // 20 % of 14,413.38 = 2,882.676 -> 2,882.68, was 2,936.82: -54.14.
    assert_eq!(second.taxes[0].amount.to_string(), "-54.14");
    assert_eq!(second.total.to_string(), "-324.86");
    // The invoice and both notes stand at the invoice of the period now, and a third re-rate
    // that changes nothing issues nothing.
    let mut all = earlier.to_vec();
    all.push(second);
    let standing_now = standing(&fin, &all).unwrap();
    assert_eq!(standing_now.net, now.bill.net);
    assert_eq!(standing_now.total, now.bill.total);
    assert_eq!(
        note(
            &fin,
            &all,
            &now,
            NoteReason::CorrectedCatalog,
            date("2017-03-10")
        )
        .unwrap(),
        None
    );
}

#[test]
fn a_re_rate_that_changes_nothing_issues_nothing() {
    let (c, acc, fin) = seed_final();
    let again = invoice(
        &c,
        &acc,
        month(2),
        &rated(&c, month(2), &seed_000_records()),
    )
    .unwrap();
    let n = note(
        &fin,
        &[],
        &again,
        NoteReason::CorrectedCatalog,
        date("2017-03-05"),
    )
    .unwrap();
    assert_eq!(n, None);
    let unchanged = Standing::of(&fin.bill).unwrap();
    assert_eq!(standing(&fin, &[]).unwrap(), unchanged);
}

#[test]
fn a_note_refuses_what_it_cannot_correct() {
    let (c, acc, fin) = seed_final();
    let usage = rated(&c, month(2), &seed_000_records());
    let interim = invoice(&c, &acc, month(2), &usage).unwrap();
    let err = note(
        &interim,
        &[],
        &interim,
        NoteReason::LateUsage,
        date("2017-03-05"),
    );
    assert!(matches!(
        err,
        Err(PricingError::Correction {
            rule: CorrectionRule::NotFinal,
            ..
        })
    ));
    let mut other = interim.clone();
    other.account = "someone-else".into();
    let err = note(&fin, &[], &other, NoteReason::LateUsage, date("2017-03-05")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "note against invoice 1575: the corrected invoice is of account someone-else"
    );
    // An earlier note of another invoice is refused, naming what differs.
    let later = invoice(&c, &acc, month(2), &rated(&c, month(2), &with_late())).unwrap();
    let mut foreign = note(&fin, &[], &later, NoteReason::LateUsage, date("2017-03-05"))
        .unwrap()
        .unwrap();
    foreign.corrects = "1574".into();
    foreign.number = Some("N-9".into());
    let err = note(
        &fin,
        &[foreign],
        &later,
        NoteReason::LateUsage,
        date("2017-03-05"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "note against invoice 1575: earlier note `N-9` is of another invoice"
    );
    // A closed period is corrected by its whole invoice, not one to date.
    let to_date = Statement {
        as_of: Some(t("2017-02-20T00:00:00Z")),
        ..Statement::from_book(&acc, month(2))
    };
    let partial = invoice_with(&c, &acc, month(2), &usage, &to_date).unwrap();
    let err = note(
        &fin,
        &[],
        &partial,
        NoteReason::LateUsage,
        date("2017-03-05"),
    );
    assert!(matches!(
        err,
        Err(PricingError::Correction {
            rule: CorrectionRule::CorrectedToDate,
            ..
        })
    ));
    // A changed final invoice is refused, not corrected.
    let mut broken = fin.clone();
    broken.bill.total += d("0.01");
    let err = note(
        &broken,
        &[],
        &interim,
        NoteReason::LateUsage,
        date("2017-03-05"),
    );
    assert!(
        matches!(err, Err(PricingError::BrokenTotals { .. })),
        "{err:?}"
    );
}

/// An account taxed in the UK with Gold SLA (15 % uplift on compute) and 10 % off everything.
fn gold_account() -> Account {
    let mut acc = bare_account("x");
    acc.tax_jurisdiction = Some("gb".into());
    acc.sla_tier = Some("gold".into());
    acc.discounts = vec![Discount {
        id: "ten".into(),
        name: "10% off".into(),
        scope: DiscountScope::All,
        value: DiscountValue::Percent { pct: d("10") },
        valid_from: None,
        valid_to: None,
    }];
    acc
}

#[test]
fn late_usage_of_a_closed_period_is_billed_in_the_next_invoices_adjustments() {
    let c = cloudstack();
    let acc = gold_account();
    // February, final: copper 100 h = 220.00, uplift 15 % = 33.00, 10 % off 253.00 = -25.30
    // (spread -22.00 and -3.30), net 227.70.
    let on_time = [copper_hours("x", "100", "2017-02-10T00:00:00Z")];
    let feb = invoice(&c, &acc, month(2), &rated(&c, month(2), &on_time)).unwrap();
    let feb = finalized(feb, "F-2");
    assert_eq!(feb.bill.net.to_string(), "227.70");
    // 50 h arrive in March: February now is 330.00 + 49.50 - 37.95 (spread -33.00, -4.95).
    let mut all = on_time.to_vec();
    all.push(copper_hours("x", "50", "2017-02-27T00:00:00Z"));
    let feb_now = invoice(&c, &acc, month(2), &rated(&c, month(2), &all)).unwrap();
    let late = note(
        &feb,
        &[],
        &feb_now,
        NoteReason::LateUsage,
        date("2017-03-31"),
    )
    .unwrap()
    .unwrap();
    // Copper's net: 297.00 - 198.00 = 99.00; the uplift's: 44.55 - 29.70 = 14.85.
    assert_eq!(late.net.to_string(), "113.85");

    // March: silver 10 h = 6.00, uplift 15 % = 0.90 (on March's compute only), 10 % off 6.90
    // = -0.69 (spread -0.60, -0.09); availability 99.5 % gives Gold's 10 % credit on the
    // covered net 5.40 + 0.81 = 6.21: -0.621 -> -0.62. The adjustments (99.00 and 14.85) are
    // outside every base.
    let mut march_acc = acc.clone();
    march_acc.availability_pct = Some(d("99.5"));
    let march_usage = rated(
        &c,
        month(3),
        &[rec(
            "x",
            "vm-2",
            "silver",
            "vm.running",
            "10",
            Unit::Hours,
            "2017-03-03T00:00:00Z",
        )],
    );
    let statement = Statement {
        issue_date: Some(date("2017-04-01")),
        adjustments: vec![late],
        ..Statement::default()
    };
    let inv = invoice_with(&c, &march_acc, month(3), &march_usage, &statement).unwrap();
    inv.check_totals().unwrap();
    let adjustments = inv.bill.sections.last().unwrap();
    assert_eq!(adjustments.name, "Adjustments");
    let shown: Vec<(String, String)> = adjustments
        .lines
        .iter()
        .map(|l| (l.description.clone(), l.amount.to_string()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "Copper - 1CPU @ 2.4GHz - 512MB RAM (usage of 2017-02)".to_string(),
                "99.00".to_string()
            ),
            (
                "Gold SLA uplift (15% of covered charges) (usage of 2017-02)".to_string(),
                "14.85".to_string()
            ),
        ]
    );
    assert_eq!(adjustments.total.to_string(), "113.85");
    assert!(adjustments.lines.iter().all(|l| l.adjustments.is_zero()));
    let uplift = inv.bill.sections[1].lines[0].amount;
    assert_eq!(uplift.to_string(), "0.90");
    assert_eq!(inv.bill.discounts[0].base.to_string(), "6.90");
    assert_eq!(inv.bill.discounts[0].amount.to_string(), "-0.69");
    assert_eq!(inv.bill.sla_credits[0].base.to_string(), "6.21");
    assert_eq!(inv.bill.sla_credits[0].amount.to_string(), "-0.62");
    // 6.00 + 0.90 + 113.85 = 120.75, less 0.69 and 0.62 = 119.44; VAT 20 % = 23.888 -> 23.89,
    // taxed here once (February's invoice never billed them).
    assert_eq!(inv.bill.subtotal.to_string(), "120.75");
    assert_eq!(inv.bill.net.to_string(), "119.44");
    assert_eq!(inv.bill.taxes[0].amount.to_string(), "23.89");
    assert_eq!(inv.bill.total.to_string(), "143.33");
}

#[test]
fn adjustments_must_be_of_this_accounts_earlier_periods_in_its_currency() {
    let c = cloudstack();
    let acc = gold_account();
    let feb = finalized(
        invoice(
            &c,
            &acc,
            month(2),
            &rated(
                &c,
                month(2),
                &[copper_hours("x", "1", "2017-02-10T00:00:00Z")],
            ),
        )
        .unwrap(),
        "F-2",
    );
    let feb_now = invoice(
        &c,
        &acc,
        month(2),
        &rated(
            &c,
            month(2),
            &[copper_hours("x", "2", "2017-02-10T00:00:00Z")],
        ),
    )
    .unwrap();
    let late = note(
        &feb,
        &[],
        &feb_now,
        NoteReason::LateUsage,
        date("2017-03-01"),
    )
    .unwrap()
    .unwrap();
    let with = |n: Note| Statement {
        adjustments: vec![n],
        ..Statement::default()
    };
    let usage = Usage::default();
    // February's own invoice cannot bill February's difference.
    let err = invoice_with(&c, &acc, month(2), &usage, &with(late.clone())).unwrap_err();
    assert!(matches!(
        err,
        PricingError::Statement {
            rule: StatementRule::AdjustmentNotEarlier { .. },
            ..
        }
    ));
    let mut other = late.clone();
    other.account = "y".into();
    let err = invoice_with(&c, &acc, month(3), &usage, &with(other)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "statement of account x: adjustment of account y cannot be billed to this account"
    );
    let mut eur = acc.clone();
    eur.currency = Some("EUR".into());
    let err = invoice_with(&c, &eur, month(3), &usage, &with(late.clone())).unwrap_err();
    assert!(matches!(
        err,
        PricingError::Statement {
            rule: StatementRule::AdjustmentCurrency { .. },
            ..
        }
    ));
    let mut changed = late;
    changed.total += d("1");
    let err = invoice_with(&c, &acc, month(3), &usage, &with(changed)).unwrap_err();
    assert!(matches!(err, PricingError::BrokenTotals { .. }), "{err}");
}

#[test]
fn late_usage_policy_is_the_accounts_over_the_catalogs() {
    let mut c = cloudstack();
    let mut acc = bare_account("x");
    assert_eq!(
        pricing::late_usage_policy(&c, &acc),
        LateUsagePolicy::Refuse
    );
    // Absent when default: stored catalogs and accounts keep their bytes.
    assert!(!c.to_json().contains("late_usage"));
    assert!(!serde_json::to_string(&acc).unwrap().contains("late_usage"));
    assert!(!serde_json::to_string(&acc)
        .unwrap()
        .contains("payment_terms_days"));
    c.late_usage = LateUsagePolicy::NextPeriod;
    assert_eq!(
        pricing::late_usage_policy(&c, &acc),
        LateUsagePolicy::NextPeriod
    );
    acc.late_usage = Some(LateUsagePolicy::Note);
    assert_eq!(pricing::late_usage_policy(&c, &acc), LateUsagePolicy::Note);
    // Read back from JSON, and refused at its path when unknown.
    let back = Catalog::from_json(&c.to_json()).unwrap();
    assert_eq!(back.late_usage, LateUsagePolicy::NextPeriod);
    let bad = CLOUDSTACK.replacen("\"version\"", "\"late_usage\": \"later\", \"version\"", 1);
    let err = Catalog::from_json(&bad).unwrap_err();
    assert_eq!(err.0[0].path, "$.late_usage", "{err}");
    let acc_json = r#"{"id": "a", "name": "A", "late_usage": "note", "payment_terms_days": 45}"#;
    let a: Account = pricing::parse_json(acc_json).unwrap();
    assert_eq!(a.late_usage, Some(LateUsagePolicy::Note));
    assert_eq!(a.payment_terms_days, 45);
}

#[test]
fn payment_terms_are_bounded() {
    let c = cloudstack();
    let mut acc = bare_account("x");
    acc.payment_terms_days = 3000;
    let book = pricing::AccountBook {
        schema_version: 1,
        version: "v".into(),
        accounts: vec![acc],
        issuers: Vec::new(),
    };
    let err = book.validate(&c).unwrap_err();
    assert_eq!(err.0[0].path, "$.accounts[0].payment_terms_days");
}
