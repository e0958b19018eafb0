//! The billing month in the simulator: payments, month closes through faults (a crash after k finalizations, lost answers, closes racing each other and a payment), and the checks of every final invoice against the model's balance chain.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use pricing::{BillingPeriod, Invoice, InvoiceKind};
use rater::invoices::Finalizing;
use rater::model::DocKind;
use rater::month::{close, history, record_payment, CloseReport, PaymentInput};
use rater::store::{PaymentOutcome, Store};
use rater::{RaterConfig, RaterError};

use super::backend::Backend;
use super::chaos::Stats;
use super::gen::{money, PaymentEvent, PaymentExpect, ISSUER};
use super::reference::{self, Link, ModelInvoice, ModelPayments, ModelStatement};
use super::{finalize_client, invoice_client, Sim, CLIENT_ATTEMPTS_MAX};

/// Runs of one close before the run is declared stuck: each run finalizes what it can, and
/// faults are a few percent per call, so a dozen runs finalize any month here.
const CLOSE_RUNS_MAX: u32 = 50;

/// The model's billing months: what it knows of every final invoice and payment.
#[derive(Debug, Default)]
pub struct Chain {
    /// Months closed so far: `months[..closed]`. Interim invoices are asked of the others.
    pub closed: usize,
    /// Payments the clients saw recorded, by account and the month of their date.
    pub paid: BTreeMap<(String, usize), ModelPayments>,
    /// Final invoices, by account and month, as the model figured them when they were issued.
    pub finals: BTreeMap<(String, usize), Final>,
    /// Final invoice numbers issued so far: the issuer's counter.
    pub issued: u64,
}

/// A final invoice as the model figured it.
#[derive(Debug, Clone)]
pub struct Final {
    pub number: String,
    pub usage: ModelInvoice,
    pub statement: ModelStatement,
    pub payments: ModelPayments,
    pub issued_on: NaiveDate,
}

impl Chain {
    /// The account's last final invoice: its month and what it leaves the next one.
    pub fn last(&self, account: &str) -> Option<(usize, Link)> {
        self.finals
            .range((account.to_string(), 0)..=(account.to_string(), usize::MAX))
            .next_back()
            .map(|((_, m), f)| (*m, f.statement.link()))
    }

    fn payments(&self, account: &str, month: usize) -> ModelPayments {
        self.paid
            .get(&(account.to_string(), month))
            .cloned()
            .unwrap_or_default()
    }
}

/// The number in an invoice number (`sim-000042` is 42).
fn serial(number: &str) -> u64 {
    number
        .strip_prefix(&format!("{ISSUER}-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{number}` is not one of the issuer's numbers"))
}

fn day_of(now_s: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp(now_s, 0)
        .expect("a time")
        .date_naive()
}

/// A client recording a payment: retries what is retryable. Also says whether an attempt
/// failed before (so that "already recorded" may be its own lost write).
async fn pay_client<S: Store>(
    store: &S,
    config: &RaterConfig,
    p: &PaymentInput,
) -> (Result<PaymentOutcome, RaterError>, bool) {
    let mut retried = false;
    for _ in 0..CLIENT_ATTEMPTS_MAX {
        match record_payment(store, config, p).await {
            Err(e) if e.retryable() => {
                retried = true;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r => return (r, retried),
        }
    }
    panic!(
        "payment {} made no progress in {CLIENT_ATTEMPTS_MAX} attempts",
        p.reference
    );
}

/// One run of a close: retried whole while it fails before finalizing anything (a store read
/// of its own failed), as the scheduler retries the function.
async fn close_client<S: Store>(
    store: &S,
    config: &RaterConfig,
    period: BillingPeriod,
) -> CloseReport {
    for _ in 0..CLIENT_ATTEMPTS_MAX {
        match close(store, config, period, Finalizing::default()).await {
            Ok(r) => return r,
            Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("closing {}: {e}", period.id()),
        }
    }
    panic!(
        "the close of {} made no progress in {CLIENT_ATTEMPTS_MAX} attempts",
        period.id()
    );
}

/// The schedule's reruns of a close until one reports no failure; every report.
async fn close_until_done<S: Store>(
    store: &S,
    config: &RaterConfig,
    period: BillingPeriod,
    events: &Stats,
) -> Vec<CloseReport> {
    let mut reports = Vec::new();
    for _ in 0..CLOSE_RUNS_MAX {
        let r = close_client(store, config, period).await;
        let done = r.failed == 0;
        reports.push(r);
        if done {
            return reports;
        }
        events.bump("close rerun after failed accounts");
    }
    panic!(
        "the close of {} still failed after {CLOSE_RUNS_MAX} runs: {:?}",
        period.id(),
        reports.last().map(|r| &r.failures)
    );
}

fn refused_name(code: &str) -> &'static str {
    match code {
        "bad_request" => "payment refused: bad request",
        "payment_conflict" => "payment refused: reference reused",
        "unknown_account" => "payment refused: unknown account",
        "period_closed" => "payment refused: period closed",
        _ => "payment refused: other",
    }
}

impl<B: Backend> Sim<B> {
    /// The model's account summary of `account`'s `month` for an invoice of `total`, after
    /// the account's last final invoice, with the payments dated in the month.
    pub(super) fn model_statement(
        &self,
        account: &str,
        month: usize,
        total: rust_decimal::Decimal,
        issued: bool,
    ) -> (ModelStatement, ModelPayments) {
        let last = self.chain.last(account);
        assert!(
            last.is_none_or(|(m, _)| m < month),
            "{account}'s chain is past month {month}"
        );
        let payments = self.chain.payments(account, month);
        let amounts: Vec<_> = payments.iter().map(|p| p.1).collect();
        let st = reference::statement(
            &self.scen.model,
            account,
            last.map(|l| l.1),
            &amounts,
            total,
            issued,
        );
        (st, payments)
    }

    /// A final invoice equals the model's final of its account and month, figure by figure.
    pub(super) fn check_final(&self, what: &'static str, inv: &Invoice, month: usize) {
        let key = (inv.account.clone(), month);
        let f = self.chain.finals.get(&key).unwrap_or_else(|| {
            panic!(
                "{what}: {} {} is final ({:?}) but the model has no final invoice for it",
                inv.account, inv.period_id, inv.number
            )
        });
        let minor_units = self.scen.model.minor_units;
        let terms = self.scen.model.books[&inv.account].terms_days;
        let r = if inv.kind != InvoiceKind::Final || inv.number.as_ref() != Some(&f.number) {
            Err(format!(
                "kind {:?} number {:?}, the model's {}",
                inv.kind, inv.number, f.number
            ))
        } else if (inv.issue_date, inv.due_date)
            != (
                Some(f.issued_on),
                f.issued_on
                    .checked_add_days(chrono::Days::new(terms.into())),
            )
        {
            Err(format!(
                "issued {:?} due {:?}, the model's {} plus {terms} days",
                inv.issue_date, inv.due_date, f.issued_on
            ))
        } else {
            reference::compare(inv, &f.usage, minor_units).and_then(|()| {
                reference::compare_statement(inv, &f.statement, &f.payments, minor_units)
            })
        };
        if let Err(e) = r {
            panic!(
                "{what} of {} {} differs from the reference model: {e}",
                inv.account, inv.period_id
            );
        }
        self.checks.bump(what);
    }

    /// The month of a payment's date, if it is one of the scenario's.
    fn month_of_date(&self, at: DateTime<Utc>) -> usize {
        self.scen
            .months
            .iter()
            .position(|m| m.period.contains(at))
            .expect("payments are dated in the scenario's months")
    }

    fn note_paid(&mut self, p: &PaymentInput) {
        let month = self.month_of_date(p.date);
        self.chain
            .paid
            .entry((p.account.clone(), month))
            .or_default()
            .push((p.reference.clone(), p.amount));
    }

    /// Sends one of the month's payments and checks what came of it: recorded; the same again
    /// a no-op; a bad one refused with its code. Neither of the last two writes anything.
    pub(super) async fn pay(&mut self, ev: &PaymentEvent) {
        let p = &ev.input;
        let before = match ev.expect {
            PaymentExpect::Recorded => None,
            _ => Some(self.embedded().items().await),
        };
        let (r, retried) = pay_client(&*self.store, &self.config, p).await;
        match (ev.expect, r) {
            (PaymentExpect::Recorded, Ok(PaymentOutcome::Recorded)) => {
                self.events.bump("payments recorded");
            }
            (PaymentExpect::Recorded, Ok(PaymentOutcome::AlreadyRecorded)) if retried => {
                self.events
                    .bump("payment answer lost, found recorded on retry");
            }
            (PaymentExpect::Again, Ok(PaymentOutcome::AlreadyRecorded)) => {
                self.events.bump("same payment again");
            }
            (PaymentExpect::Refused(code), Err(e)) if e.code() == code => {
                self.events.bump(refused_name(code));
            }
            (expect, other) => panic!(
                "payment {} of {} ({:?}): expected {expect:?}, got {other:?}",
                p.reference, p.account, p.amount
            ),
        }
        match before {
            None => self.note_paid(p),
            Some(before) => {
                assert_eq!(
                    self.embedded().items().await,
                    before,
                    "payment {} ({:?}) wrote something",
                    p.reference,
                    ev.expect
                );
                self.checks
                    .bump("payment again or refused, nothing written");
            }
        }
    }

    /// The accounts the model says month `m`'s close must finalize now.
    async fn model_active(&self, m: usize) -> Vec<String> {
        let committed = self.committed().await;
        let mut out = Vec::new();
        for account in &self.scen.accounts {
            if self.must_finalize(&committed, account, m) {
                out.push(account.clone());
            }
        }
        out
    }

    /// Whether `account`'s `m` must have a final invoice: it has something to bill there
    /// ([`reference::active`]) and its chain has not passed the month (a later month's final
    /// invoice brought forward everything that was owed).
    fn must_finalize(&self, committed: &BTreeSet<usize>, account: &str, m: usize) -> bool {
        if self.chain.finals.contains_key(&(account.to_string(), m)) {
            return true;
        }
        let last = self.chain.last(account);
        if last.is_some_and(|(lm, _)| lm > m) {
            return false;
        }
        let usage = self.model_invoice(committed, account, m);
        reference::active(
            &self.scen.model,
            account,
            last.map(|l| l.1),
            usage.records as usize,
            self.chain.payments(account, m).len(),
        )
    }

    /// A close (and a finalize) before the month ends is refused and writes nothing.
    async fn close_too_early(&mut self, m: usize) {
        let period = self.scen.period(m);
        if self.clock.load(Ordering::SeqCst) >= period.end().timestamp() {
            return;
        }
        let before = self.embedded().items().await;
        let r = close(&*self.store, &self.config, period, Finalizing::default()).await;
        assert!(
            matches!(r, Err(RaterError::PeriodNotEnded { .. })),
            "a close before {} ends: {r:?}",
            period.id()
        );
        let account = self.rng.pick(&self.scen.accounts).clone();
        let r = finalize_client(&*self.store, &self.config, &account, period).await;
        assert!(
            matches!(r, Err(RaterError::PeriodNotEnded { .. })),
            "a finalize before {} ends: {r:?}",
            period.id()
        );
        assert_eq!(
            self.embedded().items().await,
            before,
            "a close before the month ended wrote something"
        );
        self.checks
            .bump("close before the month ends refused, nothing written");
    }

    /// Month `m`'s close: the clock moved past the month's end, maybe an operator finalizing
    /// some accounts first, then the close through one fault pattern (a crash after k
    /// finalizations; 2 or 3 closes at once, one payment racing them; or a plain run under
    /// the store's faults), rerun until a run has no failure; then the checks.
    pub(super) async fn close_month(&mut self, m: usize) {
        let period = self.scen.period(m);
        if m == 0 || self.rng.chance(30) {
            self.close_too_early(m).await;
        }
        let now = period.end().timestamp() + self.rng.range(3_600, 3 * 86_400) as i64;
        self.clock.fetch_max(now, Ordering::SeqCst);
        let now = self.clock.load(Ordering::SeqCst);
        if self.rng.chance(30) {
            self.operator_finalizes(m).await;
        }
        let mut reports = Vec::new();
        let mode = self.rng.below(100);
        if mode < 35 {
            reports.push(self.close_crashing(m).await);
            if self.rng.chance(50) {
                reports.extend(self.concurrent_closes(m).await);
            }
        } else if mode < 70 {
            reports.extend(self.concurrent_closes(m).await);
        } else {
            self.events.bump("month closes (one at a time)");
        }
        // The schedule's reruns, until a run finalizes every account it must.
        reports.extend(close_until_done(&*self.store, &self.config, period, &self.events).await);
        assert_eq!(
            self.clock.load(Ordering::SeqCst),
            now,
            "the clock moved during the close"
        );
        self.settle(m, &reports, day_of(now)).await;
        self.chain.closed = m + 1;
    }

    /// An operator finalizes 1 to 3 of the accounts the close would (sometimes 2 or 3
    /// finalizes of one at once) before the close: the close counts them as final already.
    async fn operator_finalizes(&mut self, m: usize) {
        let period = self.scen.period(m);
        let mut active = self.model_active(m).await;
        self.rng.shuffle(&mut active);
        let n = self.rng.range(1, 3) as usize;
        for account in active.into_iter().take(n) {
            let inv = if self.rng.chance(25) {
                self.concurrent_finalize(&account, period).await
            } else {
                match finalize_client(&*self.store, &self.config, &account, period).await {
                    Ok(inv) => inv,
                    // Our own earlier attempt finalized it and its answer was lost.
                    Err(RaterError::AlreadyFinalized { .. }) => {
                        self.events
                            .bump("finalize answer lost, found final on retry");
                        invoice_client(&*self.store, &self.config, &account, period).await
                    }
                    Err(e) => panic!("finalizing {account}: {e}"),
                }
            };
            assert_eq!(inv.kind, InvoiceKind::Final);
            let number = inv.number.clone().expect("a final invoice has a number");
            let shown = invoice_client(&*self.store, &self.config, &account, period).await;
            assert_eq!(
                shown, inv,
                "the invoice shown after finalizing is the final one"
            );
            self.events
                .bump("accounts finalized by an operator before the close");
            self.finalize_again(&account, m, &number).await;
        }
    }

    /// Finalizing a final account period again is refused and names the same number.
    async fn finalize_again(&mut self, account: &str, m: usize, number: &str) {
        let period = self.scen.period(m);
        match finalize_client(&*self.store, &self.config, account, period).await {
            Err(RaterError::AlreadyFinalized { number: n, .. }) => assert_eq!(n, number),
            other => panic!("a second finalize of {account} was not refused: {other:?}"),
        }
        self.checks.bump("second finalize refused, same number");
    }

    /// 2 or 3 finalizes of one account period at once: one invoice.
    async fn concurrent_finalize(&mut self, account: &str, period: BillingPeriod) -> Invoice {
        let mut tasks = Vec::new();
        for _ in 0..self.rng.range(2, 3) {
            let (store, config, account) =
                (self.store.clone(), self.config.clone(), account.to_string());
            tasks.push(tokio::spawn(async move {
                finalize_client(&*store, &config, &account, period).await
            }));
        }
        let mut issued = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                Ok(inv) => issued.push(inv),
                Err(RaterError::AlreadyFinalized { .. }) => {}
                Err(e) => panic!("finalizing {account}: {e}"),
            }
        }
        self.events.bump("concurrent finalizes");
        assert!(
            issued.len() <= 1,
            "{} final invoices for {account}",
            issued.len()
        );
        invoice_client(&*self.store, &self.config, account, period).await
    }

    /// A close whose process dies after k finalizations (every later write fails until it is
    /// replaced): at most k invoices appear, every account it could not finalize is reported as
    /// a retryable failure.
    async fn close_crashing(&mut self, m: usize) -> CloseReport {
        let period = self.scen.period(m);
        let active = self.model_active(m).await.len();
        let k = self.rng.below(active as u64 + 2) as usize;
        let before = self.finals_in_store(m).await;
        self.store.inner().crash_after(k);
        let r = close_client(&*self.store, &self.config, period).await;
        self.store.inner().heal();
        let written = self.finals_in_store(m).await - before;
        assert!(
            written <= k && r.finalized as usize <= written,
            "a close crashing after {k} writes issued {written} invoices, reported {}",
            r.finalized
        );
        self.events.bump("close crashed after k finalizations");
        self.checks.bump("crashed close wrote at most k invoices");
        r
    }

    /// Final invoices of month `m` in the store now.
    async fn finals_in_store(&self, m: usize) -> usize {
        let period_id = self.scen.period(m).id();
        let mut n = 0;
        for account in &self.scen.accounts {
            if self
                .embedded()
                .final_invoice(account, &period_id)
                .await
                .expect("read")
                .is_some()
            {
                n += 1;
            }
        }
        n
    }

    /// 2 or 3 closes of month `m` at once, each rerun until it has no failure, and half the
    /// time a payment racing them (dated in the month closing, or in the next).
    async fn concurrent_closes(&mut self, m: usize) -> Vec<CloseReport> {
        let period = self.scen.period(m);
        let mut tasks = Vec::new();
        for _ in 0..self.rng.range(2, 3) {
            let (store, config, events) =
                (self.store.clone(), self.config.clone(), self.events.clone());
            tasks.push(tokio::spawn(async move {
                close_until_done(&*store, &config, period, &events).await
            }));
        }
        let racing = self.rng.chance(50).then(|| {
            let month = if m + 1 < self.scen.months.len() && self.rng.chance(50) {
                m + 1
            } else {
                m
            };
            let p = self.fresh_payment(month, format!("pay-race-{m}"));
            let (store, config, q) = (self.store.clone(), self.config.clone(), p.clone());
            let task = tokio::spawn(async move { pay_client(&*store, &config, &q).await });
            (p, month, task)
        });
        let mut reports = Vec::new();
        for t in tasks {
            reports.extend(t.await.expect("task"));
        }
        self.events.bump("concurrent closes of one month");
        if let Some((p, month, task)) = racing {
            match task.await.expect("task").0 {
                Ok(_) => {
                    self.note_paid(&p);
                    self.events.bump("payment racing a close: recorded");
                }
                Err(RaterError::PeriodClosed { number, .. }) => {
                    // Refused because the account's month was final by then: it still is.
                    assert_eq!(month, m);
                    let fin = self
                        .embedded()
                        .final_invoice(&p.account, &period.id())
                        .await
                        .expect("read");
                    assert_eq!(fin.and_then(|i| i.number), Some(number));
                    self.events
                        .bump("payment racing a close: refused, period closed");
                }
                Err(e) => panic!("a payment racing a close: {e}"),
            }
        }
        reports
    }

    /// A new payment of a random account dated in `month`.
    fn fresh_payment(&mut self, month: usize, reference: String) -> PaymentInput {
        let period = self.scen.period(month);
        let seconds = i64::from(period.days_in_month()) * 86_400;
        PaymentInput {
            account: self.rng.pick(&self.scen.accounts).clone(),
            date: period.start + chrono::Duration::seconds(self.rng.below(seconds as u64) as i64),
            amount: money(&mut self.rng, self.scen.model.minor_units),
            currency: self.scen.currency.clone(),
            reference,
            payee: None,
        }
    }

    /// What every run of a close of month `m` reported adds up, no account was finalized by
    /// two runs, numbers grow within a run, and every failure is retryable.
    fn check_reports(&self, m: usize, reports: &[CloseReport]) -> BTreeSet<String> {
        let period_id = self.scen.period(m).id();
        let mut issued = BTreeSet::new();
        for r in reports {
            assert_eq!(r.period, period_id);
            assert_eq!(r.accounts as usize, self.scen.accounts.len());
            assert_eq!(
                r.finalized + r.already_final + r.skipped + r.failed,
                r.accounts,
                "a close report that does not add up: {r:?}"
            );
            assert_eq!(r.issued.len() as u64, r.finalized);
            assert_eq!(r.failures.len() as u64, r.failed);
            if let Some(f) = r.failures.iter().find(|f| !f.retryable) {
                panic!(
                    "the close of {period_id} failed for good on {}: {} {}",
                    f.account, f.code, f.message
                );
            }
            assert!(
                r.issued
                    .windows(2)
                    .all(|w| serial(&w[0].number) < serial(&w[1].number)),
                "one run's numbers do not grow: {:?}",
                r.issued
            );
            for c in &r.issued {
                assert!(
                    issued.insert(c.account.clone()),
                    "{} was finalized by two runs of the close of {period_id}",
                    c.account
                );
            }
        }
        self.checks
            .bump("close reports add up, each account issued once");
        issued
    }

    /// After month `m`'s finalizations: every account the model says must be final is, with
    /// the model's figures to the minor unit, and no other; the new numbers continue the
    /// series without a gap; the last run of the close skipped exactly the others; the balance
    /// items and histories are the model's chain.
    async fn settle(&mut self, m: usize, reports: &[CloseReport], issued_on: NaiveDate) {
        let issued_by_runs = self.check_reports(m, reports);
        let period_id = self.scen.period(m).id();
        let committed = self.committed().await;
        let mut numbers = Vec::new();
        let mut skipped = Vec::new();
        let mut finals = 0u64;
        for account in self.scen.accounts.clone() {
            let real = self
                .embedded()
                .final_invoice(&account, &period_id)
                .await
                .expect("read");
            let key = (account.clone(), m);
            if let Some(f) = self.chain.finals.get(&key) {
                let real = real.expect("a final invoice stays");
                assert_eq!(real.number.as_ref(), Some(&f.number));
                finals += 1;
                continue;
            }
            let must = self.must_finalize(&committed, &account, m);
            let inv = match (must, real) {
                (false, None) => {
                    skipped.push(account.clone());
                    continue;
                }
                (false, Some(inv)) => panic!(
                    "{account} had nothing to bill in {period_id} but was finalized: {:?}",
                    inv.number
                ),
                (true, None) => {
                    panic!("{account} had something to bill in {period_id} but is not final")
                }
                (true, Some(inv)) => inv,
            };
            let usage = self.model_invoice(&committed, &account, m);
            let (statement, payments) = self.model_statement(&account, m, usage.total, true);
            let number = inv.number.clone().expect("a final invoice has a number");
            self.chain.finals.insert(
                key,
                Final {
                    number: number.clone(),
                    usage,
                    statement,
                    payments,
                    issued_on,
                },
            );
            self.check_final("final invoice = model", &inv, m);
            numbers.push(serial(&number));
            finals += 1;
        }
        assert!(
            issued_by_runs
                .iter()
                .all(|a| self.chain.finals.contains_key(&(a.clone(), m))),
            "a close reported an account issued that is not final"
        );
        numbers.sort_unstable();
        let want: Vec<u64> =
            (self.chain.issued + 1..=self.chain.issued + numbers.len() as u64).collect();
        assert_eq!(
            numbers, want,
            "the numbers issued in the close of {period_id} do not continue the series without a gap"
        );
        self.chain.issued += numbers.len() as u64;
        let counter = self.embedded().counter(ISSUER).await.expect("counter");
        assert_eq!(
            counter, self.chain.issued,
            "the counter moved once per invoice"
        );
        self.checks.bump("invoice numbers gapless");
        let last = reports.last().expect("a close ran");
        // The close walks the accounts in id order.
        skipped.sort();
        assert_eq!(
            (
                last.skipped_accounts.clone(),
                last.finalized + last.already_final
            ),
            (skipped, finals),
            "the last run of the close of {period_id} skipped other accounts than the model"
        );
        self.checks
            .bump("close skipped exactly the accounts with nothing to bill");
        self.check_chain().await;
    }

    /// Every account's balance item is the model's chain (its last final invoice, what it
    /// carries, the prepaid credit left) and its history lists its final invoices, newest
    /// first.
    async fn check_chain(&self) {
        let mu = self.scen.model.minor_units;
        for account in &self.scen.accounts {
            let balance = self.embedded().balance(account).await.expect("balance");
            let got = balance.last.map(|l| {
                (
                    l.period,
                    l.number,
                    reference::minor(l.carried_forward, mu),
                    reference::minor(l.prepaid_remaining, mu),
                )
            });
            let want = self.chain.last(account).map(|(m, link)| {
                (
                    self.scen.period(m).id(),
                    self.chain.finals[&(account.clone(), m)].number.clone(),
                    link.carried_forward,
                    link.prepaid_remaining,
                )
            });
            assert_eq!(got, want, "the balance chain of {account}");
            let docs: Vec<_> = self
                .embedded()
                .history(account)
                .await
                .expect("history")
                .into_iter()
                .map(|d| (d.kind, d.period, d.number, reference::minor(d.total, mu)))
                .collect();
            let want: Vec<_> = self
                .chain
                .finals
                .range((account.clone(), 0)..=(account.clone(), usize::MAX))
                .rev()
                .map(|((_, m), f)| {
                    (
                        DocKind::Invoice,
                        self.scen.period(*m).id(),
                        f.number.clone(),
                        reference::minor(f.usage.total, mu),
                    )
                })
                .collect();
            assert_eq!(docs, want, "the history of {account}, newest first");
        }
        self.checks.bump("balance chain and history = model");
    }

    /// After month `m`'s close: late usage refused, a replay answered with the final invoices,
    /// a second finalize refused, and a payment dated in a closed month.
    pub(super) async fn after_close(&mut self, m: usize) {
        if let Some(late) = self.scen.months[m].late.clone() {
            let account = self.scen.records[late.records[0]].account.clone();
            match self.deliver_refused(&late, "late usage").await {
                RaterError::PeriodClosed {
                    account: a, number, ..
                } => {
                    assert_eq!(a, account);
                    assert_eq!(
                        Some(&number),
                        self.chain.finals.get(&(a, m)).map(|f| &f.number)
                    );
                }
                other => panic!("late usage: wrong error {other:?}"),
            }
            self.events.bump("late usage for a finalized period");
            self.checks.bump("late usage refused, nothing written");
        }
        // A replay of a batch committed before the close still answers, with final invoices.
        // (A batch delivered in shards replays by its export's key, not as a request.)
        let batches: Vec<usize> = self.scen.months[m]
            .batches
            .iter()
            .copied()
            .filter(|b| !self.sharded.contains_key(b))
            .collect();
        if !batches.is_empty() {
            let b = *self.rng.pick(&batches);
            let before = self.embedded().items().await;
            let r = self.deliver(b).await;
            assert!(r.replayed);
            let committed = self.committed().await;
            for inv in &r.invoices {
                assert_eq!(inv.kind, InvoiceKind::Final);
                self.check_invoice("replay after close = final", inv, &committed);
            }
            assert_eq!(
                self.embedded().items().await,
                before,
                "a replay wrote something"
            );
            self.events.bump("replay after the period closed");
        }
        let finals: Vec<(String, String)> = self
            .chain
            .finals
            .iter()
            .filter(|((_, fm), _)| *fm == m)
            .map(|((a, _), f)| (a.clone(), f.number.clone()))
            .collect();
        if !finals.is_empty() && self.rng.chance(50) {
            let (account, number) = self.rng.pick(&finals).clone();
            self.finalize_again(&account, m, &number).await;
        }
        if self.rng.chance(60) {
            self.payment_into_closed_month(m).await;
        }
    }

    /// A payment dated in a closed month (this one or an earlier one): refused when the
    /// account's month is final, or its chain has a later final invoice (it would be on no
    /// invoice); otherwise recorded, and the month's next close finalizes the account with it.
    async fn payment_into_closed_month(&mut self, m: usize) {
        let j = self.rng.below(m as u64 + 1) as usize;
        let p = self.fresh_payment(j, format!("pay-late-{m}"));
        let last = self.chain.last(&p.account);
        let closing = self
            .chain
            .finals
            .get(&(p.account.clone(), j))
            .map(|f| f.number.clone())
            .or_else(|| {
                last.filter(|(lm, _)| *lm > j)
                    .map(|(lm, _)| self.chain.finals[&(p.account.clone(), lm)].number.clone())
            });
        let before = self.embedded().items().await;
        let (r, retried) = pay_client(&*self.store, &self.config, &p).await;
        let Some(number) = closing else {
            match r {
                Ok(PaymentOutcome::Recorded) => {}
                Ok(PaymentOutcome::AlreadyRecorded) if retried => {}
                other => panic!(
                    "a payment of {} dated in {} (not final for it): {other:?}",
                    p.account,
                    self.scen.period(j).id()
                ),
            }
            self.note_paid(&p);
            self.events
                .bump("payment of an account the close skipped, its month closed again");
            // The schedule's next run of the month's close finalizes the account with it.
            let period = self.scen.period(j);
            let reports = close_until_done(&*self.store, &self.config, period, &self.events).await;
            let now = self.clock.load(Ordering::SeqCst);
            self.settle(j, &reports, day_of(now)).await;
            return;
        };
        match r {
            Err(RaterError::PeriodClosed { number: n, .. }) => {
                if self.chain.finals.contains_key(&(p.account.clone(), j)) {
                    assert_eq!(n, number, "the refusal names the month's final invoice");
                }
            }
            other => panic!(
                "a payment of {} dated in {} (closed for it by {number}): {other:?}",
                p.account,
                self.scen.period(j).id()
            ),
        }
        assert_eq!(
            self.embedded().items().await,
            before,
            "a refused payment wrote something"
        );
        self.events.bump(refused_name("period_closed"));
        self.checks
            .bump("payment into a closed period refused, nothing written");
    }

    /// The run's last checks: a finalize out of order refused, the store's payments are the
    /// ones the clients saw recorded, and an account's history through the faults.
    pub(super) async fn end_of_run(&mut self) {
        let out_of_order = self.scen.accounts.iter().find_map(|a| {
            let (lm, _) = self.chain.last(a)?;
            (0..lm)
                .find(|j| !self.chain.finals.contains_key(&(a.clone(), *j)))
                .map(|j| (a.clone(), j))
        });
        if let Some((account, j)) = out_of_order {
            let before = self.embedded().items().await;
            let r =
                finalize_client(&*self.store, &self.config, &account, self.scen.period(j)).await;
            assert!(
                matches!(r, Err(RaterError::FinalizedOutOfOrder { .. })),
                "finalizing {account}'s {} after a later month: {r:?}",
                self.scen.period(j).id()
            );
            assert_eq!(self.embedded().items().await, before);
            self.checks
                .bump("finalize out of order refused, nothing written");
        }
        for account in &self.scen.accounts {
            let mut got: ModelPayments = self
                .embedded()
                .payments(account)
                .await
                .expect("payments")
                .into_iter()
                .map(|p| (p.reference, p.amount))
                .collect();
            got.sort();
            let mut want: ModelPayments = self
                .chain
                .paid
                .iter()
                .filter(|((a, _), _)| a == account)
                .flat_map(|(_, ps)| ps.iter().cloned())
                .collect();
            want.sort();
            assert_eq!(got, want, "the payments stored for {account}");
        }
        self.checks.bump("stored payments = those recorded");
        let account = self.rng.pick(&self.scen.accounts).clone();
        let mut docs = None;
        for _ in 0..CLIENT_ATTEMPTS_MAX {
            match history(&*self.store, &self.config, &account).await {
                Ok(d) => {
                    docs = Some(d);
                    break;
                }
                Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("history of {account}: {e}"),
            }
        }
        let numbers: Vec<String> = docs
            .expect("the history answered")
            .into_iter()
            .map(|d| d.number)
            .collect();
        let want: Vec<String> = self
            .chain
            .finals
            .range((account.clone(), 0)..=(account.clone(), usize::MAX))
            .rev()
            .map(|(_, f)| f.number.clone())
            .collect();
        assert_eq!(numbers, want, "the history of {account} through the rater");
        assert_eq!(
            self.chain.issued,
            self.chain.finals.len() as u64,
            "one number per final invoice"
        );
        let highest = self.chain.finals.values().map(|f| serial(&f.number)).max();
        assert_eq!(
            highest.unwrap_or(0),
            self.chain.issued,
            "the last number is the count"
        );
        self.checks.bump("history through the rater = model");
    }
}
