//! The embedded store: the same items and semantics as DynamoDB, in one redb file (the CLI's default).
//!
//! Items live in one redb table keyed by `(pk, sk)` with the same keys as the DynamoDB table;
//! values are JSON. Each trait method is one redb write transaction, so every step is atomic
//! exactly where DynamoDB's conditional writes and transactions are. Calls are short and
//! synchronous (no transaction spans an `.await`), which is right for a CLI and for tests.

use std::collections::BTreeMap;
use std::path::Path;

use pricing::{Invoice, Usage};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{
    account_pk, committed_item_bytes, config_pk, config_sk, counter_pk, customer_sk, doc_sk,
    invoice_pk, late_sk, ledger_pk, note_sk, payment_sk, resold_sk, usage_pk, Balance, ConfigKind,
    DocRef, LateMarker, Ledger, RecordedPayment, ResoldMarker, StoredNote, UsageChunk, BALANCE_SK,
    COMMITTED_SK, COUNTER_SK, CURRENT_SK, CUSTOMER_SK_PREFIX, DOC_SK_PREFIX, FINAL_SK,
    IDS_SK_PREFIX, LATE_SK_PREFIX, LEDGER_SK, NOTE_COUNTER_SK, NOTE_SK_PREFIX, PAYMENT_SK_PREFIX,
    RESOLD_SK_PREFIX, STATEMENT_SK,
};
use crate::model::{fanout_pk, readings_by_shard, readings_sk, FANOUT_SK, READINGS_PK};
use crate::store::api::merged_readings_body;
use crate::store::api::{
    committed_id_chunk, committed_usage_chunk, overflowed, swept, Commit, ConfigItem, Counts,
    Finalize, Keep, Lease, LeaseOutcome, MarkerCheck, NoteInto, NoteWrite, PartitionState,
    PaymentOutcome, PaymentWrite, PeriodUsage, RecordIds, SkRange, Store, USAGE_CHUNKS,
};

/// redb's page cache. Its default (1 GiB) would let one big CLI run hold every page it wrote;
/// the rater reads each partition once per invoice, so a small cache costs little time and
/// keeps the CLI's memory bounded when streaming a gigabyte export.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");

/// The `#COMMITTED` item of one account and period.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Committed {
    /// Batch id -> chunk count.
    batches: BTreeMap<String, u32>,
    /// Batch id -> record-id chunk count (batches that added record ids).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    ids: BTreeMap<String, u32>,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed: Option<String>,
}

/// A fanned-out export's status document and its version (the DynamoDB item's two attributes).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FanoutDoc {
    version: u64,
    body: String,
}

/// A store in one file.
pub struct EmbeddedStore {
    db: Database,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        message: format!("embedded store: {e}"),
    }
}

type Table<'t> = redb::Table<'t, (&'static str, &'static str), &'static [u8]>;

fn get_json<T: for<'de> Deserialize<'de>>(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pk: &str,
    sk: &str,
) -> Result<Option<T>, StoreError> {
    match t.get((pk, sk)).map_err(io)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::corrupt(pk, sk, e)),
    }
}

/// Calls `f` with the sort key and value of each item of partition `pk` whose sort key is in
/// `sks`, in key order.
fn each_in(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pk: &str,
    sks: SkRange<'_>,
    mut f: impl FnMut(&str, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for entry in t.range((pk, sks.start())..).map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        let (ipk, sk) = k.value();
        if ipk != pk || !sks.contains(sk) {
            break;
        }
        f(sk, v.value())?;
    }
    Ok(())
}

/// Puts a correction at its place in the invoice's chain: refused when the place is taken
/// (another correction got there first).
fn put_note(t: &mut Table<'_>, pk: &str, n: &StoredNote) -> Result<(), StoreError> {
    let sk = note_sk(n.seq);
    if t.get((pk, sk.as_str())).map_err(io)?.is_some() {
        return Err(StoreError::Rejected {
            message: format!("{pk} {sk} exists"),
        });
    }
    put_json(t, pk, &sk, n)
}

fn put_json<T: Serialize>(t: &mut Table<'_>, pk: &str, sk: &str, v: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(v).expect("store values serialize");
    t.insert((pk, sk), bytes.as_slice()).map_err(io)?;
    Ok(())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store file at `path`, creating its parent directory.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(io)?;
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(ITEMS).map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(EmbeddedStore { db })
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Table<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        let out = {
            let mut t = txn.open_table(ITEMS).map_err(io)?;
            f(&mut t)?
        };
        txn.commit().map_err(io)?;
        Ok(out)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(
            &redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
        ) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(ITEMS).map_err(io)?;
        f(&t)
    }

    /// Every item as `(pk, sk, value)`, in key order: lets tests assert that a refused request
    /// changed nothing.
    pub fn dump(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        self.read(|t| {
            let mut out = Vec::new();
            for entry in t.iter().map_err(io)? {
                let (k, v) = entry.map_err(io)?;
                let (pk, sk) = k.value();
                out.push((pk.to_string(), sk.to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
    }
}

impl Store for EmbeddedStore {
    async fn ledger(&self, batch_id: &str) -> Result<Option<Ledger>, StoreError> {
        self.read(|t| get_json(t, &ledger_pk(batch_id), LEDGER_SK))
    }

    async fn try_lease(&self, lease: &Lease, now_s: i64) -> Result<LeaseOutcome, StoreError> {
        let pk = ledger_pk(&lease.batch_id);
        self.write(|t| {
            let found = get_json::<Ledger>(t, &pk, LEDGER_SK)?;
            match &found {
                Some(Ledger::Done(summary)) => {
                    return Ok(LeaseOutcome::Done(Box::new(summary.clone())))
                }
                Some(l) => match l.bound_to(now_s) {
                    Some(sha) if sha != lease.content_sha256 => {
                        return Ok(LeaseOutcome::Reused {
                            content_sha256: sha.to_string(),
                        })
                    }
                    _ => {}
                },
                None => {}
            }
            if let Some(Ledger::InProgress {
                owner, expires_at, ..
            }) = &found
            {
                if *owner != lease.owner && *expires_at > now_s {
                    return Ok(LeaseOutcome::Held {
                        expires_at: *expires_at,
                    });
                }
            }
            put_json(
                t,
                &pk,
                LEDGER_SK,
                &Ledger::InProgress {
                    owner: lease.owner.clone(),
                    expires_at: lease.expires_at,
                    content_sha256: lease.content_sha256.clone(),
                    bound: found.as_ref().is_some_and(Ledger::partly_committed),
                },
            )?;
            Ok(LeaseOutcome::Acquired)
        })
    }

    async fn release(&self, batch_id: &str, owner: &str) -> Result<(), StoreError> {
        let pk = ledger_pk(batch_id);
        self.write(|t| {
            if let Some(Ledger::InProgress {
                owner: o,
                content_sha256,
                bound,
                ..
            }) = get_json::<Ledger>(t, &pk, LEDGER_SK)?
            {
                if o == owner && bound {
                    put_json(t, &pk, LEDGER_SK, &Ledger::Partial { content_sha256 })?;
                } else if o == owner {
                    t.remove((pk.as_str(), LEDGER_SK)).map_err(io)?;
                }
            }
            Ok(())
        })
    }

    async fn put_chunks(&self, chunks: &[UsageChunk]) -> Result<(), StoreError> {
        self.write(|t| {
            for c in chunks {
                t.insert((c.pk().as_str(), c.sk().as_str()), c.body.as_bytes())
                    .map_err(io)?;
            }
            Ok(())
        })
    }

    async fn sweep_chunks(&self, keep: &Keep) -> Result<(), StoreError> {
        let pk = usage_pk(&keep.account, &keep.period_id);
        self.write(|t| {
            let mut gone = Vec::new();
            for prefix in keep.prefixes() {
                each_in(t, &pk, SkRange::Prefix(&prefix), |sk, _| {
                    if swept(sk, keep) {
                        gone.push(sk.to_string());
                    }
                    Ok(())
                })?;
            }
            for sk in gone {
                t.remove((pk.as_str(), sk.as_str())).map_err(io)?;
            }
            Ok(())
        })
    }

    async fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        commit.check_size()?;
        let lpk = ledger_pk(&commit.batch_id);
        self.write(|t| {
            let ledger = match get_json::<Ledger>(t, &lpk, LEDGER_SK)? {
                Some(Ledger::InProgress {
                    owner,
                    expires_at,
                    content_sha256,
                    bound,
                }) if owner == commit.owner => (owner, expires_at, content_sha256, bound),
                _ => {
                    return Err(StoreError::LeaseLost {
                        batch_id: commit.batch_id.clone(),
                    })
                }
            };
            let mut resold = std::collections::BTreeSet::new();
            for part in &commit.accounts {
                let account = &part.account;
                let pk = usage_pk(account, &part.period_id);
                let mut c: Committed = get_json(t, &pk, COMMITTED_SK)?.unwrap_or_default();
                let known = c.batches.contains_key(&commit.batch_id);
                if part.checked_version.is_some_and(|v| v != c.version) && !known {
                    return Err(StoreError::UsageMoved {
                        account: account.clone(),
                        period: part.period_id.clone(),
                    });
                }
                match (&c.closed, known) {
                    (Some(number), false) if part.late.as_ref() != Some(number) => {
                        return Err(StoreError::PeriodClosed {
                            account: account.clone(),
                            period: part.period_id.clone(),
                            number: number.clone(),
                        });
                    }
                    (Some(number), false) => {
                        let (apk, sk) = (account_pk(account), late_sk(&part.period_id));
                        let marker = get_json::<LateMarker>(t, &apk, &sk)?;
                        let marker = LateMarker {
                            period_id: part.period_id.clone(),
                            number: number.clone(),
                            version: marker.map_or(0, |m| m.version) + 1,
                        };
                        put_json(t, &apk, &sk, &marker)?;
                        // Once per reseller and period, as DynamoDB's one item.
                        if let Some(reseller) = part
                            .resold
                            .as_ref()
                            .filter(|r| resold.insert((r.as_str(), part.period_id.as_str())))
                        {
                            let (rpk, rsk) = (account_pk(reseller), resold_sk(&part.period_id));
                            let marker = get_json::<ResoldMarker>(t, &rpk, &rsk)?;
                            let marker = match marker {
                                Some(m) => ResoldMarker {
                                    version: m.version + 1,
                                    ..m
                                },
                                None => ResoldMarker {
                                    period_id: part.period_id.clone(),
                                    version: 1,
                                    settled: 0,
                                },
                            };
                            put_json(t, &rpk, &rsk, &marker)?;
                        }
                    }
                    _ => {}
                }
                // The period's first usage: marked open in the balances that must bill it,
                // unless one of them has passed the period already (it would be on no invoice).
                for owner in &part.opens {
                    let apk = account_pk(owner);
                    let mut balance: Balance = get_json(t, &apk, BALANCE_SK)?.unwrap_or_default();
                    if let Some(later) = balance.later_final(&part.period_id) {
                        return Err(StoreError::PeriodClosed {
                            account: account.clone(),
                            period: part.period_id.clone(),
                            number: later.number.clone(),
                        });
                    }
                    if balance.open.insert(part.period_id.clone()) {
                        balance.version += 1;
                        put_json(t, &apk, BALANCE_SK, &balance)?;
                    }
                }
                c.batches.insert(commit.batch_id.clone(), part.chunks);
                if part.id_chunks > 0 {
                    c.ids.insert(commit.batch_id.clone(), part.id_chunks);
                }
                c.version += 1;
                put_json(t, &pk, COMMITTED_SK, &c)?;
            }
            let (owner, expires_at, content_sha256, bound) = ledger;
            let ledger = match &commit.done {
                Some(summary) => Ledger::Done(summary.clone()),
                // Bound with the first partitions it commits (as in DynamoDB).
                None => Ledger::InProgress {
                    owner,
                    expires_at,
                    content_sha256,
                    bound: true,
                },
            };
            if commit.done.is_some() || !bound {
                put_json(t, &lpk, LEDGER_SK, &ledger)?;
            }
            Ok(())
        })
    }

    async fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<PartitionState>, StoreError> {
        self.read(|t| {
            keys.iter()
                .map(|(account, period_id)| {
                    let pk = usage_pk(account, period_id);
                    let mut state = PartitionState {
                        account: account.clone(),
                        period_id: period_id.clone(),
                        ..PartitionState::default()
                    };
                    if let Some(c) = get_json::<Committed>(t, &pk, COMMITTED_SK)? {
                        state.own = c.batches.get(batch_id).map(|&chunks| Counts {
                            chunks,
                            id_chunks: c.ids.get(batch_id).copied().unwrap_or(0),
                        });
                        state.batches = c.batches.len();
                        state.item_bytes = committed_item_bytes(
                            &pk,
                            c.version,
                            c.closed.as_deref(),
                            c.batches.iter().map(|(b, n)| (b.as_str(), *n)),
                            c.ids.iter().map(|(b, n)| (b.as_str(), *n)),
                        );
                        state.closed = c.closed;
                    }
                    Ok(state)
                })
                .collect()
        })
    }

    async fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> Result<RecordIds, StoreError> {
        let pk = usage_pk(account, period_id);
        self.read(|t| {
            let Some(c) = get_json::<Committed>(t, &pk, COMMITTED_SK)? else {
                return Ok(RecordIds::default());
            };
            let mut ids = Vec::new();
            each_in(t, &pk, SkRange::Prefix(IDS_SK_PREFIX), |sk, v| {
                let body = std::str::from_utf8(v).ok();
                let count = |b: &str| c.ids.get(b).copied().filter(|_| b != except_batch);
                if let Some(part) = committed_id_chunk(&pk, sk, body, count)? {
                    ids.extend(part);
                }
                Ok(())
            })?;
            ids.sort_unstable();
            Ok(RecordIds {
                ids,
                version: c.version,
            })
        })
    }

    async fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<PeriodUsage, StoreError> {
        let pk = usage_pk(account, period_id);
        self.read(|t| {
            let Some(c) = get_json::<Committed>(t, &pk, COMMITTED_SK)? else {
                return Ok(PeriodUsage::default());
            };
            let mut usage = Usage::default();
            for sks in USAGE_CHUNKS {
                each_in(t, &pk, sks, |sk, v| {
                    let body = std::str::from_utf8(v).ok();
                    let count = |b: &str| c.batches.get(b).copied();
                    if let Some(part) = committed_usage_chunk(account, &pk, sk, body, count)? {
                        usage.merge(&part).map_err(|e| overflowed(&pk, e))?;
                    }
                    Ok(())
                })?;
            }
            Ok(PeriodUsage {
                usage,
                version: c.version,
                closed: c.closed,
                batches: c.batches.len(),
            })
        })
    }

    async fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<Invoice>, StoreError> {
        self.read(|t| get_json(t, &invoice_pk(account, period_id), FINAL_SK))
    }

    async fn counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.read(|t| Ok(get_json::<u64>(t, &counter_pk(issuer), COUNTER_SK)?.unwrap_or(0)))
    }

    async fn finalize(&self, f: &Finalize) -> Result<(), StoreError> {
        let cpk = counter_pk(&f.issuer);
        let ipk = invoice_pk(&f.account, &f.period_id);
        let upk = usage_pk(&f.account, &f.period_id);
        self.write(|t| {
            if let Some(existing) = get_json::<Invoice>(t, &ipk, FINAL_SK)? {
                return Err(StoreError::AlreadyFinal {
                    account: f.account.clone(),
                    period: f.period_id.clone(),
                    number: existing.number.unwrap_or_default(),
                });
            }
            let conflict = || StoreError::FinalizeConflict {
                account: f.account.clone(),
                period: f.period_id.clone(),
            };
            let counter = get_json::<u64>(t, &cpk, COUNTER_SK)?.unwrap_or(0);
            if counter != f.expected_counter {
                return Err(conflict());
            }
            let mut c: Committed = get_json(t, &upk, COMMITTED_SK)?.unwrap_or_default();
            if c.version != f.usage_version || c.closed.is_some() {
                return Err(conflict());
            }
            let apk = account_pk(&f.account);
            let mut balance: Balance = get_json(t, &apk, BALANCE_SK)?.unwrap_or_default();
            if balance.version != f.balance_version {
                return Err(conflict());
            }
            balance.version += 1;
            balance.last = Some(f.last.clone());
            balance.notes_since = rust_decimal::Decimal::ZERO;
            if let Some((issuer, owed)) = &f.handed_over {
                let o = balance.owed_elsewhere.entry(issuer.clone()).or_default();
                *o = o.saturating_add(*owed);
            }
            if let Some((issuer, back)) = &f.brought_back {
                let o = balance.owed_elsewhere.entry(issuer.clone()).or_default();
                *o = o.saturating_sub(*back);
            }
            // The open periods this invoice closes (read at the same balance version).
            for p in &f.cleared_open {
                balance.open.remove(p);
            }
            c.closed = Some(f.number.clone());
            for a in &f.adjustments {
                let (apk, sk) = (account_pk(&f.account), late_sk(&a.period_id));
                match (a.marker, get_json::<LateMarker>(t, &apk, &sk)?) {
                    (MarkerCheck::Version(v), Some(m)) if m.version == v => {
                        t.remove((apk.as_str(), sk.as_str())).map_err(io)?;
                    }
                    (MarkerCheck::Absent, None) => {}
                    _ => return Err(conflict()),
                }
                if let Some(n) = &a.note {
                    let npk = invoice_pk(&f.account, &a.period_id);
                    put_note(t, &npk, n).map_err(|_| conflict())?;
                }
            }
            put_json(t, &upk, COMMITTED_SK, &c)?;
            put_json(t, &ipk, STATEMENT_SK, &f.statement)?;
            put_json(t, &cpk, COUNTER_SK, &(f.expected_counter + 1))?;
            put_json(t, &apk, BALANCE_SK, &balance)?;
            put_json(t, &apk, &doc_sk(&f.doc), &f.doc)?;
            if let Some(owner) = &f.resold_by {
                let opk = invoice_pk(owner, &f.period_id);
                put_json(t, &opk, &customer_sk(&f.account), &f.number)?;
                // As the store holds it now (this transaction is the only writer): the
                // reseller's statement of the period final already.
                if get_json::<Invoice>(t, &opk, FINAL_SK)?.is_some() {
                    let (rpk, rsk) = (account_pk(owner), resold_sk(&f.period_id));
                    let marker = match get_json::<ResoldMarker>(t, &rpk, &rsk)? {
                        Some(m) => ResoldMarker {
                            version: m.version + 1,
                            ..m
                        },
                        None => ResoldMarker {
                            period_id: f.period_id.clone(),
                            version: 1,
                            settled: 0,
                        },
                    };
                    put_json(t, &rpk, &rsk, &marker)?;
                }
            }
            put_json(t, &ipk, FINAL_SK, &f.invoice)
        })
    }

    async fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pk = invoice_pk(account, period_id);
        self.read(|t| {
            let mut out = Vec::new();
            each_in(t, &pk, SkRange::Prefix(CUSTOMER_SK_PREFIX), |sk, _| {
                out.push(sk[CUSTOMER_SK_PREFIX.len()..].to_string());
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<pricing::Statement>, StoreError> {
        self.read(|t| get_json(t, &invoice_pk(account, period_id), STATEMENT_SK))
    }

    async fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<StoredNote>, StoreError> {
        let pk = invoice_pk(account, period_id);
        self.read(|t| {
            let mut out = Vec::new();
            each_in(t, &pk, SkRange::Prefix(NOTE_SK_PREFIX), |sk, v| {
                out.push(serde_json::from_slice(v).map_err(|e| StoreError::corrupt(&pk, sk, e))?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn late_markers(&self, account: &str) -> Result<Vec<LateMarker>, StoreError> {
        let apk = account_pk(account);
        self.read(|t| {
            let mut out = Vec::new();
            each_in(t, &apk, SkRange::Prefix(LATE_SK_PREFIX), |sk, v| {
                out.push(serde_json::from_slice(v).map_err(|e| StoreError::corrupt(&apk, sk, e))?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn resold_markers(&self, account: &str) -> Result<Vec<ResoldMarker>, StoreError> {
        let apk = account_pk(account);
        self.read(|t| {
            let mut out = Vec::new();
            each_in(t, &apk, SkRange::Prefix(RESOLD_SK_PREFIX), |sk, v| {
                let m: ResoldMarker =
                    serde_json::from_slice(v).map_err(|e| StoreError::corrupt(&apk, sk, e))?;
                if m.pending() {
                    out.push(m);
                }
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        let (apk, sk) = (account_pk(account), resold_sk(period_id));
        self.write(|t| match get_json::<ResoldMarker>(t, &apk, &sk)? {
            Some(m) if m.version == version => {
                put_json(
                    t,
                    &apk,
                    &sk,
                    &ResoldMarker {
                        settled: version,
                        ..m
                    },
                )?;
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    async fn note_counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.read(|t| Ok(get_json::<u64>(t, &counter_pk(issuer), NOTE_COUNTER_SK)?.unwrap_or(0)))
    }

    async fn issue_note(&self, w: &NoteWrite) -> Result<(), StoreError> {
        let conflict = || StoreError::NoteConflict {
            account: w.account.clone(),
            period: w.period_id.clone(),
        };
        let (apk, lsk) = (account_pk(&w.account), late_sk(&w.period_id));
        let cpk = counter_pk(&w.issuer);
        self.write(|t| {
            let marker = get_json::<LateMarker>(t, &apk, &lsk)?;
            match (w.marker, marker) {
                (MarkerCheck::Absent, None) => {}
                (MarkerCheck::Version(v), Some(m)) if m.version == v => {
                    t.remove((apk.as_str(), lsk.as_str())).map_err(io)?;
                }
                _ => return Err(conflict()),
            }
            if let Some(n) = &w.note {
                if n.note.number.is_some() {
                    let counter = get_json::<u64>(t, &cpk, NOTE_COUNTER_SK)?.unwrap_or(0);
                    if counter != w.expected_counter {
                        return Err(conflict());
                    }
                    put_json(t, &cpk, NOTE_COUNTER_SK, &(counter + 1))?;
                    // The next final invoice brings the note forward, unless another
                    // issuer's is the account's last: then it is owed to this issuer.
                    let mut balance: Balance = get_json(t, &apk, BALANCE_SK)?.unwrap_or_default();
                    let last = balance.last.as_ref().map(|l| &l.period);
                    match &w.into {
                        NoteInto::ChainAt { last_period } if last == last_period.as_ref() => {}
                        NoteInto::Elsewhere { last_period } if last == Some(last_period) => {}
                        _ => return Err(conflict()),
                    }
                    balance.version += 1;
                    if matches!(w.into, NoteInto::Elsewhere { .. }) {
                        let owed = balance.owed_elsewhere.entry(w.issuer.clone()).or_default();
                        *owed = owed.saturating_add(n.note.total);
                    } else {
                        balance.notes_since = balance.notes_since.saturating_add(n.note.total);
                    }
                    put_json(t, &apk, BALANCE_SK, &balance)?;
                }
                put_note(t, &invoice_pk(&w.account, &w.period_id), n).map_err(|_| conflict())?;
            }
            if let Some(doc) = &w.doc {
                put_json(t, &apk, &doc_sk(doc), doc)?;
            }
            Ok(())
        })
    }

    async fn balance(&self, account: &str) -> Result<Balance, StoreError> {
        self.read(|t| Ok(get_json(t, &account_pk(account), BALANCE_SK)?.unwrap_or_default()))
    }

    async fn record_payment(&self, p: &PaymentWrite) -> Result<PaymentOutcome, StoreError> {
        let apk = account_pk(&p.account);
        let sk = payment_sk(&p.payment.reference);
        let upk = usage_pk(&p.account, &p.period_id);
        self.write(|t| {
            match get_json::<RecordedPayment>(t, &apk, &sk)? {
                Some(existing) if existing == p.payment => {
                    return Ok(PaymentOutcome::AlreadyRecorded)
                }
                Some(_) => {
                    return Err(StoreError::PaymentConflict {
                        account: p.account.clone(),
                        reference: p.payment.reference.clone(),
                    })
                }
                None => {}
            }
            if let Some(payee) = &p.payment.payee {
                // To a former issuer: settles what the account owes it (handed over by the
                // new issuer's first invoice, or to be), on no invoice of the account's, so
                // no period's close refuses it.
                let mut balance: Balance = get_json(t, &apk, BALANCE_SK)?.unwrap_or_default();
                balance.version += 1;
                let owed = balance.owed_elsewhere.entry(payee.clone()).or_default();
                *owed = owed.saturating_sub(p.payment.amount);
                put_json(t, &apk, BALANCE_SK, &balance)?;
                put_json(t, &apk, &sk, &p.payment)?;
                return Ok(PaymentOutcome::Recorded);
            }
            if let Some(number) =
                get_json::<Committed>(t, &upk, COMMITTED_SK)?.and_then(|c| c.closed)
            {
                return Err(StoreError::PeriodClosed {
                    account: p.account.clone(),
                    period: p.period_id.clone(),
                    number,
                });
            }
            let mut balance: Balance = get_json(t, &apk, BALANCE_SK)?.unwrap_or_default();
            // A period the account's chain has passed (a later period is final, this one was
            // skipped) is closed for it too: a payment dated there would be on no invoice.
            if let Some(later) = balance.later_final(&p.period_id) {
                return Err(StoreError::PeriodClosed {
                    account: p.account.clone(),
                    period: p.period_id.clone(),
                    number: later.number.clone(),
                });
            }
            balance.version += 1;
            put_json(t, &apk, BALANCE_SK, &balance)?;
            put_json(t, &apk, &sk, &p.payment)?;
            Ok(PaymentOutcome::Recorded)
        })
    }

    async fn payments(&self, account: &str) -> Result<Vec<RecordedPayment>, StoreError> {
        let apk = account_pk(account);
        self.read(|t| {
            let mut out = Vec::new();
            each_in(t, &apk, SkRange::Prefix(PAYMENT_SK_PREFIX), |sk, v| {
                out.push(serde_json::from_slice(v).map_err(|e| StoreError::corrupt(&apk, sk, e))?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn history(&self, account: &str) -> Result<Vec<DocRef>, StoreError> {
        let apk = account_pk(account);
        self.read(|t| {
            let mut out: Vec<DocRef> = Vec::new();
            each_in(t, &apk, SkRange::Prefix(DOC_SK_PREFIX), |sk, v| {
                out.push(serde_json::from_slice(v).map_err(|e| StoreError::corrupt(&apk, sk, e))?);
                Ok(())
            })?;
            out.reverse();
            Ok(out)
        })
    }

    async fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> Result<(), StoreError> {
        let pk = config_pk(kind);
        let sk = config_sk(version);
        self.write(|t| {
            let existing = t
                .get((pk.as_str(), sk.as_str()))
                .map_err(io)?
                .map(|v| v.value().to_vec());
            match existing {
                Some(old) if old != body.as_bytes() => {
                    return Err(StoreError::ConfigVersionConflict {
                        kind: kind.name().to_string(),
                        version: version.to_string(),
                    })
                }
                Some(_) => {}
                None => {
                    t.insert((pk.as_str(), sk.as_str()), body.as_bytes())
                        .map_err(io)?;
                }
            }
            if make_current {
                t.insert((pk.as_str(), CURRENT_SK), version.as_bytes())
                    .map_err(io)?;
            }
            Ok(())
        })
    }

    async fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> Result<Option<ConfigItem>, StoreError> {
        let pk = config_pk(kind);
        self.read(|t| {
            let version = match version {
                Some(v) => v.to_string(),
                None => match t.get((pk.as_str(), CURRENT_SK)).map_err(io)? {
                    Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
                    None => return Ok(None),
                },
            };
            let sk = config_sk(&version);
            Ok(t.get((pk.as_str(), sk.as_str()))
                .map_err(io)?
                .map(|v| ConfigItem {
                    version: version.clone(),
                    body: String::from_utf8_lossy(v.value()).into_owned(),
                }))
        })
    }

    async fn readings(&self) -> Result<pricing::import::Readings, StoreError> {
        self.read(|t| {
            let mut out = pricing::import::Readings::new();
            each_in(t, READINGS_PK, SkRange::Prefix("SHARD#"), |sk, v| {
                let shard: pricing::import::Readings = serde_json::from_slice(v)
                    .map_err(|e| StoreError::corrupt(READINGS_PK, sk, e))?;
                out.extend(shard);
                Ok(())
            })?;
            Ok(out)
        })
    }

    async fn merge_readings(&self, readings: &pricing::import::Readings) -> Result<(), StoreError> {
        let shards = readings_by_shard(readings);
        self.write(|t| {
            for (shard, add) in &shards {
                let sk = readings_sk(*shard);
                let old = t
                    .get((READINGS_PK, sk.as_str()))
                    .map_err(io)?
                    .map(|v| v.value().to_vec());
                let body = merged_readings_body(old.as_deref(), add, READINGS_PK, &sk)?;
                t.insert((READINGS_PK, sk.as_str()), body.as_slice())
                    .map_err(io)?;
            }
            Ok(())
        })
    }

    async fn fanout(&self, batch_id: &str) -> Result<Option<(u64, String)>, StoreError> {
        let pk = fanout_pk(batch_id);
        self.read(|t| {
            let doc: Option<FanoutDoc> = get_json(t, &pk, FANOUT_SK)?;
            Ok(doc.map(|d| (d.version, d.body)))
        })
    }

    async fn put_fanout(
        &self,
        batch_id: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, StoreError> {
        let pk = fanout_pk(batch_id);
        self.write(|t| {
            let old: Option<FanoutDoc> = get_json(t, &pk, FANOUT_SK)?;
            if old.map(|d| d.version) != expected {
                return Ok(false);
            }
            let doc = FanoutDoc {
                version: expected.unwrap_or(0) + 1,
                body: body.to_string(),
            };
            let bytes = serde_json::to_vec(&doc).expect("documents serialize");
            t.insert((pk.as_str(), FANOUT_SK), bytes.as_slice())
                .map_err(io)?;
            Ok(true)
        })
    }
}
