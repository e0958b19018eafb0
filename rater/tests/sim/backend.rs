//! What the simulator's checks need from a store beyond the `Store` trait: every item, to prove a refused request wrote nothing and that no half-written batch is visible.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use rater::model::{COMMITTED_BATCH_PREFIX, COMMITTED_SK};
use rater::store::Store;
use rater::{DynamoStore, EmbeddedStore};

/// One stored item, comparable across two reads of the same store.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// For a `#COMMITTED` item: committed batch id -> its chunk count.
    pub committed: BTreeMap<String, u64>,
    /// The whole item as text.
    pub text: String,
}

pub trait Backend: Store + 'static {
    /// Every item, in key order.
    fn items(&self) -> impl Future<Output = Vec<Item>> + Send;
}

impl Backend for EmbeddedStore {
    async fn items(&self) -> Vec<Item> {
        self.dump()
            .expect("dump")
            .into_iter()
            .map(|(pk, sk, v)| {
                let mut committed = BTreeMap::new();
                if sk == COMMITTED_SK {
                    // The embedded store keeps `{"batches": {id: chunks}, "version": n, ...}`.
                    let json: serde_json::Value = serde_json::from_slice(&v).expect("json");
                    if let Some(m) = json["batches"].as_object() {
                        for (id, n) in m {
                            committed.insert(id.clone(), n.as_u64().expect("a chunk count"));
                        }
                    }
                }
                Item {
                    pk,
                    sk,
                    committed,
                    text: String::from_utf8_lossy(&v).into_owned(),
                }
            })
            .collect()
    }
}

impl Backend for DynamoStore {
    async fn items(&self) -> Vec<Item> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                let s = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    other => panic!("item without a string {k}: {other:?}"),
                };
                let (pk, sk) = (s("pk"), s("sk"));
                let mut committed = BTreeMap::new();
                if sk == COMMITTED_SK {
                    for (k, v) in item {
                        if let (Some(id), AttributeValue::N(n)) =
                            (k.strip_prefix(COMMITTED_BATCH_PREFIX), v)
                        {
                            committed.insert(id.to_string(), n.parse().expect("a chunk count"));
                        }
                    }
                }
                let mut fields: Vec<String> =
                    item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort();
                out.push(Item {
                    pk,
                    sk,
                    committed,
                    text: fields.join(" | "),
                });
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        out
    }
}
