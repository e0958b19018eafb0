//! Step 5, corrections: credit and debit notes against final invoices, for late usage and for periods re-rated under a corrected catalog; a final invoice is never edited.
//!
//! A closed period is corrected by pricing it again as it stands now (its committed usage,
//! the deployment's catalog and accounts, the statement its final invoice was issued with)
//! and issuing the difference against the invoice and the corrections it already has
//! (`pricing::note`): so a correction is always "what the period should cost now, less what
//! was billed", never the increment of one batch, and issuing it again after a crash or from
//! a second process finds nothing left to issue.
//!
//! Late usage reaches a closed period only when the account's policy lets it in (`note` or
//! `next_period`, `pricing::late_usage_policy`); its commit bumps the period's late-usage
//! marker (`ACCOUNT#<account>` / `LATE#<period>`). Under `note` the batch's answer issues the
//! note at once (and any close or finalize of the account issues what a crash left); under
//! `next_period` the account's next final invoice bills the difference in its `Adjustments`
//! section and stores it as an unnumbered correction of the old invoice. Clearing a marker is
//! conditional on the version read, so a late batch committed meanwhile is never missed.
//!
//! A period shorter than a month (an hour, a day, a week) is priced after the month's earlier
//! usage (monthly allowances and minimums are granted once a month), so late usage into it also
//! re-prices the month's later closed periods: they are corrected with it, before it (its
//! marker is cleared last), and the month's finals and notes add up to its price as it stands.
//!
//! A closed period stays with the issuer that billed it when the book moves a customer to
//! another reseller (or to or from the provider): its corrections are that issuer's notes, at
//! its prices, whatever the account's policy (`billed_elsewhere`). Known gap: under
//! `next_period`, a customer moved away and back within one month of hourly, daily or weekly
//! periods does not have the other issuer's later periods of that month re-priced by late usage
//! into an earlier one.

use pricing::wholesale::Resold;
use pricing::{Account, BillingPeriod, Invoice, LateUsagePolicy, Note, NoteReason, Statement};
use serde::{Deserialize, Serialize};

use crate::config::RaterConfig;
use crate::error::{RaterError, StoreError};
use crate::limits::{ADJUSTED_PERIODS_MAX, FINALIZE_ATTEMPTS_MAX, FINAL_INVOICE_BYTES_MAX};
use crate::model::{note_number, Balance, DocKind, DocRef, ResoldMarker, StoredNote};
use crate::retry::backoff;
use crate::store::{
    month_before_cached, AdjustmentWrite, MarkerCheck, NoteInto, NoteWrite, Store, UsageCache,
};

/// A closed period as its corrections start from.
struct ClosedPeriod {
    invoice: Invoice,
    statement: Statement,
    corrections: Vec<StoredNote>,
}

impl ClosedPeriod {
    fn earlier(&self) -> Vec<Note> {
        self.corrections.iter().map(|c| c.note.clone()).collect()
    }
}

/// The final invoice of `account`'s period, the statement it was priced with and its
/// corrections. Refused with `NoFinalInvoice` when the period has no final invoice.
async fn closed_period<S: Store>(
    store: &S,
    account: &str,
    period_id: &str,
) -> Result<ClosedPeriod, RaterError> {
    let Some(invoice) = store.final_invoice(account, period_id).await? else {
        return Err(RaterError::NoFinalInvoice {
            account: account.to_string(),
            period: period_id.to_string(),
        });
    };
    let statement = match store.final_statement(account, period_id).await? {
        Some(st) => st,
        // A final issued before statements were stored: its own figures are its statement
        // (such invoices never billed adjustments).
        None => Statement {
            brought_forward: invoice.brought_forward,
            prepaid_available: invoice.prepaid_available.unwrap_or_default(),
            payments: invoice.payments.clone(),
            issue_date: invoice.issue_date,
            ..Statement::default()
        },
    };
    let corrections = store.corrections(account, period_id).await?;
    Ok(ClosedPeriod {
        invoice,
        statement,
        corrections,
    })
}

/// The difference between what `closed` stands at and what its period prices at now (with
/// the month's earlier usage, `month_before`, for a period shorter than a month).
#[allow(clippy::too_many_arguments)]
fn difference(
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    closed: &ClosedPeriod,
    usage: &pricing::Usage,
    month_before: Option<pricing::Usage>,
    reason: NoteReason,
    issue_date: chrono::NaiveDate,
    accounts_version: &str,
) -> Result<Option<Note>, RaterError> {
    let statement = Statement {
        month_before,
        ..closed.statement.clone()
    };
    let mut now = pricing::invoice_with(config.catalog_for(acc), acc, period, usage, &statement)?;
    now.accounts_version = Some(accounts_version.to_string());
    let note = pricing::note(&closed.invoice, &closed.earlier(), &now, reason, issue_date)?;
    Ok(note.map(|mut n| {
        n.accounts_version = Some(accounts_version.to_string());
        n
    }))
}

/// The day `now_s` falls on (UTC): a note's issue date.
pub(crate) fn day_of(now_s: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(now_s, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The account's late-usage policy.
pub fn policy(config: &RaterConfig, acc: &Account) -> LateUsagePolicy {
    pricing::late_usage_policy(config.catalog_for(acc), acc)
}

/// `acc` as `invoice` billed it, with the accounts version that record is of: the account
/// itself (the deployment's version) while the same issuer bills it. A customer the book moved
/// to another reseller (or to or from the provider) since is the account record the period
/// was last priced with (the accounts version of its latest correction under that issuer, in
/// `corrections`, else of the invoice, as stored): its tax jurisdiction, region, discounts and
/// so on are the old reseller's price list's, which the current record need not be. Without
/// that version stored, the current record under the old issuer ([`RaterConfig::as_billed`]).
pub(crate) async fn account_as_billed<'a, S: Store>(
    store: &S,
    config: &'a RaterConfig,
    acc: &'a Account,
    invoice: &Invoice,
    corrections: &[StoredNote],
) -> Result<(std::borrow::Cow<'a, Account>, String), RaterError> {
    let catalog_id = &invoice.bill.catalog_id;
    let reseller = crate::config::reseller_of_catalog(catalog_id);
    // Latest first; a version whose book no longer has the account under that reseller (a
    // note issued after the move may name the book of the move) gives way to an older one.
    let versions: Vec<&str> = corrections
        .iter()
        .rev()
        .filter(|c| crate::config::reseller_of_catalog(&c.note.catalog_id) == reseller)
        .filter_map(|c| c.note.accounts_version.as_deref())
        .chain(invoice.accounts_version.as_deref())
        .collect();
    account_in_versions(store, config, acc, catalog_id, &versions).await
}

/// `acc` as a document priced with catalog `catalog_id` billed it: itself (with the
/// deployment's accounts version) while the same issuer bills it, else its record in the first
/// of the stored accounts `versions` that has it under that issuer (with that version), else
/// the current record under that issuer ([`RaterConfig::as_billed`]).
pub(crate) async fn account_in_versions<'a, S: Store>(
    store: &S,
    config: &'a RaterConfig,
    acc: &'a Account,
    catalog_id: &str,
    versions: &[&str],
) -> Result<(std::borrow::Cow<'a, Account>, String), RaterError> {
    let reseller = crate::config::reseller_of_catalog(catalog_id);
    let deployment = || config.accounts.version.clone();
    if reseller == acc.reseller.as_deref() {
        return Ok((std::borrow::Cow::Borrowed(acc), deployment()));
    }
    let current = config.as_billed(acc, catalog_id)?;
    let mut versions = versions.to_vec();
    versions.dedup();
    for version in versions {
        let Some(item) = store
            .config(crate::model::ConfigKind::Accounts, Some(version))
            .await?
        else {
            continue;
        };
        let book: pricing::AccountBook = serde_json::from_str(&item.body)
            .map_err(|e| RaterError::Config(format!("stored accounts version `{version}`: {e}")))?;
        if let Some(a) = book
            .accounts
            .into_iter()
            .find(|a| a.id == acc.id && a.reseller.as_deref() == reseller)
        {
            return Ok((std::borrow::Cow::Owned(a), version.to_string()));
        }
    }
    Ok((current, deployment()))
}

/// Whether `acc`'s closed period `period_id` was billed by another issuer than bills the
/// account now (the book moved the customer to another reseller, or to or from the provider,
/// since): its corrections are notes of that issuer, whatever the account's policy, since the
/// account's next invoice is another issuer's and cannot bill them.
pub(crate) async fn billed_elsewhere<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period_id: &str,
) -> Result<bool, RaterError> {
    if !config.has_resellers() {
        return Ok(false);
    }
    Ok(match store.final_invoice(&acc.id, period_id).await? {
        Some(inv) => {
            crate::config::reseller_of_catalog(&inv.bill.catalog_id) != acc.reseller.as_deref()
        }
        None => false,
    })
}

/// Issues the note that brings `account`'s closed `period` to what it prices at now (late
/// usage committed since, or a corrected catalog or account), numbered next in the issuer's
/// note series, and clears the period's late-usage marker. `None` when nothing changed: a
/// re-rate that changes nothing issues nothing. Refused with `NoFinalInvoice` when the period
/// has no final invoice (nothing written).
pub async fn correct<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    reason: NoteReason,
) -> Result<Option<Note>, RaterError> {
    match correct_at(store, config, account, period, reason, None, None).await? {
        Corrected::Issued(note) => Ok(note.map(|n| *n)),
        // Not answered when no marker is expected; a conflict (retryable) if it were.
        Corrected::Moved => Err(RaterError::Store(StoreError::NoteConflict {
            account: account.to_string(),
            period: period.id(),
        })),
    }
}

/// What [`correct_at`] did.
enum Corrected {
    /// Issued this note, or none (nothing changed).
    Issued(Option<Box<Note>>),
    /// The period's late-usage marker is not as the caller read it: a late batch came in
    /// meanwhile, and what the caller corrected from its read may miss it. Nothing written.
    Moved,
}

/// [`correct`], with the period's marker as the caller read it (`expected`), or as read here
/// (`None`), and the month's earlier periods read through `cache` when given.
async fn correct_at<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    reason: NoteReason,
    expected: Option<MarkerCheck>,
    cache: Option<&UsageCache>,
) -> Result<Corrected, RaterError> {
    let acc = config.known_account(account)?;
    let period_id = period.id();
    for attempt in 0..FINALIZE_ATTEMPTS_MAX {
        // The marker first: a late batch committed after this read moves it, and the write
        // below is refused.
        let marker = store
            .late_markers(account)
            .await?
            .into_iter()
            .find(|m| m.period_id == period_id)
            .map_or(MarkerCheck::Absent, |m| MarkerCheck::Version(m.version));
        if expected.is_some_and(|e| e != marker) {
            return Ok(Corrected::Moved);
        }
        let mut closed = closed_period(store, account, &period_id).await?;
        // Priced, numbered and issued as the invoice was: a customer moved to another reseller
        // since is corrected by the one that billed the period, at its prices.
        let (billed, version) =
            account_as_billed(store, config, acc, &closed.invoice, &closed.corrections).await?;
        let acc = billed.as_ref();
        resold_as_now(store, config, acc, period, &mut closed, reason).await?;
        let usage = store.period_usage(account, &period_id).await?.usage;
        let before = month_before_cached(store, account, period, cache).await?;
        let counter = store.note_counter(config.issuer_for(acc)).await?;
        let today = day_of(config.now_s());
        let note = difference(
            config, acc, period, &closed, &usage, before, reason, today, &version,
        )?;
        if note.is_none() && marker == MarkerCheck::Absent {
            return Ok(Corrected::Issued(None));
        }
        let stored = note.map(|mut n| {
            n.number = Some(note_number(config.issuer_for(acc), counter + 1));
            StoredNote {
                seq: closed.corrections.len() as u32 + 1,
                note: n,
                billed_on: None,
            }
        });
        if let Some(s) = &stored {
            // Stored in parts like a final invoice (one DynamoDB item holds 400 KB); larger
            // than a finalize may store is refused whole, before anything is written.
            let bytes = serde_json::to_vec(s).expect("notes serialize").len();
            if bytes > FINAL_INVOICE_BYTES_MAX {
                return Err(RaterError::NoteTooLarge {
                    account: account.to_string(),
                    period: period_id,
                    bytes,
                    max: FINAL_INVOICE_BYTES_MAX,
                });
            }
        }
        let doc = stored.as_ref().map(|s| doc_of(config, &s.note));
        let issuer = config.issuer_for(acc);
        let balance = store.balance(account).await?;
        let write = NoteWrite {
            into: note_into(&balance, issuer),
            balance_version: balance.version,
            issuer: issuer.to_string(),
            account: account.to_string(),
            period_id: period_id.clone(),
            note: stored,
            expected_counter: counter,
            marker,
            doc,
        };
        match store.issue_note(&write).await {
            Ok(()) => return Ok(Corrected::Issued(write.note.map(|s| Box::new(s.note)))),
            Err(StoreError::NoteConflict { .. }) => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(RaterError::Store(StoreError::NoteConflict {
        account: account.to_string(),
        period: period_id,
    }))
}

/// Where a note of `issuer` goes in its account's `balance`: owed to `issuer`
/// (`owed_elsewhere`) when another issuer's final invoice is the account's last, since that
/// issuer's invoices cannot ask for it; else brought forward by the next final invoice. Both
/// only while the last final invoice is the one read: another issuer's first invoice landing
/// first hands the balance over (`invoices::handed_over`) and makes the note owed elsewhere,
/// and `issuer`'s own landing first (the customer came back) brings what it was owed forward
/// (`invoices::brought_back`) and makes the note its next invoice's. The accounts book a
/// process holds does not decide it: a process on an older book may still take `issuer` for
/// the account's, after the new issuer's invoice.
fn note_into(balance: &Balance, issuer: &str) -> NoteInto {
    match &balance.last {
        Some(last) if !crate::model::issued_by(&last.number, issuer) => NoteInto::Elsewhere {
            last_period: last.period.clone(),
        },
        last => NoteInto::ChainAt {
            last_period: last.as_ref().map(|l| l.period.clone()),
        },
    }
}

/// A note's entry in its account's history.
fn doc_of(config: &RaterConfig, note: &Note) -> DocRef {
    DocRef {
        kind: match note.kind {
            pricing::NoteKind::Credit => DocKind::CreditNote,
            pricing::NoteKind::Debit => DocKind::DebitNote,
        },
        number: note.number.clone().unwrap_or_default(),
        period: note.period_id.clone(),
        issued_at_ms: config.now_s().saturating_mul(1000),
        total: note.total,
        currency: note.currency.clone(),
        corrects: Some(note.corrects.clone()),
    }
}

/// Issues the notes of every closed period of `acc` that took late usage, when its policy is
/// `note` (a batch's answer does this at once; a close or finalize of the account catches up
/// what a crash left). Returns the notes issued now.
pub async fn settle_late<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
) -> Result<Vec<Note>, RaterError> {
    let notes = policy(config, acc) == LateUsagePolicy::Note;
    // Under another policy only a period another issuer billed is corrected here, which needs
    // resellers. (Not skipped under `refuse`: a marker let in under another policy before
    // the book changed it waits here.)
    if !notes && !config.has_resellers() {
        return Ok(Vec::new());
    }
    // Rounds: a late batch coming in while the periods are corrected moves a marker, and the
    // round starts again from a fresh read (what was corrected stays: the next correction of a
    // period issues only what changed since).
    let mut issued = Vec::new();
    let mut moved = None;
    for _ in 0..FINALIZE_ATTEMPTS_MAX {
        // The marked periods at the version read, and the later closed periods of their months
        // they re-price, expected unmarked.
        let cache = UsageCache::default();
        let markers = store.late_markers(&acc.id).await?;
        // Every period is corrected on the condition of its own marker as read (absent when
        // unmarked), whichever marked period's month brings it in.
        let check_of = |id: &str| {
            markers
                .iter()
                .find(|m| m.period_id == id)
                .map_or(MarkerCheck::Absent, |m| MarkerCheck::Version(m.version))
        };
        let mut periods = std::collections::BTreeMap::new();
        for m in &markers {
            // Another policy bills them on the next invoice, unless another issuer billed
            // the period.
            if !notes && !billed_elsewhere(store, config, acc, &m.period_id).await? {
                continue;
            }
            let late = parse_period(&m.period_id)?;
            for q in later_in_month(store, &acc.id, late).await? {
                let id = q.id();
                let check = check_of(&id);
                periods.entry((q.start, id)).or_insert((q, check));
            }
            periods.insert(
                (late.start, m.period_id.clone()),
                (late, check_of(&m.period_id)),
            );
        }
        // Latest first: correcting a marked period clears its marker, so the later periods of
        // its month are corrected before it (after a crash between, the marker brings them back).
        moved = None;
        for (period, check) in periods.into_values().rev() {
            let reason = NoteReason::LateUsage;
            let expected = Some(check);
            match correct_at(
                store,
                config,
                &acc.id,
                period,
                reason,
                expected,
                Some(&cache),
            )
            .await
            {
                Ok(Corrected::Issued(n)) => issued.extend(n.map(|n| *n)),
                Ok(Corrected::Moved) => {
                    moved = Some(period.id());
                    break;
                }
                // A later period of the month with nothing billed: nothing to correct.
                Err(RaterError::NoFinalInvoice { .. }) if check == MarkerCheck::Absent => {}
                Err(e) => return Err(e),
            }
        }
        if moved.is_none() {
            return Ok(issued);
        }
    }
    // Late batches kept coming: retryable, and the next batch or close settles the rest.
    Err(RaterError::Store(StoreError::NoteConflict {
        account: acc.id.clone(),
        period: moved.unwrap_or_default(),
    }))
}

/// The closed periods after `late` in its calendar month, for a period shorter than a month:
/// each was priced with the month's earlier usage (`month_before`: monthly allowances and
/// minimums are granted once a month), which late usage into `late` changed, so each is
/// corrected with it, and the month's finals and notes add up to the month's price of its usage
/// as it stands (day 1 50 GB, day 2 80 GB with 100 GB included: day 2 billed 30; 50 GB more for
/// day 1 bills day 2 50 more, not day 1). Up to the account's last final invoice: the periods
/// after it are open and price with the usage as it stands when they close. Some may have no
/// final invoice (nothing to bill then): the caller skips those.
pub(crate) async fn later_in_month<S: Store>(
    store: &S,
    account: &str,
    late: BillingPeriod,
) -> Result<Vec<BillingPeriod>, RaterError> {
    if late.kind == pricing::PeriodKind::Month {
        return Ok(Vec::new());
    }
    let Some(last) = store.balance(account).await?.last else {
        return Ok(Vec::new());
    };
    let last = parse_period(&last.period)?;
    let month_end = BillingPeriod::containing(pricing::PeriodKind::Month, late.start).end();
    let mut out = Vec::new();
    let mut p = late.next();
    while p.start < month_end && p.start <= last.start {
        out.push(p);
        p = p.next();
    }
    Ok(out)
}

/// On a reseller's own account: corrects its final statements before `period` that its
/// customers' late usage changed, with their usage as it stands now, so that usage let into a
/// customer's closed period after the reseller's statement was issued (a note or an
/// adjustment on the customer's side) is billed to the reseller at wholesale too: a note in
/// the provider's series per statement, nothing when nothing changed. The statements looked
/// at are those of the periods a customer's late commit marked ([`ResoldMarker`],
/// however many statements ago) and the last one (usage committed before the markers
/// existed). Every finalize of the account runs it first (the close's included, and a close
/// that skips the account runs it alone), so a crash between a customer's note and this one
/// is caught up by the reseller's next close; a marker is settled after its note, only if no
/// customer's late commit moved it meanwhile.
pub async fn settle_resold<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
) -> Result<Vec<Note>, RaterError> {
    if config.billed_reseller(&acc.id).is_none() {
        return Ok(Vec::new());
    }
    let markers = store.resold_markers(&acc.id).await?;
    settle_marked(store, config, acc, period, &markers).await
}

/// [`settle_resold`] with the reseller's pending markers already read (a close that skips the
/// account reads them to decide whether to settle at all).
pub(crate) async fn settle_marked<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    markers: &[ResoldMarker],
) -> Result<Vec<Note>, RaterError> {
    let mut periods: std::collections::BTreeSet<String> =
        markers.iter().map(|m| m.period_id.clone()).collect();
    if let Some(last) = store.balance(&acc.id).await?.last {
        periods.insert(last.period);
    }
    let mut issued = Vec::new();
    for period_id in periods {
        let p = parse_period(&period_id)?;
        if p.start >= period.start {
            continue;
        }
        // Only when a customer's usage changed since the statement: re-pricing it unasked
        // would bill the reseller a note for every catalog or exchange-rate change between
        // two statements, as "late usage" (a reseller's own late usage has its own marker
        // and note).
        let frozen = match closed_period(store, &acc.id, &period_id).await {
            Ok(closed) => closed.statement.resold,
            // A statement not final yet bills its customers' usage as it stands when it is.
            Err(RaterError::NoFinalInvoice { .. }) => continue,
            Err(e) => return Err(e),
        };
        let fresh = crate::resellers::resold_closed(store, config, acc, p, &frozen).await?;
        if resold_now(&frozen, fresh) != frozen {
            if let Some(n) = correct(store, config, &acc.id, p, NoteReason::LateUsage).await? {
                issued.push(n);
            }
        }
        if let Some(m) = markers.iter().find(|m| m.period_id == period_id) {
            // Moved meanwhile (`false`), or the write failed for now: the next finalize looks
            // at the period again, and finds nothing left to issue if nothing came in.
            match store
                .clear_resold_marker(&acc.id, &period_id, m.version)
                .await
            {
                Ok(_) => {}
                Err(e) if e.retryable() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(issued)
}

/// On a reseller's own account, the customer sections `closed`'s statement is corrected with:
/// its customers' usage as it stands now (late usage let into their closed period after the
/// statement was issued). Late usage re-prices only the customers whose usage changed (the
/// others keep their sections as issued: a catalog or rate changed since bills nothing for
/// them); a re-rate under a corrected catalog or account re-prices every section. Both a
/// note ([`correct`]) and a `next_period` adjustment price the statement this way, so the
/// difference from the invoice and its notes (the wholesale notes among them) is only what
/// changed since.
async fn resold_as_now<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    closed: &mut ClosedPeriod,
    reason: NoteReason,
) -> Result<(), RaterError> {
    if config.billed_reseller(&acc.id).is_none() {
        return Ok(());
    }
    let frozen = &closed.statement.resold;
    let fresh = crate::resellers::resold_closed(store, config, acc, period, frozen).await?;
    closed.statement.resold = match reason {
        NoteReason::LateUsage => resold_now(frozen, fresh),
        NoteReason::CorrectedCatalog | NoteReason::CorrectedAccount => fresh,
    };
    Ok(())
}

/// A reseller statement's customer sections for a late-usage correction: each customer's
/// section as issued (`frozen`: its wholesale prices and exchange rate then) when its usage is
/// still what it billed, else as priced now (`fresh`), in the statement's order; customers
/// new to the period (their first usage came late) after them. Late usage only adds: a
/// customer `fresh` does not price (gone from the book) keeps its section as issued, rather
/// than being credited for usage the reseller was billed for. One the book moved to another
/// reseller since is in `fresh` ([`crate::resellers::resold_closed`]): its late usage into
/// the period is billed here, where the period was.
fn resold_now(frozen: &[Resold], fresh: Vec<Resold>) -> Vec<Resold> {
    let mut out: Vec<Resold> = frozen
        .iter()
        .map(|r| match fresh.iter().find(|f| f.account == r.account) {
            // One section per customer: found by account, its usage compared once.
            Some(f) if usage_of(f) != usage_of(r) => f.clone(),
            _ => r.clone(),
        })
        .collect();
    out.extend(
        fresh
            .into_iter()
            .filter(|f| !frozen.iter().any(|r| r.account == f.account)),
    );
    out
}

/// What a customer section bills, without its prices: each line's product, meter, region,
/// quantity and days held (decimals normalized: `1.50` is `1.5`), sorted.
fn usage_of(r: &Resold) -> Vec<UsageKey<'_>> {
    let mut keys: Vec<UsageKey<'_>> = r
        .lines
        .iter()
        .map(|l| {
            (
                l.product.as_str(),
                l.meter.as_deref(),
                l.region.as_str(),
                l.quantity.normalize(),
                l.days.map(|d| d.normalize()),
            )
        })
        .collect();
    keys.sort();
    keys
}

type UsageKey<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    rust_decimal::Decimal,
    Option<rust_decimal::Decimal>,
);

fn parse_period(id: &str) -> Result<BillingPeriod, RaterError> {
    BillingPeriod::parse(id).map_err(|e| RaterError::Config(format!("stored period `{id}`: {e}")))
}

/// The differences of `acc`'s closed periods before `period` that took late usage, to bill on
/// `period`'s invoice as adjustments (every policy but `note`, which issues notes instead; an
/// account whose policy became `refuse` after late usage was let in still bills it here). At
/// most [`ADJUSTED_PERIODS_MAX`] periods per invoice, oldest first; the rest wait for the
/// next one. Each is unnumbered and not yet `billed_on`: finalizing sets that.
pub(crate) async fn pending_adjustments<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    issue_date: chrono::NaiveDate,
) -> Result<Vec<AdjustmentWrite>, RaterError> {
    if policy(config, acc) == LateUsagePolicy::Note {
        return Ok(Vec::new());
    }
    let markers = store.late_markers(&acc.id).await?;
    let marked: std::collections::BTreeSet<&str> =
        markers.iter().map(|m| m.period_id.as_str()).collect();
    let cache = UsageCache::default();
    let mut out: Vec<AdjustmentWrite> = Vec::new();
    for m in &markers {
        let late = parse_period(&m.period_id)?;
        // Billed by another issuer: `settle_late` issues its notes.
        if late.start >= period.start || billed_elsewhere(store, config, acc, &m.period_id).await? {
            continue;
        }
        // With the later closed periods of its month it re-prices (`later_in_month`), all on
        // one invoice: its marker is cleared only with their adjustments. Those marked
        // themselves come with their own marker; one re-priced already is priced as it stands.
        let mut group = Vec::new();
        for q in later_in_month(store, &acc.id, late).await? {
            let id = q.id();
            if q.start >= period.start
                || marked.contains(id.as_str())
                || out.iter().any(|a| a.period_id == id)
            {
                continue;
            }
            let absent = MarkerCheck::Absent;
            match adjustment(store, config, acc, q, absent, issue_date, &cache).await {
                Ok(a) if a.note.is_some() => group.push(a),
                Ok(_) | Err(RaterError::NoFinalInvoice { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let check = MarkerCheck::Version(m.version);
        group.push(adjustment(store, config, acc, late, check, issue_date, &cache).await?);
        // Oldest first, at most the cap; what does not fit waits for the next invoice. A group
        // that does not fit gives the later periods that do, never its marked period (last):
        // the marker stays until all are adjusted, and those adjusted now price as billed on
        // the next invoice.
        let room = ADJUSTED_PERIODS_MAX - out.len();
        let fits = group.len() <= room;
        out.extend(group.into_iter().take(room));
        if !fits || out.len() == ADJUSTED_PERIODS_MAX {
            break;
        }
    }
    Ok(out)
}

/// The adjustment of one closed period as it prices now (see [`pending_adjustments`]).
async fn adjustment<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    late: BillingPeriod,
    marker: MarkerCheck,
    issue_date: chrono::NaiveDate,
    cache: &UsageCache,
) -> Result<AdjustmentWrite, RaterError> {
    let period_id = late.id();
    let mut closed = closed_period(store, &acc.id, &period_id).await?;
    // Billed by another issuer (a customer moved away and back within the month): not this
    // issuer's to adjust; left as billed (the gap the module's docs name). Never a note from
    // here: this also runs for interim reads.
    if crate::config::reseller_of_catalog(&closed.invoice.bill.catalog_id)
        != acc.reseller.as_deref()
    {
        return Ok(AdjustmentWrite {
            period_id,
            note: None,
            marker,
        });
    }
    // As a note would: else the difference would take back the wholesale notes of its
    // customers' late usage issued on that statement since.
    resold_as_now(store, config, acc, late, &mut closed, NoteReason::LateUsage).await?;
    let usage = store.period_usage(&acc.id, &period_id).await?.usage;
    let before = month_before_cached(store, &acc.id, late, Some(cache)).await?;
    let note = difference(
        config,
        acc,
        late,
        &closed,
        &usage,
        before,
        NoteReason::LateUsage,
        issue_date,
        &config.accounts.version,
    )?;
    Ok(AdjustmentWrite {
        period_id,
        note: note.map(|note| StoredNote {
            seq: closed.corrections.len() as u32 + 1,
            note,
            billed_on: None,
        }),
        marker,
    })
}

/// What a batch did to one closed period it brought late usage into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatePartition {
    pub account: String,
    pub period: String,
    /// The final invoice the late usage corrects.
    pub invoice: String,
    pub policy: LateUsagePolicy,
    /// Policy `note`: the invoice's numbered notes, after this batch's (a replay lists them
    /// again). Policy `next_period`: none; the account's next invoice bills the difference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// A period shorter than a month, policy `note`: the numbered notes of the month's later
    /// final periods, which late usage into it re-prices (their share of the monthly
    /// allowances and minimums moved), in period order, as they stand (earlier notes of those
    /// periods included, as `notes` lists the period's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_notes: Vec<Note>,
}

/// The numbered notes of a final invoice.
pub async fn notes_of<S: Store>(
    store: &S,
    account: &str,
    period_id: &str,
) -> Result<Vec<Note>, RaterError> {
    Ok(store
        .corrections(account, period_id)
        .await?
        .into_iter()
        .filter(|c| c.note.number.is_some())
        .map(|c| c.note)
        .collect())
}
