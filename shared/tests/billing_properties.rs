//! Property tests of the billing month: a final invoice plus the note against the invoice its
//! period has now equals that invoice exactly (line by line, net, each tax, total), through
//! any number of notes; notes' and invoices' totals always add up; the statement-based invoice
//! with the book's values is `invoice()`'s; adjustments of a closed period change no discount,
//! uplift or credit of the invoice that bills them.

mod common;

use chrono::{Duration, NaiveDate};
use common::*;
use pricing::catalog::{Discount, DiscountScope, DiscountValue};
use pricing::invoice::{Payment, PlanChange, Subscription};
use pricing::note::{standing, Standing};
use pricing::{
    invoice, invoice_with, note, Account, BillingPeriod, Catalog, Invoice, InvoiceKind, Note,
    NoteKind, NoteReason, PriceModel, Statement, Unit, Usage, UsageRecord,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CHARGES: &[(&str, &str, Unit)] = &[
    ("copper", "vm.running", Unit::Hours),
    ("silver", "vm.stopped", Unit::Hours),
    ("bronze", "vm.running", Unit::Minutes),
    ("large-disk", "volume.gbh", Unit::ByteHours),
    ("root-volume", "volume.gbh", Unit::GigabyteHours),
    ("network", "net.sent", Unit::Bytes),
    ("public-ip", "ip.hours", Unit::Hours),
    ("disk-io", "disk.read.requests", Unit::Requests),
    ("port-forwarding", "service.hours", Unit::Hours),
];

/// A record of February with the part of the month's story it belongs to (0: before the
/// close, 1 and 2: late batches).
fn record() -> impl Strategy<Value = (UsageRecord, u8)> {
    (
        0..CHARGES.len(),
        0u32..3,
        0u32..3,
        0i64..200_000_000,
        0u32..5,
        0i64..27 * 24,
        0u8..3,
    )
        .prop_map(|(charge, account, resource, mantissa, scale, hour, part)| {
            let (product, meter, unit) = CHARGES[charge];
            let start = t("2017-02-01T00:00:00Z") + Duration::hours(hour);
            let r = UsageRecord {
                record_id: None,
                account: format!("acct-{}", account.min(1)),
                project: Some(format!("p{}", resource % 2)),
                resource: format!("res-{resource}"),
                product: product.into(),
                meter: meter.into(),
                quantity: Decimal::new(mantissa, scale),
                unit,
                start,
                end: start + Duration::hours(1),
                tags: vec![],
                region: (resource == 2).then(|| "gva1".to_string()),
            };
            (r, part)
        })
}

fn subscription(id: &str, product: &str, start: &str) -> Subscription {
    Subscription {
        id: id.into(),
        product: product.into(),
        quantity: d("1"),
        project: None,
        start: t(start),
        end: None,
        changes: vec![],
    }
}

fn account_variant(i: u8) -> Account {
    let mut a = bare_account("acct-0");
    match i % 5 {
        0 => {}
        1 => {
            a.tax_jurisdiction = Some("ch".into());
            a.currency = Some("JPY".into());
            // Two subscriptions to one service: one line key, their figures added.
            a.subscriptions = vec![
                subscription("d1", "ddos", "2016-01-01T00:00:00Z"),
                subscription("d2", "ddos", "2017-02-10T00:00:00Z"),
            ];
        }
        2 => {
            a.tax_jurisdiction = Some("gb".into());
            a.sla_tier = Some("gold".into());
            a.availability_pct = Some(d("98.7"));
            a.currency = Some("BHD".into());
        }
        3 => {
            a.term = Some("1y".into());
            a.discounts = vec![
                Discount {
                    id: "r".into(),
                    name: "r".into(),
                    scope: DiscountScope::Resource("res-1".into()),
                    value: DiscountValue::Percent { pct: d("33.3") },
                    valid_from: Some(t("2017-02-10T00:00:00Z")),
                    valid_to: None,
                },
                Discount {
                    id: "f".into(),
                    name: "f".into(),
                    scope: DiscountScope::All,
                    value: DiscountValue::Fixed { amount: d("7.77") },
                    valid_from: None,
                    valid_to: None,
                },
            ];
            a.tax_jurisdiction = Some("ch".into());
        }
        _ => {
            a.sla_tier = Some("standard".into());
            a.availability_pct = Some(d("99.1"));
            a.tax_jurisdiction = Some("gb".into());
            let mut pkg = subscription("pkg", "gold-package", "2017-01-01T00:00:00Z");
            pkg.changes = vec![PlanChange {
                at: t("2017-02-21T00:00:00Z"),
                product: "daily-backup".into(),
            }];
            a.subscriptions = vec![pkg];
        }
    }
    a
}

/// The example catalog, or a corrected version with copper's running hour at another price.
fn catalog_variant(copper_price_cents: Option<i64>) -> Catalog {
    let mut c = cloudstack();
    if let Some(cents) = copper_price_cents {
        c.version = "2017-02.2".into();
        let copper = c.products.iter_mut().find(|p| p.id == "copper").unwrap();
        let running = copper
            .charges
            .iter_mut()
            .find(|ch| ch.meter == "vm.running")
            .unwrap();
        running.price.model = PriceModel::PerUnit {
            unit_price: Decimal::new(cents, 2),
        };
    }
    c
}

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

fn usage_of(c: &Catalog, period: BillingPeriod, records: &[(UsageRecord, u8)], upto: u8) -> Usage {
    let chosen: Vec<UsageRecord> = records
        .iter()
        .filter(|(_, part)| *part <= upto)
        .map(|(r, _)| r.clone())
        .collect();
    pricing::rate(c, period, &chosen).unwrap()
}

fn finalized(mut inv: Invoice) -> Invoice {
    inv.kind = InvoiceKind::Final;
    inv.number = Some("F-1".into());
    inv
}

fn issued() -> NaiveDate {
    NaiveDate::from_ymd_opt(2017, 3, 5).unwrap()
}

/// The nonzero figures of a standing, by line: what must be equal between two standings
/// (quantities too, or only amounts and taxes).
fn figures(
    s: &Standing,
    with_quantities: bool,
) -> Vec<(String, String, String, Decimal, Decimal, Decimal)> {
    let mut out: Vec<_> = s
        .lines()
        .map(|(section, l)| {
            let q = if with_quantities {
                l.quantity
            } else {
                Decimal::ZERO
            };
            (
                section.to_string(),
                l.product.clone(),
                l.description.clone(),
                q.normalize(),
                l.amount.normalize(),
                l.tax.normalize(),
            )
        })
        .filter(|(.., q, a, t)| !(q.is_zero() && a.is_zero() && t.is_zero()))
        .collect();
    out.sort();
    out
}

fn tax_figures(s: &Standing) -> Vec<(String, Decimal)> {
    let mut out: Vec<_> = s
        .taxes()
        .iter()
        .filter(|t| !t.amount.is_zero())
        .map(|t| (format!("{} {}", t.name, t.rate_pct), t.amount.normalize()))
        .collect();
    out.sort();
    out
}

/// Asserts that the final invoice with its notes stands exactly where `now` does: in every
/// amount, and in every quantity too unless a change of quantities alone (on lines that cost
/// nothing) made no note since the last.
fn assert_stands_at(
    fin: &Invoice,
    notes: &[Note],
    now: &Invoice,
    with_quantities: bool,
) -> Result<(), TestCaseError> {
    let have = standing(fin, notes).unwrap();
    let want = Standing::of(&now.bill).unwrap();
    prop_assert_eq!(have.net, want.net);
    prop_assert_eq!(have.total, want.total);
    prop_assert_eq!(tax_figures(&have), tax_figures(&want));
    prop_assert_eq!(
        figures(&have, with_quantities),
        figures(&want, with_quantities)
    );
    Ok(())
}

/// Cases per property: 64 in the test suite; `FUZZ_CASES=n` for a long fuzzing campaign.
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// For any split of February's usage into what came before the close and what came late,
    /// and any corrected copper price: final + note(final, corrected) = corrected, exactly.
    #[test]
    fn the_final_invoice_plus_its_note_is_the_invoice_now(
        records in proptest::collection::vec(record(), 0..40),
        variant in 0u8..5,
        price in proptest::option::of(1i64..1000),
    ) {
        let c = cloudstack();
        let a = account_variant(variant);
        let fin = finalized(invoice(&c, &a, feb(), &usage_of(&c, feb(), &records, 0)).unwrap());
        prop_assert_eq!(fin.check_totals(), Ok(()));
        let c2 = catalog_variant(price);
        let now = invoice(&c2, &a, feb(), &usage_of(&c2, feb(), &records, 2)).unwrap();
        prop_assert_eq!(now.check_totals(), Ok(()));
        match note(&fin, &[], &now, NoteReason::LateUsage, issued()).unwrap() {
            Some(n) => {
                prop_assert_eq!(n.check_totals(), Ok(()));
                prop_assert_eq!(n.kind == NoteKind::Credit, n.total < Decimal::ZERO);
                prop_assert_eq!(n.total, now.bill.total - fin.bill.total);
                prop_assert_eq!(n.net, now.bill.net - fin.bill.net);
                assert_stands_at(&fin, std::slice::from_ref(&n), &now, true)?;
                // Nothing is left to correct.
                prop_assert_eq!(note(&fin, &[n], &now, NoteReason::LateUsage, issued()).unwrap(), None);
            }
            // No amount changes (at most a quantity that costs nothing): no note.
            None => assert_stands_at(&fin, &[], &now, false)?,
        }
    }

    /// Two late batches and a re-rate: each note is only the difference since the previous
    /// ones, and all of them together take the final invoice to the invoice now.
    #[test]
    fn a_chain_of_notes_ends_at_the_invoice_now(
        records in proptest::collection::vec(record(), 0..40),
        variant in 0u8..5,
        price in proptest::option::of(1i64..1000),
    ) {
        let c = cloudstack();
        let a = account_variant(variant);
        let fin = finalized(invoice(&c, &a, feb(), &usage_of(&c, feb(), &records, 0)).unwrap());
        let first = invoice(&c, &a, feb(), &usage_of(&c, feb(), &records, 1)).unwrap();
        let c2 = catalog_variant(price);
        let second = invoice(&c2, &a, feb(), &usage_of(&c2, feb(), &records, 2)).unwrap();
        let mut notes = Vec::new();
        for (i, now) in [first, second.clone()].iter().enumerate() {
            let issued_one = note(&fin, &notes, now, NoteReason::LateUsage, issued()).unwrap();
            let with_quantities = issued_one.is_some();
            if let Some(mut n) = issued_one {
                prop_assert_eq!(n.check_totals(), Ok(()));
                n.number = Some(format!("N-{i}"));
                notes.push(n);
            }
            assert_stands_at(&fin, &notes, now, with_quantities)?;
        }
        prop_assert_eq!(note(&fin, &notes, &second, NoteReason::CorrectedCatalog, issued()).unwrap(), None);
    }

    /// `invoice()` is `invoice_with` and a statement holding the book's values; issued, it only
    /// adds its dates and the prepaid credit left.
    #[test]
    fn the_statement_with_the_books_values_is_invoice(
        records in proptest::collection::vec(record(), 0..30),
        variant in 0u8..5,
        prepaid in -10_000i64..100_000,
        brought in -100_000i64..100_000,
        paid in proptest::collection::vec((0i64..40, 0i64..100_000), 0..4),
        terms in 0u32..120,
    ) {
        let c = cloudstack();
        let mut a = account_variant(variant);
        a.prepaid_credit = Decimal::new(prepaid, 2);
        a.balance_brought_forward = Decimal::new(brought, 3);
        a.payment_terms_days = terms;
        a.payments = paid
            .iter()
            .map(|(day, cents)| Payment {
                date: t("2017-01-20T00:00:00Z") + Duration::days(*day),
                amount: Decimal::new(*cents, 2),
                reference: format!("p{day}"),
            })
            .collect();
        let usage = usage_of(&c, feb(), &records, 2);
        let today = invoice(&c, &a, feb(), &usage).unwrap();
        let statement = Statement {
            brought_forward: a.balance_brought_forward,
            prepaid_available: a.prepaid_credit,
            payments: a.payments.iter().filter(|p| feb().contains(p.date)).cloned().collect(),
            ..Statement::default()
        };
        prop_assert_eq!(&invoice_with(&c, &a, feb(), &usage, &statement).unwrap(), &today);
        let dated = Statement { issue_date: Some(issued()), ..statement };
        let inv = invoice_with(&c, &a, feb(), &usage, &dated).unwrap();
        prop_assert_eq!(inv.check_totals(), Ok(()));
        prop_assert_eq!(inv.due_date, Some(issued() + Duration::days(i64::from(terms))));
        let remaining = inv.prepaid_remaining.unwrap();
        prop_assert!(remaining >= Decimal::ZERO);
        prop_assert_eq!(inv.prepaid_available.unwrap() - inv.credits_applied, remaining);
        let undated = Invoice { issue_date: None, due_date: None, prepaid_available: None, prepaid_remaining: None, ..inv };
        prop_assert_eq!(undated, today);
    }

    /// February's late usage billed on March: the adjustments add their net to March's and
    /// change none of its discounts, uplift or credits; every total still adds up.
    #[test]
    fn adjustments_change_no_base_of_the_invoice_that_bills_them(
        records in proptest::collection::vec(record(), 0..40),
        march in proptest::collection::vec(record(), 0..20),
        variant in 0u8..5,
    ) {
        let c = cloudstack();
        let a = account_variant(variant);
        let fin = finalized(invoice(&c, &a, feb(), &usage_of(&c, feb(), &records, 0)).unwrap());
        let now = invoice(&c, &a, feb(), &usage_of(&c, feb(), &records, 2)).unwrap();
        let Some(late) = note(&fin, &[], &now, NoteReason::LateUsage, issued()).unwrap() else {
            return Ok(());
        };
        let mar = BillingPeriod::month(2017, 3).unwrap();
        let shifted: Vec<(UsageRecord, u8)> = march
            .into_iter()
            .map(|(mut r, p)| {
                r.start += Duration::days(28);
                r.end += Duration::days(28);
                (r, p)
            })
            .collect();
        let usage = usage_of(&c, mar, &shifted, 2);
        let plain = invoice(&c, &a, mar, &usage).unwrap();
        let statement = Statement { adjustments: vec![late.clone()], ..Statement::default() };
        let inv = invoice_with(&c, &a, mar, &usage, &statement).unwrap();
        prop_assert_eq!(inv.check_totals(), Ok(()));
        let adj = inv.bill.sections.last().unwrap();
        prop_assert_eq!(adj.name.as_str(), "Adjustments");
        prop_assert_eq!(adj.total, late.net);
        prop_assert_eq!(&inv.bill.discounts, &plain.bill.discounts);
        prop_assert_eq!(&inv.bill.sla_credits, &plain.bill.sla_credits);
        prop_assert_eq!(inv.bill.subtotal, plain.bill.subtotal + late.net);
        prop_assert_eq!(inv.bill.net, plain.bill.net + late.net);
        prop_assert_eq!(&inv.bill.sections[..inv.bill.sections.len() - 1], &plain.bill.sections[..]);
    }

    /// An interim invoice to any instant of the period adds up, and charges no subscription
    /// more days than the whole period does.
    #[test]
    fn an_interim_invoice_to_date_adds_up(
        records in proptest::collection::vec(record(), 0..30),
        variant in 0u8..5,
        seconds in 0i64..28 * 86_400,
    ) {
        let c = cloudstack();
        let a = account_variant(variant);
        let usage = usage_of(&c, feb(), &records, 2);
        let whole = invoice(&c, &a, feb(), &usage).unwrap();
        let as_of = feb().start + Duration::seconds(seconds);
        let statement = Statement { as_of: Some(as_of), ..Statement::default() };
        let inv = invoice_with(&c, &a, feb(), &usage, &statement).unwrap();
        prop_assert_eq!(inv.check_totals(), Ok(()));
        let days_begun = Decimal::from((seconds + 86_399) / 86_400);
        for l in inv.bill.lines().filter(|l| l.days.is_some()) {
            prop_assert!(l.days.unwrap() <= days_begun);
            let full = whole.bill.lines().find(|w| w.description == l.description && w.days.is_some()).unwrap();
            prop_assert!(l.days <= full.days);
        }
    }
}

#[test]
fn notes_and_statements_round_trip_through_json() {
    let c = cloudstack();
    let a = account_variant(4);
    let on_time = [rec(
        "acct-0",
        "vm",
        "copper",
        "vm.running",
        "10",
        Unit::Hours,
        "2017-02-03T00:00:00Z",
    )];
    let mut all = on_time.to_vec();
    all.push(rec(
        "acct-0",
        "vm",
        "copper",
        "vm.running",
        "5",
        Unit::Hours,
        "2017-02-27T00:00:00Z",
    ));
    let fin =
        finalized(invoice(&c, &a, feb(), &pricing::rate(&c, feb(), &on_time).unwrap()).unwrap());
    let now = invoice(&c, &a, feb(), &pricing::rate(&c, feb(), &all).unwrap()).unwrap();
    let n = note(&fin, &[], &now, NoteReason::LateUsage, issued())
        .unwrap()
        .unwrap();
    let back: Note = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
    assert_eq!(back, n);
    let statement = Statement {
        issue_date: Some(issued()),
        as_of: Some(t("2017-03-10T00:00:00Z")),
        adjustments: vec![n],
        ..Statement::default()
    };
    let back: Statement =
        serde_json::from_str(&serde_json::to_string(&statement).unwrap()).unwrap();
    assert_eq!(back, statement);
    let inv = invoice_with(
        &c,
        &a,
        BillingPeriod::month(2017, 3).unwrap(),
        &Usage::default(),
        &statement,
    )
    .unwrap();
    let back: Invoice = serde_json::from_str(&serde_json::to_string(&inv).unwrap()).unwrap();
    assert_eq!(back, inv);
}
