//! The simulator's exports bucket and shard queue, in memory: objects by key, ranged reads checked against the ETag, and the queue's messages in the order sent.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rater::error::ExportProblem;
use rater::objects::{ObjectLoc, ObjectMeta, Objects};

#[derive(Default)]
struct State {
    /// key -> (bytes, ETag).
    objects: HashMap<String, (Vec<u8>, String)>,
    queue: Vec<String>,
    shard_bytes: Option<u64>,
}

#[derive(Clone, Default)]
pub struct SimObjects(Arc<Mutex<State>>);

impl SimObjects {
    pub fn put_export(&self, key: &str, bytes: &[u8]) {
        let etag = format!("\"{}\"", &rater::sha256_hex(bytes)[..32]);
        let mut s = self.0.lock().unwrap();
        s.objects.insert(key.to_string(), (bytes.to_vec(), etag));
    }

    /// Exports larger than `bytes` are cut in shards from now on.
    pub fn set_shard_bytes(&self, bytes: u64) {
        self.0.lock().unwrap().shard_bytes = Some(bytes);
    }

    pub fn take_messages(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().queue)
    }

    /// Puts a message back (a failed delivery: SQS hands it out again later).
    pub fn requeue(&self, message: String) {
        self.0.lock().unwrap().queue.push(message);
    }
}

impl Objects for SimObjects {
    /// Small ranges: a shard of a few hundred bytes still crosses range bounds.
    fn range_bytes(&self) -> u64 {
        97
    }

    async fn head(&self, loc: &ObjectLoc) -> Result<Option<ObjectMeta>, ExportProblem> {
        let s = self.0.lock().unwrap();
        Ok(s.objects.get(&loc.key).map(|(bytes, etag)| ObjectMeta {
            size: bytes.len() as u64,
            etag: etag.clone(),
            version_id: None,
            checksum: None,
        }))
    }

    fn get_range(
        &self,
        loc: ObjectLoc,
        etag: String,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ExportProblem>> + Send + 'static {
        let me = self.clone();
        async move {
            let s = me.0.lock().unwrap();
            let Some((bytes, tag)) = s.objects.get(&loc.key) else {
                return Err(ExportProblem::Missing);
            };
            if *tag != etag {
                return Err(ExportProblem::Changed);
            }
            Ok(bytes[start as usize..end as usize].to_vec())
        }
    }

    async fn put(&self, loc: &ObjectLoc, body: Vec<u8>, _: &str) -> Result<(), ExportProblem> {
        self.put_export(&loc.key, &body);
        Ok(())
    }

    fn shard_bytes(&self) -> Option<u64> {
        self.0.lock().unwrap().shard_bytes
    }

    async fn enqueue(&self, messages: Vec<String>) -> Result<(), ExportProblem> {
        self.0.lock().unwrap().queue.extend(messages);
        Ok(())
    }
}
