//! Issue 15 end to end: exports larger than a shard, dropped in S3 (moto), cut into shards that the shard queue (SQS, moto) hands to the real `rater` binary behind the Runtime API on DynamoDB Local, delivered as AWS delivers: a message twice, a process killed half-way through a shard and its message delivered again, two exports at once, and an export with a bad record refused whole with its line in the report.
//!
//! The expected invoice is the same bytes rated whole by the CLI into an embedded store: a
//! sharded export must bill exactly what the whole export bills (whose figures the other
//! tests check against hand-worked goldens), to the cent, however its shards are delivered.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::{build_binaries, DynamoLocal, KillOnDrop, Moto, Outcome, RuntimeApi};
use serde_json::{json, Value};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(300);
const TABLE: &str = "ratecard-e2e-shards";
const BUCKET: &str = "ratecard-shards-e2e";
const QUEUE: &str = "ratecard-shards-e2e";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/billing-ops/alice";
/// 40 MiB shards: the 200 MB export is cut in five, the 100 MB ones in three.
const SHARD_BYTES: u64 = 40 * 1024 * 1024;
/// A crashed shard's lease (`RATECARD_LEASE_S`): its retry waits this long at most.
const LEASE_S: u64 = 20;

/// A canonical CSV export of about `bytes` bytes: the example month's records again and
/// again, each copy under its own record ids (`<id>-<tag><copy>`) and resources (a thousand,
/// so that invoices keep a bounded number of lines). Answers the bytes and the record count.
fn export(tag: &str, bytes: usize) -> (Vec<u8>, u64) {
    let text = std::fs::read_to_string(
        e2e::workspace_root().join("examples/exports/canonical-2017-02.csv"),
    )
    .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    // The first four fields (id, account, project, resource) hold no quote or comma.
    let rows: Vec<Vec<&str>> = lines.map(|l| l.splitn(5, ',').collect()).collect();
    let mut out = Vec::with_capacity(bytes + 256);
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    let mut records = 0u64;
    let mut copy = 0usize;
    while out.len() < bytes {
        for f in &rows {
            let line = format!(
                "{}-{tag}{copy},{},{},{}-{},{}\n",
                f[0],
                f[1],
                f[2],
                f[3],
                copy % 1000,
                f[4]
            );
            out.extend_from_slice(line.as_bytes());
            records += 1;
        }
        copy += 1;
    }
    (out, records)
}

/// A message as SQS hands it out, and the event Lambda's SQS event source makes of it.
#[derive(Clone)]
struct Message {
    id: String,
    receipt: String,
    body: Value,
    event: Value,
}

struct Deployment {
    api: RuntimeApi,
    moto: Moto,
    ddb: DynamoLocal,
    queue: String,
}

impl Deployment {
    fn put(&self, key: &str, body: &[u8]) -> Value {
        let etag = self.moto.put(BUCKET, key, body);
        e2e::s3_event(BUCKET, key, body.len(), &etag)
    }

    fn invoke(&self, event: Value) -> Value {
        match self.api.invoke(event, INVOKE_TIMEOUT) {
            Outcome::Response(r) => r,
            Outcome::Error(e) => panic!("the invocation failed: {e}"),
        }
    }

    fn receive(&self) -> Vec<Message> {
        let v = self.moto.sqs(
            "ReceiveMessage",
            json!({"QueueUrl": self.queue, "MaxNumberOfMessages": 10, "VisibilityTimeout": 900,
                   "AttributeNames": ["All"]}),
        );
        v["Messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let body = m["Body"].as_str().unwrap().to_string();
                let event = json!({"Records": [{
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": body,
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{QUEUE}"),
                    "awsRegion": "us-east-1"
                }]});
                Message {
                    id: m["MessageId"].as_str().unwrap().to_string(),
                    receipt: m["ReceiptHandle"].as_str().unwrap().to_string(),
                    body: serde_json::from_str(&body).unwrap(),
                    event,
                }
            })
            .collect()
    }

    /// Delivers a message as the event source mapping does: deleted when the function
    /// reports no failure, made visible again (a retry) when it names the message.
    fn deliver(&self, m: &Message) -> Value {
        let out = self.invoke(m.event.clone());
        let failed = out["batchItemFailures"].as_array().unwrap();
        if failed.is_empty() {
            self.moto.sqs(
                "DeleteMessage",
                json!({"QueueUrl": self.queue, "ReceiptHandle": m.receipt}),
            );
        } else {
            assert_eq!(failed[0]["itemIdentifier"], m.id.as_str(), "{out}");
            self.moto.sqs(
                "ChangeMessageVisibility",
                json!({"QueueUrl": self.queue, "ReceiptHandle": m.receipt, "VisibilityTimeout": 1}),
            );
        }
        out
    }

    fn call(&self, path: &str, query: Value) -> (u64, Value) {
        let event = e2e::signed_url_event("GET", path, OPERATOR, "", query, json!({}));
        let r = self.invoke(event);
        let body = r["body"].as_str().unwrap();
        (
            r["statusCode"].as_u64().unwrap(),
            serde_json::from_str(body).unwrap(),
        )
    }

    fn status(&self, key: &str) -> Value {
        let (status, body) = self.call("/exports", json!({"key": key}));
        assert_eq!(status, 200, "{body}");
        body
    }

    fn total(&self) -> Option<String> {
        let (status, body) = self.call("/", json!({"account": "smb-tenant", "period": "2017-02"}));
        match status {
            200 => Some(body["invoices"][0]["total"].as_str().unwrap().to_string()),
            _ => None,
        }
    }
}

fn cli(bin: &std::path::Path, env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = e2e::run_ratecard(bin, env, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ratecard {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn function(
    bin: &std::path::Path,
    api: &RuntimeApi,
    env: &[(&'static str, String)],
    log: &std::fs::File,
) -> KillOnDrop {
    KillOnDrop(
        Command::new(bin.join("rater"))
            .envs(api.env())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RATECARD_TABLE", TABLE)
            .env("RATECARD_EXPORTS_BUCKET", BUCKET)
            .env("RATECARD_SHARD_BYTES", SHARD_BYTES.to_string())
            .env("RATECARD_LEASE_S", LEASE_S.to_string())
            .env(
                "RATECARD_OPERATORS",
                "arn:aws:sts::123456789012:assumed-role/billing-ops/*",
            )
            .env_remove("RATECARD_CATALOG")
            .env_remove("RATECARD_ACCOUNTS")
            .stdout(log.try_clone().unwrap())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .expect("start the rater binary"),
    )
}

#[test]
fn large_exports_are_rated_in_shards_exactly_once_through_the_queue() {
    let bin = build_binaries("rater");
    let root = e2e::workspace_root();
    let ddb = DynamoLocal::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let queue = moto.create_queue(QUEUE);
    let store = format!("--store=dynamodb:{TABLE}");
    let catalog = format!(
        "--catalog={}",
        root.join("examples/catalogs/cloudstack.json").display()
    );
    let accounts = format!(
        "--accounts={}",
        root.join("examples/accounts/cloudstack.json").display()
    );
    let mut env = ddb.env();
    env.extend(moto.env());
    env.push(("RATECARD_SHARD_QUEUE_URL", queue.clone()));
    cli(&bin, &env, &["create-table", &store]);
    cli(&bin, &env, &["publish-config", &catalog, &accounts, &store]);

    // The exports, and what they bill rated whole by the CLI (one batch each).
    let (a, a_records) = export("a", 200_000_000);
    let (b, b_records) = export("b", 100_000_000);
    let (c, _) = export("c", 100_000_000);
    let dir = std::env::temp_dir().join(format!("ratecard-e2e-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let whole = format!("--store=embedded:{}", dir.join("whole.redb").display());
    let mut expected = String::new();
    for (name, bytes) in [("a.csv", &a), ("b.csv", &b)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = cli(
            &bin,
            &[],
            &[
                "rate",
                path.to_str().unwrap(),
                &catalog,
                &accounts,
                &whole,
                "--period=2017-02",
                "--output=json",
            ],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        expected = v["invoices"][0]["total"].as_str().unwrap().to_string();
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let api = RuntimeApi::start();
    let log = std::fs::File::create(std::env::temp_dir().join("ratecard-e2e-shards.log")).unwrap();
    let _functions: Vec<KillOnDrop> = (0..2).map(|_| function(&bin, &api, &env, &log)).collect();
    api.wait_for_pollers(2, Duration::from_secs(60));
    // The process that will be killed half-way through a shard: behind its own Runtime API,
    // so that the test chooses what it gets.
    let victim_api = RuntimeApi::start();
    let mut victim = Some(function(&bin, &victim_api, &env, &log));
    victim_api.wait_for_pollers(1, Duration::from_secs(60));
    let d = Deployment {
        api,
        moto,
        ddb,
        queue,
    };

    // Two large exports land at once: each is cut, and its shards' checks are queued.
    let (a_key, b_key, c_key) = (
        "exports/canonical/2017-02 a.csv",
        "exports/canonical/2017-02 b.csv",
        "exports/canonical/2017-02 c.csv",
    );
    let (ea, eb) = (d.put(a_key, &a), d.put(b_key, &b));
    let (oa, ob) = std::thread::scope(|s| {
        let x = s.spawn(|| d.invoke(ea.clone()));
        let y = s.spawn(|| d.invoke(eb.clone()));
        (x.join().unwrap(), y.join().unwrap())
    });
    assert_eq!(oa["exports"][0]["status"], "sharded", "{oa}");
    assert_eq!(oa["exports"][0]["shards"], 5, "{oa}");
    assert_eq!(ob["exports"][0]["shards"], 3, "{ob}");
    // The same notification again: the plan stands; its checks are queued again (harmless).
    assert_eq!(d.invoke(ea.clone())["exports"][0]["shards"], 5);
    let a_batch = oa["exports"][0]["batch_id"].as_str().unwrap().to_string();

    // The queue drained as Lambda's event source would, two messages at a time, with faults.
    let duplicated = AtomicBool::new(false);
    let raced = AtomicBool::new(false);
    let crashed = AtomicBool::new(false);
    let killed_in_progress = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(900);
    let finished = |s: &Value| {
        ["rated", "rejected", "partly_rated"].contains(&s["status"].as_str().unwrap_or(""))
    };
    loop {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain in 15 minutes"
        );
        let messages = d.receive();
        if messages.is_empty() {
            if finished(&d.status(a_key)) && finished(&d.status(b_key)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        for pair in messages.chunks(2) {
            std::thread::scope(|s| {
                for m in pair {
                    let d = &d;
                    let (duplicated, raced, crashed) = (&duplicated, &raced, &crashed);
                    let victim = &mut victim;
                    let step = m.body["step"].as_str().unwrap();
                    let ours = m.body["batch_id"] == a_batch.as_str();
                    let kill_here = ours
                        && step == "rate"
                        && m.body["shard"] == 2
                        && !crashed.swap(true, Ordering::SeqCst);
                    if kill_here {
                        // Killed once its first usage chunk is written, before the commit
                        // makes it count; SQS then delivers the message again.
                        let sub = format!("{a_batch}-0002");
                        victim_api.send(m.event.clone());
                        let t = Instant::now();
                        while d
                            .ddb
                            .get_item(TABLE, "USAGE#smb-tenant#2017-02", &format!("{sub}#00000"))
                            .is_none()
                        {
                            assert!(
                                t.elapsed() < Duration::from_secs(300),
                                "the victim wrote nothing"
                            );
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        drop(victim.take());
                        let ledger = d
                            .ddb
                            .get_item(TABLE, &format!("BATCH#{sub}"), "LEDGER")
                            .expect("the victim's lease");
                        // Killed half-way: written, not committed (a commit marks it DONE).
                        assert_eq!(ledger["status"]["S"], "IN_PROGRESS", "{ledger}");
                        killed_in_progress.store(true, Ordering::SeqCst);
                        d.moto.sqs(
                            "ChangeMessageVisibility",
                            json!({"QueueUrl": d.queue, "ReceiptHandle": m.receipt, "VisibilityTimeout": 1}),
                        );
                        continue;
                    }
                    s.spawn(move || {
                        if ours && step == "rate" && !raced.swap(true, Ordering::SeqCst) {
                            // One message delivered to both processes at the same moment.
                            std::thread::scope(|s2| {
                                let x = s2.spawn(|| d.invoke(m.event.clone()));
                                let y = s2.spawn(|| d.invoke(m.event.clone()));
                                let (x, y) = (x.join().unwrap(), y.join().unwrap());
                                assert!(
                                    x["batchItemFailures"].as_array().unwrap().is_empty()
                                        || y["batchItemFailures"].as_array().unwrap().is_empty(),
                                    "{x} {y}"
                                );
                            });
                            d.moto.sqs(
                                "DeleteMessage",
                                json!({"QueueUrl": d.queue, "ReceiptHandle": m.receipt}),
                            );
                            return;
                        }
                        let out = d.deliver(m);
                        if ours && step == "check" && !duplicated.swap(true, Ordering::SeqCst) {
                            // Delivered again after it was handled: its report stands.
                            let again = d.invoke(m.event.clone());
                            assert_eq!(
                                again["shards"][0]["status"], out["shards"][0]["status"],
                                "{again}"
                            );
                        }
                    });
                }
            });
        }
    }
    assert!(
        duplicated.load(Ordering::SeqCst)
            && raced.load(Ordering::SeqCst)
            && crashed.load(Ordering::SeqCst)
    );

    let sa = d.status(a_key);
    assert_eq!(
        (
            sa["status"].as_str(),
            sa["records"].as_u64(),
            sa["shards"]["rated"].as_u64()
        ),
        (Some("rated"), Some(a_records), Some(5)),
        "{sa}"
    );
    let sb = d.status(b_key);
    assert_eq!(
        (sb["status"].as_str(), sb["records"].as_u64()),
        (Some("rated"), Some(b_records)),
        "{sb}"
    );
    assert_eq!(
        d.total().as_deref(),
        Some(expected.as_str()),
        "the shards bill what the whole exports bill"
    );

    // An export with one bad record in its last shard: every shard checked, none rated, a
    // report naming the record by its line in the export.
    let text = String::from_utf8(c).unwrap();
    // The last record with a unit of hours (0-based line index): in the last shard.
    let lines: Vec<&str> = text.lines().collect();
    let target = lines.iter().rposition(|l| l.contains(",hours,")).unwrap();
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == target { l.replacen(",hours,", ",parsecs,", 1) } else { l.to_string() } + "\n")
        .collect();
    assert_ne!(bad, text);
    let oc = d.invoke(d.put(c_key, bad.as_bytes()));
    assert_eq!(oc["exports"][0]["shards"], 3, "{oc}");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !finished(&d.status(c_key)) {
        assert!(Instant::now() < deadline, "export c did not finish");
        for m in d.receive() {
            d.deliver(&m);
        }
    }
    let sc = d.status(c_key);
    assert_eq!(sc["status"], "rejected", "{sc}");
    assert_eq!(sc["records"], 0, "{sc}");
    let report: Value = serde_json::from_slice(
        &d.moto
            .get(BUCKET, &format!("rejected/{c_key}.errors.json"))
            .expect("a rejection report"),
    )
    .unwrap();
    assert_eq!(report["nothing_rated"], true);
    let rec = &report["error"]["records"][0];
    assert_eq!(
        (
            rec["index"].as_u64(),
            rec["field"].as_str(),
            rec["shard"].as_u64()
        ),
        (Some(target as u64 + 1), Some("unit"), Some(2)),
        "the line number is the export's (1-based), not the shard's: {report}"
    );
    assert_eq!(
        d.total().as_deref(),
        Some(expected.as_str()),
        "a refused export bills nothing"
    );
}
