//! The DynamoDB store: conditional writes, BatchWriteItem with UnprocessedItems retries, TransactWriteItems, and table creation from infra/table.json.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ConditionCheck, Delete, DeleteRequest, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, PutRequest, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use pricing::{Invoice, Usage};
use serde::Deserialize;

use crate::error::StoreError;
use crate::limits::{
    BATCH_GET_KEYS_MAX, BATCH_WRITE_ATTEMPTS_MAX, BATCH_WRITE_ITEMS_MAX, CONFIG_PART_BYTES_MAX,
    FINAL_PART_BYTES_MAX,
};
use crate::model::{
    account_pk, committed_item_bytes, config_pk, config_sk, counter_pk, customer_sk, doc_sk,
    invoice_pk, late_sk, ledger_pk, note_sk, payment_sk, resold_sk, usage_pk, Balance,
    BatchSummary, ConfigKind, DocRef, LastFinal, LateMarker, Ledger, RecordedPayment, ResoldMarker,
    StoredNote, UsageChunk, BALANCE_SK, COMMITTED_BATCH_PREFIX, COMMITTED_IDS_PREFIX, COMMITTED_SK,
    COUNTER_SK, CURRENT_SK, CUSTOMER_SK_PREFIX, DOC_SK_PREFIX, FINAL_SK, IDS_SK_PREFIX,
    LATE_SK_PREFIX, LEDGER_SK, NOTE_COUNTER_SK, NOTE_SK_PREFIX, PAYMENT_SK_PREFIX,
    RESOLD_SK_PREFIX, STATEMENT_SK,
};
use crate::model::{fanout_pk, readings_by_shard, readings_sk, FANOUT_SK, READINGS_PK};
use crate::retry::backoff;
use crate::store::api::merged_readings_body;
use crate::store::api::{
    committed_id_chunk, committed_usage_chunk, overflowed, swept, AdjustmentWrite, Commit,
    CommitAccount, ConfigItem, Counts, Finalize, Keep, Lease, LeaseOutcome, MarkerCheck, NoteInto,
    NoteWrite, PartitionState, PaymentOutcome, PaymentWrite, PeriodUsage, RecordIds, SkRange,
    Store, USAGE_CHUNKS,
};

/// The hex SHA-256 of a config body: its identity when stored in parts.
fn config_sha256(body: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A config body cut into parts of at most [`CONFIG_PART_BYTES_MAX`] bytes, on character
/// boundaries (one part when it fits an item).
fn config_parts(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = body;
    while rest.len() > CONFIG_PART_BYTES_MAX {
        let mut cut = CONFIG_PART_BYTES_MAX;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// The sort-key prefix of the parts of a config version's body with hash `sha`.
fn config_part_prefix(version: &str, sha: &str) -> String {
    format!("{}#{}#p", config_sk(version), &sha[..sha.len().min(16)])
}

fn config_part_sk(version: &str, sha: &str, i: usize) -> String {
    format!("{}{i:05}", config_part_prefix(version, sha))
}

/// The table definition shared with the SAM template (the one source of truth for keys).
pub const TABLE_JSON: &str = include_str!("../../../infra/table.json");

type Item = HashMap<String, AttributeValue>;

const IN_PROGRESS: &str = "IN_PROGRESS";
const PARTIAL: &str = "PARTIAL";
/// The table's TTL attribute (the template's `TimeToLiveSpecification`): an unbound lease's
/// expiry, so that a crashed attempt that committed nothing leaves no ledger behind for good.
const TTL_ATTRIBUTE: &str = "expires_at";
/// A lease's expiry, kept apart from the TTL attribute so that a bound ledger (some partitions
/// committed) holds a lease and yet is never deleted by TTL.
const LEASE_UNTIL: &str = "lease_until";
const DONE: &str = "DONE";
/// The balance item's copy of its last final invoice's period, as a plain string: a payment's
/// condition compares it with the payment's period (the JSON `last` cannot be compared).
const LAST_PERIOD: &str = "last_period";
/// Prefix of a balance's attributes naming its open periods (`open_<period_id>`, see
/// `Balance::open`).
const OPEN_PREFIX: &str = "open_";
/// The balance item's attribute of what the account owes a former issuer
/// (`Balance::owed_elsewhere`), one per issuer: `owed_<series>`, a number an `ADD` moves.
const OWED_PREFIX: &str = "owed_";
/// Between a final invoice's or statement's sort key and its part number (`FINAL#p00`).
const PART_SK_INFIX: &str = "#p";

/// The sort key of part `i` of the body stored at `sk`.
fn part_sk(sk: &str, i: usize) -> String {
    format!("{sk}{PART_SK_INFIX}{i:02}")
}

/// `text` cut into pieces of at most `max` bytes, each ending on a character boundary.
fn cut_on_chars(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

/// A store in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// An item's text: its own `attr`, or else the `body` of its parts (the items after it,
/// `<sk>#p<nn>`, already read in sort-key order: the numbers are zero-padded), refused as
/// corrupt when it has neither or when not all of the parts it counts are there.
fn assembled(
    item: &Item,
    attr: &str,
    pk: &str,
    sk: &str,
    parts: &[Item],
) -> Result<String, StoreError> {
    if let Some(body) = get_s(item, attr) {
        return Ok(body.to_string());
    }
    let Some(count) = get_n(item, "parts") else {
        return Err(StoreError::corrupt(
            pk,
            sk,
            format!("neither `{attr}` nor `parts`"),
        ));
    };
    if parts.len() as i64 != count {
        return Err(StoreError::corrupt(
            pk,
            sk,
            format!("{} of its {count} parts found", parts.len()),
        ));
    }
    Ok(parts
        .iter()
        .map(|p| get_s(p, "body").unwrap_or_default())
        .collect())
}

/// Error codes DynamoDB answers for load or transient faults: retrying later can succeed.
const RETRYABLE_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Maps an SDK failure: throttling and transport errors are retryable; a refused request (a
/// missing table, a validation error) is not, and says why.
fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = format!("dynamodb: {}", DisplayErrorContext(&e));
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            if RETRYABLE_CODES.contains(&code) {
                StoreError::Unavailable { message }
            } else {
                StoreError::Rejected { message }
            }
        }
        _ => StoreError::Unavailable { message },
    }
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

/// A conditional write's result: `true` when it was written, `false` when its condition
/// failed (an answer, not an error), the error otherwise.
fn written<T, E, R>(res: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error(e)),
    }
}

/// The cancellation reason codes of a cancelled transaction, one per item (`"None"` for items
/// that did not fail), or `None` when the error was something else.
fn cancellation_codes(
    e: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Option<Vec<String>> {
    let se = e.as_service_error()?;
    match se {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    // Builders fail only when a required field is missing: a bug in this file, not input.
    r.unwrap_or_else(|e| panic!("dynamodb request builder: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDef {
    table_name: String,
    attribute_definitions: Vec<AttrDef>,
    key_schema: Vec<KeyDef>,
    billing_mode: String,
    time_to_live_attribute: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttrDef {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyDef {
    attribute_name: String,
    key_type: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table name `infra/table.json` gives for local runs.
    pub fn default_local_table() -> String {
        serde_json::from_str::<TableDef>(TABLE_JSON)
            .map(|t| t.table_name)
            .unwrap_or_else(|_| "ratecard-local".into())
    }

    /// Creates the table as `infra/table.json` defines it (for DynamoDB Local and tests) and
    /// enables its TTL; an existing table is left as it is.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let def: TableDef = serde_json::from_str(TABLE_JSON)
            .map_err(|e| StoreError::corrupt("infra/table.json", "", e))?;
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::from(def.billing_mode.as_str()));
        for a in &def.attribute_definitions {
            req = req.attribute_definitions(built(
                AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build(),
            ));
        }
        for k in &def.key_schema {
            req = req.key_schema(built(
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build(),
            ));
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(sdk_error(e)),
        }
        if let Some(ttl) = def.time_to_live_attribute {
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(built(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl)
                        .enabled(true)
                        .build(),
                ))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// The items of a partition, all of them or those whose sort key starts with `prefix`
    /// (consistent, all pages).
    async fn query(&self, pk: &str, sks: SkRange<'_>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            q = match sks {
                SkRange::Prefix(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                    .expression_attribute_values(":sk", s(p)),
                SkRange::Below(b) => q
                    .key_condition_expression("pk = :pk AND sk < :sk")
                    .expression_attribute_values(":sk", s(b)),
                SkRange::From(f) => q
                    .key_condition_expression("pk = :pk AND sk >= :sk")
                    .expression_attribute_values(":sk", s(f)),
            };
            let out = q.send().await.map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Writes items with BatchWriteItem, 25 per call, resending UnprocessedItems with
    /// exponential backoff and full jitter until all are written or the attempts run out.
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(built(PutRequest::builder().set_item(Some(item)).build()))
                    .build()
            })
            .collect();
        self.batch_write(requests).await
    }

    /// Sends write requests (puts or deletes) with BatchWriteItem, 25 per call, resending
    /// UnprocessedItems with exponential backoff and full jitter.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for group in requests.chunks(BATCH_WRITE_ITEMS_MAX) {
            let mut pending: Vec<WriteRequest> = group.to_vec();
            let mut resend = Resend::new("items", "BatchWriteItem");
            while !pending.is_empty() {
                resend.next_attempt(pending.len()).await?;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    fn ledger_from(item: &Item, pk: &str) -> Result<Ledger, StoreError> {
        match get_s(item, "status") {
            // Bound (see `ledger_write`): the TTL attribute removed, the lease in `lease_until`.
            // A lease taken before `lease_until` existed has only the TTL attribute.
            Some(IN_PROGRESS) => Ok(Ledger::InProgress {
                owner: get_s(item, "owner").unwrap_or_default().to_string(),
                expires_at: get_n(item, LEASE_UNTIL)
                    .or_else(|| get_n(item, TTL_ATTRIBUTE))
                    .unwrap_or(0),
                content_sha256: get_s(item, "content_sha256")
                    .unwrap_or_default()
                    .to_string(),
                bound: !item.contains_key(TTL_ATTRIBUTE),
            }),
            Some(PARTIAL) => Ok(Ledger::Partial {
                content_sha256: get_s(item, "content_sha256")
                    .unwrap_or_default()
                    .to_string(),
            }),
            Some(DONE) => {
                let summary: BatchSummary =
                    serde_json::from_str(get_s(item, "summary").unwrap_or(""))
                        .map_err(|e| StoreError::corrupt(pk, LEDGER_SK, e))?;
                Ok(Ledger::Done(summary))
            }
            other => Err(StoreError::corrupt(
                pk,
                LEDGER_SK,
                format!("status {other:?}"),
            )),
        }
    }

    /// One partition's update in a commit transaction: `b:<batch>` (and `i:<batch>`) set,
    /// `version` bumped, on the conditions of the crate docs.
    fn commit_update(&self, batch_id: &str, part: &CommitAccount) -> TransactWriteItem {
        let mut set = String::from("SET #b = :chunks");
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                &usage_pk(&part.account, &part.period_id),
                COMMITTED_SK,
            )))
            .expression_attribute_names("#b", format!("{COMMITTED_BATCH_PREFIX}{batch_id}"))
            .expression_attribute_values(":chunks", n(part.chunks))
            .expression_attribute_values(":one", n(1));
        if part.id_chunks > 0 {
            set.push_str(", #i = :ids");
            update = update
                .expression_attribute_names("#i", format!("{COMMITTED_IDS_PREFIX}{batch_id}"))
                .expression_attribute_values(":ids", n(part.id_chunks));
        }
        // Closed periods take no new batch; a batch whose record ids were checked against
        // version v commits only while the period is still at v (a re-commit of the same
        // batch after a lost answer passes both by `#b`).
        let mut condition = String::from("(attribute_not_exists(closed) OR attribute_exists(#b)");
        if let Some(number) = &part.late {
            // Late usage the account's policy lets into the period closed by `number`.
            condition.push_str(" OR closed = :late");
            update = update.expression_attribute_values(":late", s(number));
        }
        condition.push(')');
        match part.checked_version {
            None => {}
            Some(0) => {
                condition.push_str(" AND (attribute_exists(#b) OR attribute_not_exists(version))")
            }
            Some(v) => {
                condition.push_str(" AND (attribute_exists(#b) OR version = :checked)");
                update = update.expression_attribute_values(":checked", n(v));
            }
        }
        TransactWriteItem::builder()
            .update(built(
                update
                    .update_expression(format!("{set} ADD version :one"))
                    .condition_expression(condition)
                    .build(),
            ))
            .build()
    }

    /// A commit's marks of periods open in `owner`'s balance (their first usage), refused when
    /// the account's chain has passed the earliest of them (a later period is final).
    fn open_marks(&self, owner: &str, periods: &[&str]) -> TransactWriteItem {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&account_pk(owner), BALANCE_SK)))
            .expression_attribute_names("#lp", LAST_PERIOD)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":one_s", s("1"));
        let mut set = Vec::new();
        for (k, p) in periods.iter().enumerate() {
            u = u.expression_attribute_names(format!("#o{k}"), format!("{OPEN_PREFIX}{p}"));
            set.push(format!("#o{k} = :one_s"));
        }
        let earliest = periods.iter().min().copied().unwrap_or_default();
        TransactWriteItem::builder()
            .update(built(
                u.update_expression(format!("SET {} ADD version :one", set.join(", ")))
                    .condition_expression("attribute_not_exists(#lp) OR #lp <= :earliest")
                    .expression_attribute_values(":earliest", s(earliest))
                    .build(),
            ))
            .build()
    }

    /// A late commit's bump of the period's late-usage marker (created at version 1).
    fn marker_bump(&self, account: &str, period_id: &str, number: &str) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(built(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&account_pk(account), &late_sk(period_id))))
                    .update_expression("SET period_id = :p, #num = :n ADD version :one")
                    .expression_attribute_names("#num", "number")
                    .expression_attribute_values(":p", s(period_id))
                    .expression_attribute_values(":n", s(number))
                    .expression_attribute_values(":one", n(1))
                    .build(),
            ))
            .build()
    }

    /// A customer's late commit's bump of its reseller's marker of the period (created at
    /// version 1).
    fn resold_bump(&self, reseller: &str, period_id: &str) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(built(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&account_pk(reseller), &resold_sk(period_id))))
                    .update_expression("SET period_id = :p ADD version :one")
                    .expression_attribute_values(":p", s(period_id))
                    .expression_attribute_values(":one", n(1))
                    .build(),
            ))
            .build()
    }

    /// Clearing a late-usage marker: deleted if still at the version read, or checked absent.
    fn marker_clear(
        &self,
        account: &str,
        period_id: &str,
        check: MarkerCheck,
    ) -> TransactWriteItem {
        let k = key(&account_pk(account), &late_sk(period_id));
        match check {
            MarkerCheck::Absent => TransactWriteItem::builder()
                .condition_check(built(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                ))
                .build(),
            MarkerCheck::Version(v) => TransactWriteItem::builder()
                .delete(built(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .condition_expression("version = :v")
                        .expression_attribute_values(":v", n(v))
                        .build(),
                ))
                .build(),
        }
    }

    /// A correction put at its place in the invoice's chain (refused when taken), with the
    /// puts of its parts when it is larger than one item (a late batch of thousands of
    /// resources corrects thousands of lines): all in the caller's transaction.
    fn note_put(
        &self,
        account: &str,
        period_id: &str,
        note: &StoredNote,
    ) -> Vec<TransactWriteItem> {
        let (pk, sk) = (invoice_pk(account, period_id), note_sk(note.seq));
        let mut item = key(&pk, &sk);
        let body = serde_json::to_string(note).expect("notes serialize");
        let parts = self.body_in_parts(&mut item, "body", &body, &pk, &sk);
        let head = TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            ))
            .build();
        std::iter::once(head).chain(parts).collect()
    }

    /// An adjustment's writes in its finalize transaction: the marker cleared, the note put.
    fn adjustment_items(&self, account: &str, a: &AdjustmentWrite) -> Vec<TransactWriteItem> {
        let mut items = vec![self.marker_clear(account, &a.period_id, a.marker)];
        if let Some(note) = &a.note {
            items.extend(self.note_put(account, &a.period_id, note));
        }
        items
    }

    /// The ledger's part of a commit transaction: `DONE` with the summary on the batch's last
    /// transaction; on the others, the TTL attribute removed (bound) on condition that the
    /// lease is still ours.
    fn ledger_write(&self, commit: &Commit) -> TransactWriteItem {
        let lpk = ledger_pk(&commit.batch_id);
        match &commit.done {
            Some(summary) => {
                let mut item = key(&lpk, LEDGER_SK);
                item.insert("status".into(), s(DONE));
                item.insert("content_sha256".into(), s(&summary.content_sha256));
                item.insert(
                    "summary".into(),
                    s(serde_json::to_string(summary).expect("summaries serialize")),
                );
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .condition_expression("#st = :inprog AND #ow = :owner")
                            .expression_attribute_names("#st", "status")
                            .expression_attribute_names("#ow", "owner")
                            .expression_attribute_values(":inprog", s(IN_PROGRESS))
                            .expression_attribute_values(":owner", s(&commit.owner))
                            .build(),
                    ))
                    .build()
            }
            // Binds the batch id to its content with the partitions committed: without the TTL
            // attribute, the ledger outlives a crash of this attempt, so that another body under
            // the same id is refused rather than merged with what is committed.
            None => TransactWriteItem::builder()
                .update(built(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(&lpk, LEDGER_SK)))
                        .update_expression("REMOVE #ttl")
                        .condition_expression("#st = :inprog AND #ow = :owner")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_names("#ow", "owner")
                        .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                        .expression_attribute_values(":inprog", s(IN_PROGRESS))
                        .expression_attribute_values(":owner", s(&commit.owner))
                        .build(),
                ))
                .build(),
        }
    }

    /// Moves an account's balance on: `version` bumped (condition: still `expected`, or no
    /// balance item when 0), and `last` set when a final invoice is issued, with its period
    /// also as a plain string (`last_period`) that a payment's condition can compare.
    fn balance_update(
        &self,
        account: &str,
        expected: u64,
        last: Option<&LastFinal>,
        cleared_open: &[String],
        owed_moves: &[(&str, rust_decimal::Decimal)],
    ) -> TransactWriteItem {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&account_pk(account), BALANCE_SK)))
            .expression_attribute_values(":one", n(1));
        // The open periods the invoice closes (as read at `expected`: the condition keeps
        // the list exact).
        let mut remove = String::new();
        for (k, p) in cleared_open.iter().enumerate() {
            u = u.expression_attribute_names(format!("#c{k}"), format!("{OPEN_PREFIX}{p}"));
            remove.push_str(if k == 0 { " REMOVE " } else { ", " });
            remove.push_str(&format!("#c{k}"));
        }
        // What a new issuer's first invoice hands over to the former one, and takes back of
        // what the account owed the new one from before (under the version condition, the
        // amounts read are exact).
        let mut add = String::new();
        for (k, (issuer, amount)) in owed_moves.iter().enumerate() {
            u = u
                .expression_attribute_names(format!("#o{k}"), format!("{OWED_PREFIX}{issuer}"))
                .expression_attribute_values(format!(":o{k}"), n(*amount));
            add.push_str(&format!(", #o{k} :o{k}"));
        }
        u = match last {
            Some(l) => u
                .update_expression(format!(
                    "SET #l = :last, #lp = :lp, notes_since = :zero ADD version :one{add}{remove}"
                ))
                .expression_attribute_names("#l", "last")
                .expression_attribute_names("#lp", LAST_PERIOD)
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(
                    ":last",
                    s(serde_json::to_string(l).expect("balances serialize")),
                )
                .expression_attribute_values(":lp", s(&l.period)),
            None => u.update_expression(format!("ADD version :one{add}{remove}")),
        };
        u = if expected == 0 {
            u.condition_expression("attribute_not_exists(version)")
        } else {
            u.condition_expression("version = :v")
                .expression_attribute_values(":v", n(expected))
        };
        TransactWriteItem::builder()
            .update(built(u.build()))
            .build()
    }

    /// A document's entry in its account's history (put once).
    fn doc_put(&self, account: &str, doc: &DocRef) -> TransactWriteItem {
        let mut item = key(&account_pk(account), &doc_sk(doc));
        item.insert(
            "body".into(),
            s(serde_json::to_string(doc).expect("documents serialize")),
        );
        TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            ))
            .build()
    }

    /// The `body` JSON of each item of a partition under a sort-key prefix, in key order.
    async fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query(pk, SkRange::Prefix(prefix))
            .await?
            .iter()
            .map(|item| {
                let sk = get_s(item, "sk").unwrap_or_default();
                serde_json::from_str(get_s(item, "body").unwrap_or_default())
                    .map_err(|e| StoreError::corrupt(pk, sk, e))
            })
            .collect()
    }

    /// The three writes of finalizing, one transaction: the issuer's counter moves from n to
    /// n + 1, the invoice is put if absent, the period is closed if its usage did not move.
    fn finalize_items(
        &self,
        f: &Finalize,
    ) -> (
        TransactWriteItem,
        TransactWriteItem,
        TransactWriteItem,
        Vec<TransactWriteItem>,
    ) {
        let ipk = invoice_pk(&f.account, &f.period_id);
        let counter_update = {
            let mut u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(&counter_pk(&f.issuer), COUNTER_SK)))
                .update_expression("SET #last = :next")
                .expression_attribute_names("#last", "last")
                .expression_attribute_values(":next", n(f.expected_counter + 1));
            u = if f.expected_counter == 0 {
                u.condition_expression("attribute_not_exists(#last)")
            } else {
                u.condition_expression("#last = :expected")
                    .expression_attribute_values(":expected", n(f.expected_counter))
            };
            TransactWriteItem::builder()
                .update(built(u.build()))
                .build()
        };
        let mut inv_item = key(&ipk, FINAL_SK);
        inv_item.insert("number".into(), s(&f.number));
        let body = serde_json::to_string(&f.invoice).expect("invoices serialize");
        let parts = self.body_in_parts(&mut inv_item, "invoice", &body, &ipk, FINAL_SK);
        let invoice_put = TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(inv_item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            ))
            .build();
        let close = {
            let mut u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(&usage_pk(&f.account, &f.period_id), COMMITTED_SK)))
                .update_expression("SET closed = :number")
                .expression_attribute_values(":number", s(&f.number));
            u = if f.usage_version == 0 {
                u.condition_expression(
                    "attribute_not_exists(version) AND attribute_not_exists(closed)",
                )
            } else {
                u.condition_expression("version = :v AND attribute_not_exists(closed)")
                    .expression_attribute_values(":v", n(f.usage_version))
            };
            TransactWriteItem::builder()
                .update(built(u.build()))
                .build()
        };
        (counter_update, invoice_put, close, parts)
    }

    /// Puts `body` in `item`'s attribute `attr` when it fits one item; otherwise records its
    /// part count there (`parts`) and answers the Puts of its parts (`<sk>#p<nn>`, each with a
    /// `body` of at most [`FINAL_PART_BYTES_MAX`] bytes, cut on character boundaries), to
    /// write in the same transaction.
    fn body_in_parts(
        &self,
        item: &mut Item,
        attr: &str,
        body: &str,
        pk: &str,
        sk: &str,
    ) -> Vec<TransactWriteItem> {
        if body.len() <= FINAL_PART_BYTES_MAX {
            item.insert(attr.into(), s(body));
            return Vec::new();
        }
        let parts = cut_on_chars(body, FINAL_PART_BYTES_MAX);
        item.insert("parts".into(), n(parts.len()));
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut p = key(pk, &part_sk(sk, i));
                p.insert("body".into(), s(*part));
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(p))
                            .build(),
                    ))
                    .build()
            })
            .collect()
    }

    /// The body of `item` (read at `pk`, `sk`): its attribute `attr`, or its parts put together.
    async fn body_of(
        &self,
        item: &Item,
        attr: &str,
        pk: &str,
        sk: &str,
    ) -> Result<String, StoreError> {
        let parts = if get_s(item, attr).is_none() && get_n(item, "parts").is_some() {
            let prefix = format!("{sk}{PART_SK_INFIX}");
            self.query(pk, SkRange::Prefix(&prefix)).await?
        } else {
            Vec::new()
        };
        assembled(item, attr, pk, sk, &parts)
    }

    /// The `#COMMITTED` items of these partitions (consistent reads, BatchGetItem pages of
    /// 100 keys, unprocessed keys sent again with backoff), by partition key.
    async fn committed_items(&self, pks: &[String]) -> Result<HashMap<String, Item>, StoreError> {
        let mut found: HashMap<String, Item> = HashMap::new();
        for group in pks.chunks(BATCH_GET_KEYS_MAX) {
            let mut pending: Vec<Item> = group.iter().map(|pk| key(pk, COMMITTED_SK)).collect();
            let mut resend = Resend::new("keys", "BatchGetItem");
            while !pending.is_empty() {
                resend.next_attempt(pending.len()).await?;
                let ask = built(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .consistent_read(true)
                        .build(),
                );
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(pk) = get_s(&item, "pk") {
                        found.insert(pk.to_string(), item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    async fn committed_item(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.get(&usage_pk(account, period_id), COMMITTED_SK).await
    }
}

/// The attempts of one BatchWriteItem or BatchGetItem call whose unprocessed items or keys
/// are sent again: exponential backoff with full jitter before each attempt after the first,
/// at most `BATCH_WRITE_ATTEMPTS_MAX` attempts.
struct Resend {
    attempt: u32,
    /// What is pending ("items", "keys") and the operation, for the error.
    unit: &'static str,
    operation: &'static str,
}

impl Resend {
    fn new(unit: &'static str, operation: &'static str) -> Resend {
        Resend {
            attempt: 0,
            unit,
            operation,
        }
    }

    /// Waits before the next attempt, or refuses it (`Unavailable`) when `pending` items are
    /// still unprocessed after the last one allowed.
    async fn next_attempt(&mut self, pending: usize) -> Result<(), StoreError> {
        if self.attempt > 0 {
            tokio::time::sleep(backoff(self.attempt)).await;
        }
        if self.attempt >= BATCH_WRITE_ATTEMPTS_MAX {
            return Err(StoreError::Unavailable {
                message: format!(
                    "dynamodb: {pending} {} still unprocessed after {} {} attempts",
                    self.unit, self.attempt, self.operation
                ),
            });
        }
        self.attempt += 1;
        Ok(())
    }
}

/// The `b:<batch_id>` attributes of a `#COMMITTED` item: batch id -> chunk count.
/// `#COMMITTED`'s usage chunk count per batch.
fn committed_batches(item: &Item) -> HashMap<String, u32> {
    committed_counts(item, COMMITTED_BATCH_PREFIX)
}

/// `#COMMITTED`'s counts per batch from its attributes named `<prefix><batch_id>`.
fn committed_counts(item: &Item, prefix: &str) -> HashMap<String, u32> {
    item.iter()
        .filter_map(|(k, v)| {
            let batch = k.strip_prefix(prefix)?;
            let count = v.as_n().ok()?.parse().ok()?;
            Some((batch.to_string(), count))
        })
        .collect()
}

impl Store for DynamoStore {
    async fn ledger(&self, batch_id: &str) -> Result<Option<Ledger>, StoreError> {
        let pk = ledger_pk(batch_id);
        match self.get(&pk, LEDGER_SK).await? {
            None => Ok(None),
            Some(item) => DynamoStore::ledger_from(&item, &pk).map(Some),
        }
    }

    async fn try_lease(&self, lease: &Lease, now_s: i64) -> Result<LeaseOutcome, StoreError> {
        let pk = ledger_pk(&lease.batch_id);
        let mut item = key(&pk, LEDGER_SK);
        item.insert("status".into(), s(IN_PROGRESS));
        item.insert("owner".into(), s(&lease.owner));
        item.insert(TTL_ATTRIBUTE.into(), n(lease.expires_at));
        item.insert(LEASE_UNTIL.into(), n(lease.expires_at));
        item.insert("content_sha256".into(), s(&lease.content_sha256));
        // An unbound ledger (with the TTL attribute: nothing committed) is replaced when it is
        // absent, when its lease lapsed (whatever its content, as TTL would delete it), or when
        // it is already ours.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#st = :inprog AND attribute_exists(#ttl) AND (#ttl <= :now OR (#ow = :owner AND content_sha256 = :sha)))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":owner", s(&lease.owner))
            .expression_attribute_values(":sha", s(&lease.content_sha256))
            .send()
            .await;
        if written(put)? {
            return Ok(LeaseOutcome::Acquired);
        }
        let ledger = match self.ledger(&lease.batch_id).await? {
            Some(Ledger::Done(summary)) => return Ok(LeaseOutcome::Done(Box::new(summary))),
            // Deleted (released or expired by TTL) between the two calls: free again, but let
            // the caller try once more rather than recurse here.
            None => return Ok(LeaseOutcome::Held { expires_at: now_s }),
            Some(l) => l,
        };
        if let Some(sha) = ledger.bound_to(now_s) {
            if sha != lease.content_sha256 {
                return Ok(LeaseOutcome::Reused {
                    content_sha256: sha.to_string(),
                });
            }
        }
        match &ledger {
            Ledger::InProgress {
                owner, expires_at, ..
            } if *owner != lease.owner && *expires_at > now_s => {
                return Ok(LeaseOutcome::Held {
                    expires_at: *expires_at,
                })
            }
            // Unbound and free by now (lapsed between the two calls): the put again.
            Ledger::InProgress { bound: false, .. } => {
                return Ok(LeaseOutcome::Held { expires_at: now_s })
            }
            _ => {}
        }
        // Bound to this content (partly committed, released or lapsed): the lease is taken
        // without the TTL attribute, which the ledger must never get back.
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk, LEDGER_SK)))
            .update_expression("SET #st = :inprog, #ow = :owner, #lu = :until")
            .condition_expression(
                "attribute_not_exists(#ttl) AND content_sha256 = :sha AND (#st = :partial OR (#st = :inprog AND (#lu <= :now OR #ow = :owner)))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#lu", LEASE_UNTIL)
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":partial", s(PARTIAL))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":owner", s(&lease.owner))
            .expression_attribute_values(":until", n(lease.expires_at))
            .expression_attribute_values(":sha", s(&lease.content_sha256))
            .send()
            .await;
        Ok(match written(update)? {
            true => LeaseOutcome::Acquired,
            // Taken or done meanwhile: the caller asks again.
            false => LeaseOutcome::Held { expires_at: now_s },
        })
    }

    async fn release(&self, batch_id: &str, owner: &str) -> Result<(), StoreError> {
        let key = key(&ledger_pk(batch_id), LEDGER_SK);
        // Unbound (nothing committed): deleted, so that a retry need not wait.
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .condition_expression("#st = :inprog AND #ow = :owner AND attribute_exists(#ttl)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        if written(deleted)? {
            return Ok(());
        }
        // Bound: kept as `PARTIAL`, with no lease (and no TTL attribute, as since its bind).
        // A condition failing here too means the lease is not ours any more: nothing to do.
        let kept = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #st = :partial REMOVE #ow, #lu")
            .condition_expression("#st = :inprog AND #ow = :owner AND attribute_not_exists(#ttl)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#lu", LEASE_UNTIL)
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":partial", s(PARTIAL))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        written(kept).map(drop)
    }

    async fn put_chunks(&self, chunks: &[UsageChunk]) -> Result<(), StoreError> {
        let items = chunks
            .iter()
            .map(|c| {
                let mut item = key(&c.pk(), &c.sk());
                item.insert("body".into(), s(&c.body));
                item
            })
            .collect();
        self.batch_put(items).await
    }

    async fn sweep_chunks(&self, keep: &Keep) -> Result<(), StoreError> {
        let pk = usage_pk(&keep.account, &keep.period_id);
        let mut gone = Vec::new();
        for prefix in keep.prefixes() {
            for item in self.query(&pk, SkRange::Prefix(&prefix)).await? {
                if let Some(sk) = get_s(&item, "sk").filter(|sk| swept(sk, keep)) {
                    gone.push(
                        WriteRequest::builder()
                            .delete_request(built(
                                DeleteRequest::builder().set_key(Some(key(&pk, sk))).build(),
                            ))
                            .build(),
                    );
                }
            }
        }
        self.batch_write(gone).await
    }

    async fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        commit.check_size()?;
        // Each transaction item's part (the ledger's, last, has none).
        let mut items: Vec<TransactWriteItem> = Vec::new();
        let mut part_of: Vec<usize> = Vec::new();
        // The balances marking periods open: one item per balance (a transaction may not
        // write an item twice), conditional on its earliest period.
        let mut opens: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, part) in commit.accounts.iter().enumerate() {
            items.push(self.commit_update(&commit.batch_id, part));
            part_of.push(i);
            if let Some(number) = &part.late {
                items.push(self.marker_bump(&part.account, &part.period_id, number));
                part_of.push(i);
            }
            for owner in &part.opens {
                opens.entry(owner.as_str()).or_default().push(i);
            }
        }
        let marks = items.len();
        let mut owners: Vec<(&str, usize)> = Vec::new();
        for (owner, parts) in &opens {
            // Distinct: two customers of one reseller may mark the same period in its balance,
            // and one update may not set an attribute twice.
            let periods: Vec<&str> = parts
                .iter()
                .map(|&i| commit.accounts[i].period_id.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            items.push(self.open_marks(owner, &periods));
            // The part refused if the balance's condition fails: its earliest period.
            let earliest = parts
                .iter()
                .copied()
                .min_by_key(|&i| commit.accounts[i].period_id.as_str())
                .unwrap_or_default();
            owners.push((owner, earliest));
        }
        // Resellers' markers of their customers' late usage, unconditional: one item per
        // reseller and period, however many of its customers the transaction brings.
        let resold: std::collections::BTreeSet<(&str, &str)> = commit
            .accounts
            .iter()
            .filter(|p| p.late.is_some())
            .filter_map(|p| Some((p.resold.as_deref()?, p.period_id.as_str())))
            .collect();
        for (reseller, period_id) in resold {
            items.push(self.resold_bump(reseller, period_id));
        }
        items.push(self.ledger_write(commit));
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(e) = res else { return Ok(()) };
        let Some(codes) = cancellation_codes(&e) else {
            return Err(sdk_error(e));
        };
        if codes.last().is_some_and(|c| c == "ConditionalCheckFailed") {
            return Err(StoreError::LeaseLost {
                batch_id: commit.batch_id.clone(),
            });
        }
        for (j, code) in codes.iter().enumerate().skip(marks).take(owners.len()) {
            if code == "ConditionalCheckFailed" {
                let (owner, i) = owners[j - marks];
                let part = &commit.accounts[i];
                let number = self
                    .balance(owner)
                    .await?
                    .last
                    .map(|l| l.number)
                    .unwrap_or_default();
                return Err(StoreError::PeriodClosed {
                    account: part.account.clone(),
                    period: part.period_id.clone(),
                    number,
                });
            }
        }
        for (i, code) in codes.iter().enumerate().take(part_of.len()) {
            if code == "ConditionalCheckFailed" {
                let part = &commit.accounts[part_of[i]];
                let closed = self
                    .committed_item(&part.account, &part.period_id)
                    .await?
                    .and_then(|it| get_s(&it, "closed").map(str::to_string));
                return Err(match closed {
                    Some(number) => StoreError::PeriodClosed {
                        account: part.account.clone(),
                        period: part.period_id.clone(),
                        number,
                    },
                    None => StoreError::UsageMoved {
                        account: part.account.clone(),
                        period: part.period_id.clone(),
                    },
                });
            }
        }
        Err(StoreError::Unavailable {
            message: format!("dynamodb: commit transaction cancelled: {codes:?}"),
        })
    }

    async fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<PartitionState>, StoreError> {
        let pks: Vec<String> = keys.iter().map(|(a, p)| usage_pk(a, p)).collect();
        let found = self.committed_items(&pks).await?;
        Ok(keys
            .iter()
            .zip(&pks)
            .map(|((account, period_id), pk)| {
                let mut state = PartitionState {
                    account: account.clone(),
                    period_id: period_id.clone(),
                    ..PartitionState::default()
                };
                if let Some(item) = found.get(pk) {
                    let batches = committed_batches(item);
                    let ids = committed_counts(item, COMMITTED_IDS_PREFIX);
                    let version = get_n(item, "version").unwrap_or(0) as u64;
                    state.closed = get_s(item, "closed").map(str::to_string);
                    state.own = batches.get(batch_id).map(|&chunks| Counts {
                        chunks,
                        id_chunks: ids.get(batch_id).copied().unwrap_or(0),
                    });
                    state.batches = batches.len();
                    state.item_bytes = committed_item_bytes(
                        pk,
                        version,
                        state.closed.as_deref(),
                        batches.iter().map(|(b, n)| (b.as_str(), *n)),
                        ids.iter().map(|(b, n)| (b.as_str(), *n)),
                    );
                }
                state
            })
            .collect())
    }

    async fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> Result<RecordIds, StoreError> {
        let pk = usage_pk(account, period_id);
        // The `#COMMITTED` item first: chunks committed after it was read are left out, so the
        // ids returned are exactly those of its version.
        let Some(committed) = self.committed_item(account, period_id).await? else {
            return Ok(RecordIds::default());
        };
        let mut counts = committed_counts(&committed, COMMITTED_IDS_PREFIX);
        counts.remove(except_batch);
        let mut ids = Vec::new();
        if !counts.is_empty() {
            for item in self.query(&pk, SkRange::Prefix(IDS_SK_PREFIX)).await? {
                let sk = get_s(&item, "sk").unwrap_or("");
                let body = get_s(&item, "body");
                if let Some(part) = committed_id_chunk(&pk, sk, body, |b| counts.get(b).copied())? {
                    ids.extend(part);
                }
            }
        }
        ids.sort_unstable();
        Ok(RecordIds {
            ids,
            version: get_n(&committed, "version").unwrap_or(0) as u64,
        })
    }

    async fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<PeriodUsage, StoreError> {
        let pk = usage_pk(account, period_id);
        let Some(committed) = self.committed_item(account, period_id).await? else {
            return Ok(PeriodUsage::default());
        };
        let batches = committed_batches(&committed);
        // The `#` items are not read (they would cost read units for nothing). Chunks of a batch
        // committed after `committed` was read are not counted by it.
        let mut usage = Usage::default();
        for sks in USAGE_CHUNKS {
            for item in self.query(&pk, sks).await? {
                let sk = get_s(&item, "sk").unwrap_or("");
                let body = get_s(&item, "body");
                let count = |b: &str| batches.get(b).copied();
                if let Some(part) = committed_usage_chunk(account, &pk, sk, body, count)? {
                    usage.merge(&part).map_err(|e| overflowed(&pk, e))?;
                }
            }
        }
        Ok(PeriodUsage {
            usage,
            version: get_n(&committed, "version").unwrap_or(0) as u64,
            closed: get_s(&committed, "closed").map(str::to_string),
            batches: batches.len(),
        })
    }

    async fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<Invoice>, StoreError> {
        let pk = invoice_pk(account, period_id);
        match self.get(&pk, FINAL_SK).await? {
            None => Ok(None),
            Some(item) => {
                let body = self.body_of(&item, "invoice", &pk, FINAL_SK).await?;
                serde_json::from_str(&body)
                    .map(Some)
                    .map_err(|e| StoreError::corrupt(&pk, FINAL_SK, e))
            }
        }
    }

    async fn counter(&self, issuer: &str) -> Result<u64, StoreError> {
        Ok(self
            .get(&counter_pk(issuer), COUNTER_SK)
            .await?
            .and_then(|i| get_n(&i, "last"))
            .unwrap_or(0) as u64)
    }

    async fn finalize(&self, f: &Finalize) -> Result<(), StoreError> {
        let (counter_update, invoice_put, close, invoice_parts) = self.finalize_items(f);
        let ipk = invoice_pk(&f.account, &f.period_id);
        let mut statement = key(&ipk, STATEMENT_SK);
        let body = serde_json::to_string(&f.statement).expect("statements serialize");
        let statement_parts = self.body_in_parts(&mut statement, "body", &body, &ipk, STATEMENT_SK);
        let statement_put = TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(statement))
                    .build(),
            ))
            .build();
        let mut items = vec![
            counter_update,
            invoice_put,
            close,
            self.balance_update(
                &f.account,
                f.balance_version,
                Some(&f.last),
                &f.cleared_open,
                &f.handed_over
                    .iter()
                    .map(|(issuer, owed)| (issuer.as_str(), *owed))
                    .chain(
                        f.brought_back
                            .iter()
                            .map(|(issuer, back)| (issuer.as_str(), -*back)),
                    )
                    .collect::<Vec<_>>(),
            ),
            self.doc_put(&f.account, &f.doc),
            statement_put,
        ];
        // After the items whose cancellation codes are read by position.
        items.extend(invoice_parts);
        items.extend(statement_parts);
        for a in &f.adjustments {
            items.extend(self.adjustment_items(&f.account, a));
        }
        // The customer, recorded on its reseller's own account's period (a put of the same
        // item again is harmless: the finalize's own conditions make it once).
        if let Some(owner) = &f.resold_by {
            let mut item = key(&invoice_pk(owner, &f.period_id), &customer_sk(&f.account));
            item.insert("number".into(), s(&f.number));
            items.push(
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build(),
                    ))
                    .build(),
            );
            if f.resold_late {
                items.push(self.resold_bump(owner, &f.period_id));
            }
            // The reseller's statement still as read (a statement issued meanwhile without
            // this customer makes the finalize retry, and bump its marker).
            items.push(
                TransactWriteItem::builder()
                    .condition_check(built(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&invoice_pk(owner, &f.period_id), FINAL_SK)))
                            .condition_expression(if f.resold_late {
                                "attribute_exists(pk)"
                            } else {
                                "attribute_not_exists(pk)"
                            })
                            .build(),
                    ))
                    .build(),
            );
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(e) = res else { return Ok(()) };
        let Some(codes) = cancellation_codes(&e) else {
            return Err(sdk_error(e));
        };
        if codes.get(1).is_some_and(|c| c == "ConditionalCheckFailed") {
            let number = self
                .final_invoice(&f.account, &f.period_id)
                .await?
                .and_then(|i| i.number)
                .unwrap_or_default();
            return Err(StoreError::AlreadyFinal {
                account: f.account.clone(),
                period: f.period_id.clone(),
                number,
            });
        }
        if codes
            .iter()
            .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
        {
            return Err(StoreError::FinalizeConflict {
                account: f.account.clone(),
                period: f.period_id.clone(),
            });
        }
        Err(StoreError::Unavailable {
            message: format!("dynamodb: finalize transaction cancelled: {codes:?}"),
        })
    }

    async fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<pricing::Statement>, StoreError> {
        let pk = invoice_pk(account, period_id);
        match self.get(&pk, STATEMENT_SK).await? {
            None => Ok(None),
            Some(item) => {
                let body = self.body_of(&item, "body", &pk, STATEMENT_SK).await?;
                serde_json::from_str(&body)
                    .map(Some)
                    .map_err(|e| StoreError::corrupt(&pk, STATEMENT_SK, e))
            }
        }
    }

    async fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<StoredNote>, StoreError> {
        let pk = invoice_pk(account, period_id);
        // One query answers the notes and their parts (`NOTE#0001#p00` sorts after
        // `NOTE#0001` and before `NOTE#0002`): a note in parts is put together from them.
        let items = self.query(&pk, SkRange::Prefix(NOTE_SK_PREFIX)).await?;
        let mut notes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let sk = get_s(item, "sk").unwrap_or_default();
            if sk.contains(PART_SK_INFIX) {
                continue;
            }
            let prefix = format!("{sk}{PART_SK_INFIX}");
            let parts = items[i + 1..]
                .iter()
                .take_while(|p| get_s(p, "sk").is_some_and(|k| k.starts_with(&prefix)))
                .count();
            let body = assembled(item, "body", &pk, sk, &items[i + 1..i + 1 + parts])?;
            notes.push(serde_json::from_str(&body).map_err(|e| StoreError::corrupt(&pk, sk, e))?);
        }
        Ok(notes)
    }

    async fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pk = invoice_pk(account, period_id);
        Ok(self
            .query(&pk, SkRange::Prefix(CUSTOMER_SK_PREFIX))
            .await?
            .iter()
            .filter_map(|item| get_s(item, "sk")?.strip_prefix(CUSTOMER_SK_PREFIX))
            .map(str::to_string)
            .collect())
    }

    async fn late_markers(&self, account: &str) -> Result<Vec<LateMarker>, StoreError> {
        let pk = account_pk(account);
        self.query(&pk, SkRange::Prefix(LATE_SK_PREFIX))
            .await?
            .iter()
            .map(|item| {
                let sk = get_s(item, "sk").unwrap_or_default();
                match (
                    get_s(item, "period_id"),
                    get_s(item, "number"),
                    get_n(item, "version"),
                ) {
                    (Some(p), Some(number), Some(v)) => Ok(LateMarker {
                        period_id: p.to_string(),
                        number: number.to_string(),
                        version: v as u64,
                    }),
                    _ => Err(StoreError::corrupt(
                        &pk,
                        sk,
                        "a late-usage marker without period_id, number or version",
                    )),
                }
            })
            .collect()
    }

    async fn resold_markers(&self, account: &str) -> Result<Vec<ResoldMarker>, StoreError> {
        let pk = account_pk(account);
        self.query(&pk, SkRange::Prefix(RESOLD_SK_PREFIX))
            .await?
            .iter()
            .map(
                |item| match (get_s(item, "period_id"), get_n(item, "version")) {
                    (Some(p), Some(v)) => Ok(ResoldMarker {
                        period_id: p.to_string(),
                        version: v as u64,
                        settled: get_n(item, "settled").unwrap_or(0) as u64,
                    }),
                    _ => Err(StoreError::corrupt(
                        &pk,
                        get_s(item, "sk").unwrap_or_default(),
                        "a reseller's marker without period_id or version",
                    )),
                },
            )
            .filter(|m| m.as_ref().map_or(true, ResoldMarker::pending))
            .collect()
    }

    async fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&account_pk(account), &resold_sk(period_id))))
            .update_expression("SET settled = :v")
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        written(res)
    }

    async fn note_counter(&self, issuer: &str) -> Result<u64, StoreError> {
        Ok(self
            .get(&counter_pk(issuer), NOTE_COUNTER_SK)
            .await?
            .and_then(|i| get_n(&i, "last"))
            .unwrap_or(0) as u64)
    }

    async fn issue_note(&self, w: &NoteWrite) -> Result<(), StoreError> {
        let mut items = vec![self.marker_clear(&w.account, &w.period_id, w.marker)];
        if let Some(note) = &w.note {
            if note.note.number.is_some() {
                let mut u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&counter_pk(&w.issuer), NOTE_COUNTER_SK)))
                    .update_expression("SET #last = :next")
                    .expression_attribute_names("#last", "last")
                    .expression_attribute_values(":next", n(w.expected_counter + 1));
                u = if w.expected_counter == 0 {
                    u.condition_expression("attribute_not_exists(#last)")
                } else {
                    u.condition_expression("#last = :expected")
                        .expression_attribute_values(":expected", n(w.expected_counter))
                };
                items.push(
                    TransactWriteItem::builder()
                        .update(built(u.build()))
                        .build(),
                );
                // The next final invoice brings the note forward (a finalize racing this
                // note is refused by its own condition on `version`), unless another issuer's
                // is the account's last: then it is owed to this issuer. Routed by the last
                // final invoice as read, kept only while it is the last.
                let mut u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&account_pk(&w.account), BALANCE_SK)))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":total", n(note.note.total));
                let last_period = match &w.into {
                    NoteInto::ChainAt { last_period } => last_period.as_deref(),
                    NoteInto::Elsewhere { last_period } => Some(last_period.as_str()),
                };
                u = u.expression_attribute_names("#lp", LAST_PERIOD);
                u = match last_period {
                    None => u.condition_expression("attribute_not_exists(#lp)"),
                    // A balance written before `last_period` was kept (its last final invoice
                    // only in `last`'s JSON): unmoved since the read, by its version.
                    Some(lp) => u
                        .condition_expression(
                            "#lp = :lp OR (attribute_not_exists(#lp) AND version = :v)",
                        )
                        .expression_attribute_values(":lp", s(lp))
                        .expression_attribute_values(":v", n(w.balance_version)),
                };
                u = if matches!(w.into, NoteInto::Elsewhere { .. }) {
                    u.update_expression("ADD version :one, #owed :total")
                        .expression_attribute_names("#owed", format!("{OWED_PREFIX}{}", w.issuer))
                } else {
                    u.update_expression("ADD version :one, notes_since :total")
                };
                items.push(
                    TransactWriteItem::builder()
                        .update(built(u.build()))
                        .build(),
                );
            }
            items.extend(self.note_put(&w.account, &w.period_id, note));
        }
        if let Some(doc) = &w.doc {
            items.push(self.doc_put(&w.account, doc));
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(e) = res else { return Ok(()) };
        let Some(codes) = cancellation_codes(&e) else {
            return Err(sdk_error(e));
        };
        if codes
            .iter()
            .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
        {
            return Err(StoreError::NoteConflict {
                account: w.account.clone(),
                period: w.period_id.clone(),
            });
        }
        Err(StoreError::Unavailable {
            message: format!("dynamodb: note transaction cancelled: {codes:?}"),
        })
    }

    async fn balance(&self, account: &str) -> Result<Balance, StoreError> {
        let pk = account_pk(account);
        let Some(item) = self.get(&pk, BALANCE_SK).await? else {
            return Ok(Balance::default());
        };
        let last = match get_s(&item, "last") {
            Some(text) => Some(
                serde_json::from_str(text).map_err(|e| StoreError::corrupt(&pk, BALANCE_SK, e))?,
            ),
            None => None,
        };
        let notes_since = match item.get("notes_since").and_then(|v| v.as_n().ok()) {
            Some(text) => text
                .parse()
                .map_err(|e| StoreError::corrupt(&pk, BALANCE_SK, format!("notes_since: {e}")))?,
            None => rust_decimal::Decimal::ZERO,
        };
        let open = item
            .keys()
            .filter_map(|k| k.strip_prefix(OPEN_PREFIX))
            .map(str::to_string)
            .collect();
        let mut owed_elsewhere = std::collections::BTreeMap::new();
        for (k, v) in &item {
            let Some(issuer) = k.strip_prefix(OWED_PREFIX) else {
                continue;
            };
            let amount = v
                .as_n()
                .map_err(|_| StoreError::corrupt(&pk, BALANCE_SK, format!("{k}: not a number")))?
                .parse()
                .map_err(|e| StoreError::corrupt(&pk, BALANCE_SK, format!("{k}: {e}")))?;
            owed_elsewhere.insert(issuer.to_string(), amount);
        }
        Ok(Balance {
            version: get_n(&item, "version").unwrap_or(0) as u64,
            last,
            notes_since,
            owed_elsewhere,
            open,
        })
    }

    async fn record_payment(&self, p: &PaymentWrite) -> Result<PaymentOutcome, StoreError> {
        let apk = account_pk(&p.account);
        let sk = payment_sk(&p.payment.reference);
        let body = serde_json::to_string(&p.payment).expect("payments serialize");
        let mut item = key(&apk, &sk);
        item.insert("body".into(), s(&body));
        let put = TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            ))
            .build();
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&apk, BALANCE_SK)))
            .expression_attribute_values(":one", n(1));
        let mut items = vec![put];
        if let Some(payee) = &p.payment.payee {
            // To a former issuer: settles what the account owes it, on no invoice of the
            // account's, so no period's close refuses it.
            let bump = bump
                .update_expression("ADD version :one, #owed :paid")
                .expression_attribute_names("#owed", format!("{OWED_PREFIX}{payee}"))
                .expression_attribute_values(":paid", n(-p.payment.amount));
            items.push(
                TransactWriteItem::builder()
                    .update(built(bump.build()))
                    .build(),
            );
        } else {
            // The account's chain must not have passed the period (a later period final while
            // this one was skipped): the payment would be on no invoice.
            let bump = bump
                .update_expression("ADD version :one")
                .condition_expression("attribute_not_exists(#lp) OR #lp <= :period")
                .expression_attribute_names("#lp", LAST_PERIOD)
                .expression_attribute_values(":period", s(&p.period_id));
            items.push(
                TransactWriteItem::builder()
                    .update(built(bump.build()))
                    .build(),
            );
            // The period the payment falls in must still be open (a missing `#COMMITTED` item
            // is an open period: the condition holds on an absent item).
            items.push(
                TransactWriteItem::builder()
                    .condition_check(built(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&usage_pk(&p.account, &p.period_id), COMMITTED_SK)))
                            .condition_expression("attribute_not_exists(closed)")
                            .build(),
                    ))
                    .build(),
            );
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(e) = res else {
            return Ok(PaymentOutcome::Recorded);
        };
        let Some(codes) = cancellation_codes(&e) else {
            return Err(sdk_error(e));
        };
        if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
            // The same payment by value, as the embedded store compares it: `0.0070` and
            // `0.007` are one amount, though their texts differ.
            let same = self
                .get(&apk, &sk)
                .await?
                .and_then(|it| get_s(&it, "body").map(str::to_string))
                .and_then(|b| serde_json::from_str::<RecordedPayment>(&b).ok())
                .is_some_and(|stored| stored == p.payment);
            return if same {
                Ok(PaymentOutcome::AlreadyRecorded)
            } else {
                Err(StoreError::PaymentConflict {
                    account: p.account.clone(),
                    reference: p.payment.reference.clone(),
                })
            };
        }
        if codes.get(2).is_some_and(|c| c == "ConditionalCheckFailed") {
            let number = self
                .committed_item(&p.account, &p.period_id)
                .await?
                .and_then(|it| get_s(&it, "closed").map(str::to_string))
                .unwrap_or_default();
            return Err(StoreError::PeriodClosed {
                account: p.account.clone(),
                period: p.period_id.clone(),
                number,
            });
        }
        if codes.get(1).is_some_and(|c| c == "ConditionalCheckFailed") {
            let number = self
                .balance(&p.account)
                .await?
                .last
                .map(|l| l.number)
                .unwrap_or_default();
            return Err(StoreError::PeriodClosed {
                account: p.account.clone(),
                period: p.period_id.clone(),
                number,
            });
        }
        Err(StoreError::Unavailable {
            message: format!("dynamodb: payment transaction cancelled: {codes:?}"),
        })
    }

    async fn payments(&self, account: &str) -> Result<Vec<RecordedPayment>, StoreError> {
        self.bodies(&account_pk(account), PAYMENT_SK_PREFIX).await
    }

    async fn history(&self, account: &str) -> Result<Vec<DocRef>, StoreError> {
        let mut docs: Vec<DocRef> = self.bodies(&account_pk(account), DOC_SK_PREFIX).await?;
        docs.reverse();
        Ok(docs)
    }

    async fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> Result<(), StoreError> {
        let pk = config_pk(kind);
        let sha = config_sha256(body);
        let conflict = || StoreError::ConfigVersionConflict {
            kind: kind.name().to_string(),
            version: version.to_string(),
        };
        // A body larger than one item goes in parts keyed by its hash, written before the
        // head that names them: parts of another body under the same version never collide,
        // and only the head's conditional put decides which body the version has.
        let parts = config_parts(body);
        let mut head = key(&pk, &config_sk(version));
        head.insert("sha256".into(), s(&sha));
        if parts.len() == 1 {
            head.insert("body".into(), s(body));
        } else {
            head.insert("parts".into(), n(parts.len()));
            let items = parts
                .iter()
                .enumerate()
                .map(|(i, part)| {
                    let mut item = key(&pk, &config_part_sk(version, &sha, i));
                    item.insert("body".into(), s(*part));
                    item
                })
                .collect();
            self.batch_put(items).await?;
        }
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(pk) OR sha256 = :sha OR body = :body")
            .expression_attribute_values(":sha", s(&sha))
            // Heads written before bodies had a hash carry the body only; a large body is
            // never compared whole (the expression would exceed DynamoDB's limits).
            .expression_attribute_values(":body", s(if parts.len() == 1 { body } else { "" }))
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_condition_failed(&e) => return Err(conflict()),
            Err(e) => return Err(sdk_error(e)),
        }
        if make_current {
            let mut cur = key(&pk, CURRENT_SK);
            cur.insert("version".into(), s(version));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(cur))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(())
    }

    async fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> Result<Option<ConfigItem>, StoreError> {
        let pk = config_pk(kind);
        let version = match version {
            Some(v) => v.to_string(),
            None => match self.get(&pk, CURRENT_SK).await? {
                Some(item) => get_s(&item, "version").unwrap_or_default().to_string(),
                None => return Ok(None),
            },
        };
        let sk = config_sk(&version);
        let Some(head) = self.get(&pk, &sk).await? else {
            return Ok(None);
        };
        let body = match (get_s(&head, "body"), get_n(&head, "parts")) {
            (Some(body), _) => body.to_string(),
            (None, Some(count)) => {
                let sha = get_s(&head, "sha256").unwrap_or_default();
                let prefix = config_part_prefix(&version, sha);
                let items = self.query(&pk, SkRange::Prefix(&prefix)).await?;
                let mut body = String::new();
                for (i, item) in items.iter().enumerate() {
                    if get_s(item, "sk") != Some(config_part_sk(&version, sha, i).as_str()) {
                        return Err(StoreError::corrupt(&pk, &sk, format!("part {i} missing")));
                    }
                    body.push_str(get_s(item, "body").unwrap_or_default());
                }
                if items.len() as i64 != count || config_sha256(&body) != sha {
                    return Err(StoreError::corrupt(
                        &pk,
                        &sk,
                        format!("{} of {count} parts, or their hash differs", items.len()),
                    ));
                }
                body
            }
            (None, None) => return Err(StoreError::corrupt(&pk, &sk, "no body and no parts")),
        };
        Ok(Some(ConfigItem { version, body }))
    }

    async fn readings(&self) -> Result<pricing::import::Readings, StoreError> {
        let items = self.query(READINGS_PK, SkRange::Prefix("SHARD#")).await?;
        let mut out = pricing::import::Readings::new();
        for item in items {
            let sk = get_s(&item, "sk").unwrap_or_default();
            let body = get_s(&item, "body")
                .ok_or_else(|| StoreError::corrupt(READINGS_PK, sk, "no body"))?;
            let shard: pricing::import::Readings =
                serde_json::from_str(body).map_err(|e| StoreError::corrupt(READINGS_PK, sk, e))?;
            out.extend(shard);
        }
        Ok(out)
    }

    /// Each shard read, merged and put back on the condition that its version did not move
    /// (a concurrent batch's merge is read again and kept, after a jittered backoff), a few
    /// times before giving up with a retryable error.
    async fn merge_readings(&self, readings: &pricing::import::Readings) -> Result<(), StoreError> {
        const ATTEMPTS: u32 = 8;
        for (shard, add) in readings_by_shard(readings) {
            let sk = readings_sk(shard);
            let mut attempt = 1;
            loop {
                let old = self.get(READINGS_PK, &sk).await?;
                let version = old.as_ref().and_then(|i| get_n(i, "version"));
                let old_body = old.as_ref().and_then(|i| get_s(i, "body"));
                let body =
                    merged_readings_body(old_body.map(str::as_bytes), &add, READINGS_PK, &sk)?;
                let mut item = key(READINGS_PK, &sk);
                item.insert(
                    "body".into(),
                    s(String::from_utf8(body).expect("JSON is UTF-8")),
                );
                item.insert("version".into(), n(version.unwrap_or(0) + 1));
                let put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item));
                let put = match version {
                    Some(v) => put
                        .condition_expression("version = :v")
                        .expression_attribute_values(":v", n(v)),
                    None => put.condition_expression("attribute_not_exists(pk)"),
                };
                match put.send().await {
                    Ok(_) => break,
                    Err(e) if is_condition_failed(&e) && attempt < ATTEMPTS => {
                        // Another batch merged this shard meanwhile: read it again, after a
                        // jittered pause so that concurrent nightly batches spread out.
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) if is_condition_failed(&e) => {
                        return Err(StoreError::Unavailable {
                            message: format!(
                            "carried readings {sk}: {ATTEMPTS} concurrent writes in a row; retry"
                        ),
                        })
                    }
                    Err(e) => return Err(sdk_error(e)),
                }
            }
        }
        Ok(())
    }

    async fn fanout(&self, batch_id: &str) -> Result<Option<(u64, String)>, StoreError> {
        let pk = fanout_pk(batch_id);
        let Some(item) = self.get(&pk, FANOUT_SK).await? else {
            return Ok(None);
        };
        let version = get_n(&item, "version")
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| StoreError::corrupt(&pk, FANOUT_SK, "no version"))?;
        let body =
            get_s(&item, "body").ok_or_else(|| StoreError::corrupt(&pk, FANOUT_SK, "no body"))?;
        Ok(Some((version, body.to_string())))
    }

    async fn put_fanout(
        &self,
        batch_id: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, StoreError> {
        let pk = fanout_pk(batch_id);
        let mut item = key(&pk, FANOUT_SK);
        item.insert("body".into(), s(body.to_string()));
        item.insert("version".into(), n(expected.unwrap_or(0) + 1));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match expected {
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        written(put.send().await)
    }
}
