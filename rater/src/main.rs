//! The rater Lambda function: builds the DynamoDB client and loads the configuration once, then hands every event to `rater::event`.
//!
//! Environment:
//! - `RATECARD_TABLE` (required): the table.
//! - `RATECARD_ISSUER` (default `ratecard`): who numbers final invoices.
//! - `RATECARD_CATALOG` and `RATECARD_ACCOUNTS`: paths of catalog and accounts JSON files
//!   bundled with the function. When both are set they are used (and stored as config versions
//!   on first use); otherwise the configuration is read from the table's `CONFIG#` items.
//! - `RATECARD_CONFIG_VERSION`: pins the stored configuration: `<catalog version>,<accounts
//!   version>`, or one version for both. Unset: the versions marked current
//!   (`ratecard publish-config`).
//!
//! - `RATECARD_OPERATORS`: IAM principal ARNs (or patterns ending in `*`) with the operator
//!   role: finalize, close, record payments, override a period's end. Comma-separated.
//! - `RATECARD_EXPORTS_BUCKET`: the bucket nightly exports are dropped in (its
//!   `ObjectCreated` notifications are S3 events rated by `rater::exports`); `GET /exports`
//!   answers for its keys. A custom `AWS_ENDPOINT_URL_S3` (a local S3) is addressed path-style.
//! - `RATECARD_SHARD_QUEUE_URL`: the shard queue (SQS; its messages trigger this function).
//!   With it, an export larger than `RATECARD_SHARD_BYTES` (default
//!   [`rater::shards::SHARD_BYTES_DEFAULT`]) is cut into shards rated by parallel invocations
//!   (`rater::shards`); without it every export is rated by the invocation its event reaches.
//!   A custom `AWS_ENDPOINT_URL_SQS` (a local SQS) is honoured by the SDK.
//! - `RATECARD_LEASE_S` (default [`rater::limits::LEASE_S`]): how long a batch's lease holds
//!   before another invocation may take it over (a crashed invocation's batch resumes then;
//!   one that committed nothing may then be taken by another body under the same id). Keep it
//!   above the function's timeout, so that no attempt outlives its lease.
//! - `RATECARD_CLOSE_GRACE_HOURS` (default 72): how long after a period ends the scheduled
//!   close (`{"close": {"time": ...}}`) waits before finalizing it.
//!
//! Configuration is loaded at cold start only: a newly published version reaches new execution
//! environments (or pin it and redeploy).

use anyhow::{bail, Context, Result};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rater::model::ConfigKind;
use rater::{DynamoStore, RaterConfig, RaterError, Store};
use serde_json::Value;

async fn load_config(store: &DynamoStore, issuer: &str) -> Result<RaterConfig> {
    let files = (
        std::env::var("RATECARD_CATALOG").ok(),
        std::env::var("RATECARD_ACCOUNTS").ok(),
    );
    if let (Some(catalog), Some(accounts)) = files {
        let catalog_json =
            std::fs::read_to_string(&catalog).with_context(|| format!("reading {catalog}"))?;
        let accounts_json =
            std::fs::read_to_string(&accounts).with_context(|| format!("reading {accounts}"))?;
        return Ok(RaterConfig::from_json(
            &catalog_json,
            &accounts_json,
            issuer,
        )?);
    }
    let pinned = std::env::var("RATECARD_CONFIG_VERSION")
        .ok()
        .filter(|v| !v.is_empty());
    let (catalog_v, accounts_v) = match pinned
        .as_deref()
        .map(|v| v.split_once(',').unwrap_or((v, v)))
    {
        Some((c, a)) => (Some(c.trim().to_string()), Some(a.trim().to_string())),
        None => (None, None),
    };
    let catalog = store
        .config(ConfigKind::Catalog, catalog_v.as_deref())
        .await?
        .context(
            "no catalog config in the table: run `ratecard publish-config` or set RATECARD_CATALOG",
        )?;
    let accounts = store
        .config(ConfigKind::Accounts, accounts_v.as_deref())
        .await?
        .context("no accounts config in the table: run `ratecard publish-config` or set RATECARD_ACCOUNTS")?;
    Ok(RaterConfig::from_json(
        &catalog.body,
        &accounts.body,
        issuer,
    )?)
}

/// A failed direct invocation: the error type says the rule and whether a retry can help, so
/// that alarms and the dead-letter queue show it without opening the logs; the message is the
/// public one (the log line has the details).
fn diagnostic(e: &RaterError) -> Diagnostic {
    Diagnostic {
        error_type: format!(
            "Ratecard.{}{}",
            e.code(),
            if e.retryable() { ".Retryable" } else { "" }
        ),
        error_message: e.public_message(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let table = match std::env::var("RATECARD_TABLE") {
        Ok(t) if !t.is_empty() => t,
        _ => bail!("RATECARD_TABLE is not set"),
    };
    let issuer = std::env::var("RATECARD_ISSUER").unwrap_or_else(|_| "ratecard".to_string());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let mut objects = rater::objects::S3Objects::from_sdk(&sdk);
    if let Some(url) = std::env::var("RATECARD_SHARD_QUEUE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let shard_bytes = match std::env::var("RATECARD_SHARD_BYTES") {
            Ok(b) => b
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&b| b > 0)
                .with_context(|| {
                    format!("RATECARD_SHARD_BYTES `{b}` is not a positive number of bytes")
                })?,
            Err(_) => rater::shards::SHARD_BYTES_DEFAULT,
        };
        objects = objects.with_queue(rater::objects::ShardQueue {
            client: aws_sdk_sqs::Client::new(&sdk),
            url,
            shard_bytes,
        });
    }
    let mut config = load_config(&store, &issuer).await?;
    let var = |name: &str| std::env::var(name).ok();
    config.principals = rater::auth::Principals::parse(
        var("RATECARD_OPERATORS").as_deref(),
        var("RATECARD_UPLOADERS").as_deref(),
        var("RATECARD_RESELLERS").as_deref(),
        &config.catalog,
    )?;
    config.exports_bucket = var("RATECARD_EXPORTS_BUCKET").filter(|b| !b.is_empty());
    if let Ok(l) = std::env::var("RATECARD_LEASE_S") {
        config.lease_s = l
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|&s| s > 0)
            .with_context(|| {
                format!("RATECARD_LEASE_S `{l}` is not a positive number of seconds")
            })?;
    }
    if let Ok(h) = std::env::var("RATECARD_CLOSE_GRACE_HOURS") {
        config.close_grace_hours = h.trim().parse().with_context(|| {
            format!("RATECARD_CLOSE_GRACE_HOURS `{h}` is not a number of hours")
        })?;
    }
    eprintln!(
        "rater: table {}, issuer {}, catalog {} {}, accounts {}",
        store.table(),
        config.issuer,
        config.catalog.id,
        config.catalog.version,
        config.accounts.version
    );
    let (store, config, objects) = (&store, &config, &objects);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut log = rater::event::RequestLog::new(&event.context.request_id);
        let out =
            rater::event::handle_event_objects(store, config, objects, event.payload, &mut log)
                .await;
        // One JSON line per request on stdout (CloudWatch Logs): batch, outcome, duration.
        println!(
            "{}",
            serde_json::to_string(&log).unwrap_or_else(|e| format!("{{\"log_error\":\"{e}\"}}"))
        );
        out.map_err(|e| diagnostic(&e))
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
