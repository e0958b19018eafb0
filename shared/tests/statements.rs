//! Account statements (`pricing::account_statement`) on hand-made movements: every balance below is worked out by hand in the comments, including the opening balance a range starting after an invoice gets from it, and a stored chain that does not reconcile is refused naming the invoice.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use chrono::{NaiveDate, TimeZone, Utc};
use pricing::account_statement::{
    account_statement, EntryKind, Movement, StatementError, StatementParty,
};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ms(s: &str) -> i64 {
    let d = day(s).and_hms_opt(0, 0, 0).unwrap();
    Utc.from_utc_datetime(&d).timestamp_millis()
}

fn party() -> StatementParty {
    StatementParty {
        account: "a1".into(),
        account_name: "Account one".into(),
        address: vec![],
        currency: "GBP".into(),
        opening_balance: d("100.00"),
    }
}

/// An invoice of the month ending `period_end`, issued at noon on `issued`.
fn invoice(
    number: &str,
    period_end: &str,
    issued: &str,
    due: &str,
    chain: (&str, &str),
) -> Movement {
    Movement {
        kind: EntryKind::Invoice,
        at_ms: ms(issued) + 12 * 3_600_000,
        date: day(issued),
        reference: number.into(),
        period: period_end[..7].into(),
        due: None,
        corrects: None,
        amount: d(due),
        chain: Some((d(chain.0), d(chain.1))),
        period_end_ms: Some(ms(period_end)),
        elsewhere: false,
        new_issuer: false,
        issuer: String::new(),
        prepaid_remaining: Decimal::ZERO,
        prepaid_available: Decimal::ZERO,
    }
}

fn payment(reference: &str, amount: &str, date: &str) -> Movement {
    Movement::payment(reference, d(amount), ms(date) + 9 * 3_600_000, day(date))
}

fn credit(number: &str, total: &str, date: &str) -> Movement {
    note(pricing::NoteKind::Credit, number, total, date)
}

fn debit(number: &str, total: &str, date: &str) -> Movement {
    note(pricing::NoteKind::Debit, number, total, date)
}

/// A note of `kind` against INV-1 (January), issued at 15:00 on `date`.
fn note(kind: pricing::NoteKind, number: &str, total: &str, date: &str) -> Movement {
    Movement::note(
        kind,
        number,
        "2017-01",
        "INV-1",
        d(total),
        ms(date) + 15 * 3_600_000,
        day(date),
    )
}

/// January and February of an account that opened owing 100.00:
/// - 15 Jan: pays 100.00 (January's payment, on INV-1);
/// - 2 Feb: pays 7.00 (dated in February, so on INV-2, though made before INV-1 was issued);
/// - 3 Feb: INV-1 for January: brought forward 100.00, paid 100.00, due 50.00, carried 50.00;
/// - 10 Feb: credit note CN-1 of -5.00 against INV-1;
/// - 12 Feb: pays 20.00 (on INV-2);
/// - 3 Mar: INV-2 for February: brought forward 50.00 - 5.00 = 45.00, paid 27.00, due 30.00,
///   carried 45.00 - 27.00 + 30.00 = 48.00.
fn two_months() -> Vec<Movement> {
    vec![
        // Given out of order: the statement orders them.
        invoice(
            "INV-2",
            "2017-03-01",
            "2017-03-03",
            "30.00",
            ("45.00", "48.00"),
        ),
        payment("p-3", "20.00", "2017-02-12"),
        credit("CN-1", "-5.00", "2017-02-10"),
        invoice(
            "INV-1",
            "2017-02-01",
            "2017-02-03",
            "50.00",
            ("100.00", "50.00"),
        ),
        payment("p-2", "7.00", "2017-02-02"),
        payment("p-1", "100.00", "2017-01-15"),
    ]
}

fn entries(st: &pricing::account_statement::AccountStatement) -> Vec<(String, Decimal, Decimal)> {
    st.entries
        .iter()
        .map(|e| (e.reference.clone(), e.amount, e.balance))
        .collect()
}

fn row(r: &str, a: &str, b: &str) -> (String, Decimal, Decimal) {
    (r.to_string(), d(a), d(b))
}

#[test]
fn a_whole_range_runs_the_balance_from_the_opening_to_the_last_invoice_carried_forward() {
    let st =
        account_statement(&party(), day("2017-01-01"), day("2017-03-31"), two_months()).unwrap();
    // 100.00 -> p-1 0.00 -> p-2 -7.00 -> INV-1 43.00 -> CN-1 38.00 -> p-3 18.00 -> INV-2 48.00.
    assert_eq!(st.opening, d("100.00"));
    assert_eq!(
        entries(&st),
        vec![
            row("p-1", "-100.00", "0.00"),
            row("p-2", "-7.00", "-7.00"),
            row("INV-1", "50.00", "43.00"),
            row("CN-1", "-5.00", "38.00"),
            row("p-3", "-20.00", "18.00"),
            row("INV-2", "30.00", "48.00"),
        ]
    );
    // The closing balance is INV-2's carried forward: nothing happened after it.
    assert_eq!(st.closing, d("48.00"));
    assert_eq!(
        (st.invoiced, st.credited, st.debited, st.paid),
        (d("80.00"), d("-5.00"), Decimal::ZERO, d("127.00"))
    );
    assert!(st.adds_up().unwrap());
    assert_eq!(st.entries[2].kind, EntryKind::Invoice);
    assert_eq!(st.entries[3].corrects.as_deref(), Some("INV-1"));
}

#[test]
fn a_range_after_an_invoice_opens_at_its_carried_forward_with_what_came_since() {
    // From 11 Feb: the last invoice before is INV-1 (carried 50.00); since it, CN-1 (-5.00)
    // and p-2 (-7.00, February's, though dated before INV-1 was issued): 38.00.
    let st =
        account_statement(&party(), day("2017-02-11"), day("2017-03-31"), two_months()).unwrap();
    assert_eq!(st.opening, d("38.00"));
    assert_eq!(
        entries(&st),
        vec![
            row("p-3", "-20.00", "18.00"),
            row("INV-2", "30.00", "48.00")
        ]
    );
    assert_eq!(st.closing, d("48.00"));
    assert!(st.adds_up().unwrap());
    // From 4 Feb: INV-1 (50.00) less p-2: 43.00, then CN-1 and p-3 and INV-2.
    let st =
        account_statement(&party(), day("2017-02-04"), day("2017-03-31"), two_months()).unwrap();
    assert_eq!(st.opening, d("43.00"));
    assert_eq!(st.entries.len(), 3);
    assert_eq!(st.closing, d("48.00"));
}

#[test]
fn a_range_before_the_first_invoice_opens_at_its_brought_forward_less_the_payments() {
    // Up to 5 Feb: 100.00 - 100.00 - 7.00 + 50.00 = 43.00.
    let st =
        account_statement(&party(), day("2017-01-20"), day("2017-02-05"), two_months()).unwrap();
    assert_eq!(st.opening, d("0.00"));
    assert_eq!(
        entries(&st),
        vec![row("p-2", "-7.00", "-7.00"), row("INV-1", "50.00", "43.00")]
    );
    assert_eq!(st.closing, d("43.00"));
    // No invoice at all: the book's opening balance, less what was paid.
    let st = account_statement(
        &party(),
        day("2017-01-01"),
        day("2017-01-31"),
        vec![payment("p-1", "30.00", "2017-01-15")],
    )
    .unwrap();
    assert_eq!((st.opening, st.closing), (d("100.00"), d("70.00")));
}

#[test]
fn an_invoice_that_does_not_bring_forward_what_came_before_is_refused_by_name() {
    let mut m = two_months();
    // INV-2 claims to bring forward 50.00, forgetting the credit note.
    m[0].chain = Some((d("50.00"), d("53.00")));
    let e = account_statement(&party(), day("2017-01-01"), day("2017-03-31"), m).unwrap_err();
    assert_eq!(
        e,
        StatementError::Chain {
            number: "INV-2".into(),
            found: d("50.00"),
            carried: d("50.00"),
            notes: d("-5.00"),
            expected: d("45.00"),
        }
    );
    assert!(e.to_string().contains("invoice INV-2 brings forward 50.00"));
}

#[test]
fn a_reversed_range_and_sums_past_a_decimal_are_errors_not_panics() {
    assert_eq!(
        account_statement(&party(), day("2017-03-01"), day("2017-02-01"), vec![]),
        Err(StatementError::Range {
            from: day("2017-03-01"),
            to: day("2017-02-01")
        })
    );
    let huge = vec![
        payment("p-1", &(-Decimal::MAX).to_string(), "2017-01-10"),
        payment("p-2", &(-Decimal::MAX).to_string(), "2017-01-11"),
    ];
    let e = account_statement(&party(), day("2017-01-01"), day("2017-01-31"), huge).unwrap_err();
    assert!(matches!(e, StatementError::Overflow(_)), "{e:?}");
}

/// The customer moved to another reseller after January: INV-1 (January) was the old
/// reseller's, NEW-1 (February) is the new one's. Worked by hand, from the two months above:
/// - NEW-1 for February, issued on 3 Mar, brings forward nothing: INV-1's carried 50.00 and
///   CN-1's -5.00 (the old reseller's while INV-1 was the last) are handed over to the old
///   reseller, 45.00 still owed to it. NEW-1 takes February's payments p-2 and p-3 (27.00) and
///   is due 30.00: carried 0 - 27.00 + 30.00 = 3.00;
/// - on 10 Mar, after NEW-1, the old reseller issues OLD-N2 of +8.00 against INV-1: owed to
///   it, not brought forward by the new reseller's next invoice;
/// - 15 Mar: the customer pays the old reseller 8.00 (OLD-P), on no invoice;
/// - 3 Apr: NEW-2 for March brings forward 3.00 (NEW-1's carried), not 11.00; due 0.00.
///
/// The running balance is what the customer owes either: 48.00 after NEW-1 (3.00 to the new
/// reseller, 45.00 to the old), as it was before the move.
#[test]
fn a_former_issuers_balance_and_notes_are_handed_over_in_the_balance_and_on_no_invoice() {
    let mut movements: Vec<Movement> = two_months()
        .into_iter()
        .filter(|m| m.reference != "INV-2")
        .collect();
    movements.push(
        invoice(
            "NEW-1",
            "2017-03-01",
            "2017-03-03",
            "30.00",
            ("0.00", "3.00"),
        )
        .of_new_issuer(),
    );
    movements.push(debit("OLD-N2", "8.00", "2017-03-10").owed_elsewhere());
    movements.push(payment("OLD-P", "8.00", "2017-03-15").owed_elsewhere());
    movements.push(invoice(
        "NEW-2",
        "2017-04-01",
        "2017-04-03",
        "0.00",
        ("3.00", "3.00"),
    ));
    let st = account_statement(
        &party(),
        day("2017-01-01"),
        day("2017-04-30"),
        movements.clone(),
    )
    .unwrap();
    // ... INV-1 43.00 -> CN-1 38.00 -> p-3 18.00 -> NEW-1 48.00 -> OLD-N2 56.00 -> OLD-P 48.00
    // -> NEW-2 48.00.
    assert_eq!(
        entries(&st)[3..],
        [
            row("CN-1", "-5.00", "38.00"),
            row("p-3", "-20.00", "18.00"),
            row("NEW-1", "30.00", "48.00"),
            row("OLD-N2", "8.00", "56.00"),
            row("OLD-P", "-8.00", "48.00"),
            row("NEW-2", "0.00", "48.00"),
        ]
    );
    assert!(st.adds_up().unwrap());
    // A range from April opens at NEW-1's carried 3.00, plus the 45.00 handed over at NEW-1,
    // plus what is owed elsewhere since (8.00 - 8.00): 48.00. Without the payment, 56.00.
    let from_april = |m: Vec<Movement>| {
        account_statement(&party(), day("2017-04-01"), day("2017-04-30"), m).unwrap()
    };
    assert_eq!(from_april(movements.clone()).opening, d("48.00"));
    let unpaid: Vec<Movement> = movements
        .iter()
        .filter(|m| m.reference != "OLD-P")
        .cloned()
        .collect();
    assert_eq!(from_april(unpaid).opening, d("56.00"));
    // Not marked as owed elsewhere, OLD-N2 would have to be in NEW-2's brought-forward; not
    // marked as a new issuer's, NEW-1 would have to bring forward 45.00: both refused.
    for unmark in ["OLD-N2", "NEW-1"] {
        let unmarked: Vec<Movement> = movements
            .iter()
            .cloned()
            .map(|mut m| {
                if m.reference == unmark {
                    m.elsewhere = false;
                    m.new_issuer = false;
                }
                m
            })
            .collect();
        assert!(
            matches!(
                account_statement(&party(), day("2017-01-01"), day("2017-04-30"), unmarked),
                Err(StatementError::Chain { .. })
            ),
            "{unmark}"
        );
    }
    // A new issuer's invoice that brought the former balance forward (as they did before
    // hand-overs) still reconciles: NEW-1 bringing forward 45.00, carried 48.00.
    let brought: Vec<Movement> = movements
        .iter()
        .cloned()
        .map(|m| match m.reference.as_str() {
            "NEW-1" => invoice(
                "NEW-1",
                "2017-03-01",
                "2017-03-03",
                "30.00",
                ("45.00", "48.00"),
            )
            .of_new_issuer(),
            "NEW-2" => invoice(
                "NEW-2",
                "2017-04-01",
                "2017-04-03",
                "0.00",
                ("48.00", "48.00"),
            ),
            _ => m,
        })
        .collect();
    assert_eq!(from_april(brought).opening, d("48.00"));
}

/// The customer moved to another reseller and back: INV (the old reseller) billed January,
/// NEW (the new one) February, INV again March and April. Worked by hand, from the two months
/// above (every document marked with its issuer's series):
/// - NEW-1 (3 Mar) hands INV-1's 50.00 and CN-1's -5.00 over to INV: 45.00 owed to INV; it
///   takes p-2 and p-3 (27.00), due 30.00, carried 3.00;
/// - INV's debit note INV-N2 (10 Mar, +8.00) and the customer's payment to INV (INV-P, 15 Mar,
///   8.00) are off the chain: still 45.00 owed to INV;
/// - 20 Mar: the customer pays 10.00 on the chain (p-4, on March's invoice);
/// - INV-3 for March (3 Apr), INV's invoice again: brings forward the 45.00 owed to INV, not
///   NEW-1's 3.00, which is handed over to NEW; takes p-4, due 12.00: carried 45.00 - 10.00 +
///   12.00 = 47.00;
/// - 10 Apr: NEW's credit note NEW-N1 (-3.00) against NEW-1, owed back by NEW: 0.00 owed to NEW;
/// - INV-4 for April (3 May) brings forward INV-3's 47.00 (NEW-N1 is not INV's), due 0.00.
///
/// Running balance, whoever it is owed to: NEW-1 48.00, INV-N2 56.00, INV-P 48.00, p-4 38.00,
/// INV-3 50.00, NEW-N1 47.00, INV-4 47.00 (47.00 owed to INV, 0.00 to NEW).
#[test]
fn a_customer_back_with_its_former_issuer_has_what_it_owed_it_brought_forward_again() {
    let mut movements: Vec<Movement> = two_months()
        .into_iter()
        .filter(|m| m.reference != "INV-2")
        .map(|m| match m.kind {
            EntryKind::Payment => m,
            _ => m.of_issuer("INV"),
        })
        .collect();
    movements.extend([
        invoice(
            "NEW-1",
            "2017-03-01",
            "2017-03-03",
            "30.00",
            ("0.00", "3.00"),
        )
        .of_issuer("NEW")
        .of_new_issuer(),
        debit("INV-N2", "8.00", "2017-03-10")
            .of_issuer("INV")
            .owed_elsewhere(),
        payment("INV-P", "8.00", "2017-03-15")
            .of_issuer("INV")
            .owed_elsewhere(),
        payment("p-4", "10.00", "2017-03-20"),
        invoice(
            "INV-3",
            "2017-04-01",
            "2017-04-03",
            "12.00",
            ("45.00", "47.00"),
        )
        .of_issuer("INV")
        .of_new_issuer(),
        Movement::note(
            pricing::NoteKind::Credit,
            "NEW-N1",
            "2017-02",
            "NEW-1",
            d("-3.00"),
            ms("2017-04-10") + 15 * 3_600_000,
            day("2017-04-10"),
        )
        .of_issuer("NEW")
        .owed_elsewhere(),
        invoice(
            "INV-4",
            "2017-05-01",
            "2017-05-03",
            "0.00",
            ("47.00", "47.00"),
        )
        .of_issuer("INV"),
    ]);
    let whole = account_statement(
        &party(),
        day("2017-01-01"),
        day("2017-05-31"),
        movements.clone(),
    )
    .unwrap();
    assert_eq!(
        entries(&whole)[5..],
        [
            row("NEW-1", "30.00", "48.00"),
            row("INV-N2", "8.00", "56.00"),
            row("INV-P", "-8.00", "48.00"),
            row("p-4", "-10.00", "38.00"),
            row("INV-3", "12.00", "50.00"),
            row("NEW-N1", "-3.00", "47.00"),
            row("INV-4", "0.00", "47.00"),
        ]
    );
    assert!(whole.adds_up().unwrap());
    // Each entry off the chain names who it is owed or paid to.
    let owed_to: Vec<(&str, Option<&str>)> = whole.entries[5..]
        .iter()
        .map(|e| (e.reference.as_str(), e.owed_to.as_deref()))
        .collect();
    assert_eq!(
        owed_to,
        [
            ("NEW-1", None),
            ("INV-N2", Some("INV")),
            ("INV-P", Some("INV")),
            ("p-4", None),
            ("INV-3", None),
            ("NEW-N1", Some("NEW")),
            ("INV-4", None),
        ]
    );
    let opening = |from: &str, m: Vec<Movement>| {
        account_statement(&party(), day(from), day("2017-05-31"), m)
            .unwrap()
            .opening
    };
    // From May: INV-3's carried 47.00, plus what is owed off the chain (INV-N2 + 8.00, INV-P
    // -8.00, NEW-N1 -3.00), plus 45.00 handed over at NEW-1, less 45.00 brought back at INV-3
    // and plus NEW-1's 3.00 handed over there: 47.00 - 3.00 + 45.00 - 42.00 = 47.00.
    assert_eq!(opening("2017-05-01", movements.clone()), d("47.00"));
    // From April: NEW-1's carried 3.00, p-4 -10.00 (after NEW-1's period), off the chain
    // 8.00 - 8.00, handed over at NEW-1 45.00: 38.00.
    assert_eq!(opening("2017-04-01", movements.clone()), d("38.00"));
    // INV-3 bringing forward nothing (what INV was owed lost) or NEW-1's 3.00 plus INV's
    // 45.00 (NEW's balance taken by INV) does not reconcile.
    for wrong in [("0.00", "2.00"), ("48.00", "50.00")] {
        let m: Vec<Movement> = movements
            .iter()
            .cloned()
            .map(|m| match m.reference.as_str() {
                "INV-3" => invoice("INV-3", "2017-04-01", "2017-04-03", "12.00", wrong)
                    .of_issuer("INV")
                    .of_new_issuer(),
                _ => m,
            })
            .collect();
        assert!(
            matches!(
                account_statement(&party(), day("2017-01-01"), day("2017-05-31"), m),
                Err(StatementError::Chain { ref number, .. }) if number == "INV-3" || number == "INV-4"
            ),
            "{wrong:?}"
        );
    }
}

/// A former issuer that still held prepaid credit when the customer moved: INV (the provider)
/// billed January from prepaid credit (due 0.00, 80.00 of credit left), NEW billed February,
/// INV billed March again. Worked by hand:
/// - NEW-1 (3 Mar) hands INV-1's balance over net of the credit INV still held: 0.00 - 80.00,
///   so INV owes the customer 80.00; the statement shows the credit applied (-80.00). NEW-1 is
///   due 30.00, carried 30.00;
/// - INV-2 (3 Apr) brings forward the -80.00 INV owed the customer, due 50.00, carried -30.00;
///   NEW-1's 30.00 is handed over to NEW.
///
/// Running balance: INV-1 0.00, NEW-1 30.00, credit applied -50.00, INV-2 0.00 (-30.00 on INV's
/// chain, 30.00 owed to NEW). Before, INV-2's brought-forward contradicted the statement's idea
/// of what INV was owed (0.00, the credit ignored) and every statement of the account was
/// refused.
#[test]
fn a_former_issuers_prepaid_credit_is_applied_to_the_balance_handed_over() {
    let mut first = invoice(
        "INV-1",
        "2017-02-01",
        "2017-02-03",
        "0.00",
        ("0.00", "0.00"),
    )
    .of_issuer("INV");
    first.prepaid_remaining = d("80.00");
    let movements = vec![
        first,
        invoice(
            "NEW-1",
            "2017-03-01",
            "2017-03-03",
            "30.00",
            ("0.00", "30.00"),
        )
        .of_issuer("NEW")
        .of_new_issuer(),
        invoice(
            "INV-2",
            "2017-04-01",
            "2017-04-03",
            "50.00",
            ("-80.00", "-30.00"),
        )
        .of_issuer("INV")
        .of_new_issuer(),
    ];
    let party = StatementParty {
        opening_balance: Decimal::ZERO,
        ..party()
    };
    let st = account_statement(
        &party,
        day("2017-01-01"),
        day("2017-05-31"),
        movements.clone(),
    )
    .unwrap();
    assert_eq!(
        entries(&st),
        [
            row("INV-1", "0.00", "0.00"),
            row("NEW-1", "30.00", "30.00"),
            row("INV-1", "-80.00", "-50.00"),
            row("INV-2", "50.00", "0.00"),
        ]
    );
    assert_eq!(st.entries[2].kind, EntryKind::PrepaidApplied);
    assert_eq!(st.entries[2].owed_to.as_deref(), Some("INV"));
    assert_eq!((st.applied, st.closing), (d("-80.00"), d("0.00")));
    assert!(st.adds_up().unwrap());
    // From April (after NEW-1 and the credit applied): NEW-1's 30.00 less 80.00: -50.00. From
    // May (after INV-2): its -30.00, the credit -80.00, plus 0.00 handed over at NEW-1 and
    // 30.00 - (-80.00) at INV-2: 0.00.
    let opening = |from: &str| {
        account_statement(&party, day(from), day("2017-05-31"), movements.clone())
            .unwrap()
            .opening
    };
    assert_eq!(opening("2017-04-01"), d("-50.00"));
    assert_eq!(opening("2017-05-01"), d("0.00"));
    // Issued before hand-overs, NEW-1 used INV's 80.00 itself (available to it, due 0.00 of
    // 30.00, carried 0.00): nothing of it is handed over or applied again, and INV-2 brings
    // forward NEW-1's 0.00.
    let mut legacy = movements.clone();
    legacy[1] = invoice(
        "NEW-1",
        "2017-03-01",
        "2017-03-03",
        "0.00",
        ("0.00", "0.00"),
    )
    .of_issuer("NEW")
    .of_new_issuer();
    legacy[1].prepaid_available = d("80.00");
    legacy[2] = invoice(
        "INV-2",
        "2017-04-01",
        "2017-04-03",
        "50.00",
        ("0.00", "50.00"),
    )
    .of_issuer("INV")
    .of_new_issuer();
    let st = account_statement(&party, day("2017-01-01"), day("2017-05-31"), legacy).unwrap();
    assert!(st
        .entries
        .iter()
        .all(|e| e.kind != EntryKind::PrepaidApplied));
    assert_eq!((st.applied, st.closing), (d("0.00"), d("50.00")));
}
