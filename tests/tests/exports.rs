//! Issue 15 end to end: nightly exports dropped in S3 (moto) and rated by the real `rater` binary behind the Runtime API on DynamoDB Local, from the S3 event notifications AWS would send: compressed exports, two at once, redeliveries and identical re-uploads rated once, bad, truncated and missing objects refused with a rejection report, the status route, and the CLI reading `s3://`.
//!
//! Expected invoices are the reviewed golden files beside the example exports
//! (`examples/exports/*.expected.json`, whose key amounts `shared/tests/import_examples.rs`
//! checks by hand): an export read from S3 must be billed exactly as the same file.

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{build_binaries, DynamoLocal, KillOnDrop, Moto, Outcome, RuntimeApi};
use serde_json::{json, Value};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);
const TABLE: &str = "ratecard-e2e-exports";
const BUCKET: &str = "ratecard-exports-e2e";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/billing-ops/alice";
const UPLOADER: &str = "arn:aws:sts::123456789012:assumed-role/exporter/nightly";

fn compress(tool: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} is needed (apt-get install {tool}): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

struct Deployment {
    api: RuntimeApi,
    moto: Moto,
}

impl Deployment {
    fn put(&self, key: &str, body: &[u8]) -> Value {
        let etag = self.moto.put(BUCKET, key, body);
        e2e::s3_event(BUCKET, key, body.len(), &etag)
    }

    /// Delivers an S3 event and answers the function's `exports` outcomes.
    fn deliver(&self, event: Value) -> Vec<Value> {
        match self.api.invoke(event, INVOKE_TIMEOUT) {
            Outcome::Response(r) => r["exports"].as_array().cloned().unwrap(),
            Outcome::Error(e) => panic!("the S3 event failed: {e}"),
        }
    }

    fn call(&self, method: &str, path: &str, arn: &str, query: Value) -> (u64, Value) {
        let event = e2e::signed_url_event(method, path, arn, "", query, json!({}));
        let Outcome::Response(r) = self.api.invoke(event, INVOKE_TIMEOUT) else {
            panic!("{method} {path}: a Function URL request must answer a response");
        };
        let body = r["body"].as_str().unwrap();
        (
            r["statusCode"].as_u64().unwrap(),
            serde_json::from_str(body).unwrap(),
        )
    }

    fn total(&self, account: &str) -> String {
        let (status, body) = self.call(
            "GET",
            "/",
            OPERATOR,
            json!({"account": account, "period": "2017-02"}),
        );
        assert_eq!(status, 200, "{body}");
        body["invoices"][0]["total"].as_str().unwrap().to_string()
    }

    fn status(&self, key: &str) -> Value {
        let (status, body) = self.call("GET", "/exports", UPLOADER, json!({"key": key}));
        assert_eq!(status, 200, "{body}");
        body
    }

    fn report(&self, key: &str) -> Value {
        let bytes = self
            .moto
            .get(BUCKET, &format!("rejected/{key}.errors.json"))
            .unwrap_or_else(|| panic!("no rejection report for {key}"));
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// The golden invoice's total and record count.
fn expected(name: &str) -> (String, u64) {
    let path = e2e::workspace_root().join(format!("examples/exports/{name}.expected.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    (
        v["total"].as_str().unwrap().to_string(),
        v["records"].as_u64().unwrap(),
    )
}

fn cli(bin: &std::path::Path, env: &[(&'static str, String)], args: &[&str]) -> (bool, String) {
    let out = e2e::run_ratecard(bin, env, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn exports_dropped_in_s3_are_rated_once_and_bad_ones_get_a_report() {
    let bin = build_binaries("rater");
    let ddb = DynamoLocal::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let root = e2e::workspace_root();
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
    for args in [
        vec!["create-table", &store],
        vec!["publish-config", &catalog, &accounts, &store],
    ] {
        let (ok, text) = cli(&bin, &env, &args);
        assert!(ok, "{text}");
    }
    let api = RuntimeApi::start();
    let log = std::fs::File::create(std::env::temp_dir().join("ratecard-e2e-exports.log")).unwrap();
    // Two function processes: two exports landing together are rated concurrently.
    let lambdas: Vec<KillOnDrop> = (0..2)
        .map(|_| {
            KillOnDrop(
                Command::new(bin.join("rater"))
                    .envs(api.env())
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .env("RATECARD_TABLE", TABLE)
                    .env("RATECARD_EXPORTS_BUCKET", BUCKET)
                    .env(
                        "RATECARD_OPERATORS",
                        "arn:aws:sts::123456789012:assumed-role/billing-ops/*",
                    )
                    .env(
                        "RATECARD_UPLOADERS",
                        "arn:aws:sts::123456789012:assumed-role/exporter/*",
                    )
                    .env_remove("RATECARD_CATALOG")
                    .env_remove("RATECARD_ACCOUNTS")
                    .stdout(Stdio::null())
                    .stderr(log.try_clone().unwrap())
                    .spawn()
                    .expect("start the rater binary"),
            )
        })
        .collect();
    api.wait_for_pollers(2, Duration::from_secs(60));
    let d = Deployment { api, moto };

    // Two exports at once: a gzip CSV and a zstd CloudStack document, one per process.
    let csv = std::fs::read(root.join("examples/exports/canonical-2017-02.csv")).unwrap();
    let cloudstack = std::fs::read(root.join("examples/exports/cloudstack-2017-02.json")).unwrap();
    let csv_key = "exports/canonical/2017-02 night.csv.gz";
    let cs_key = "exports/cloudstack/2017-02.json.zst";
    let csv_event = d.put(csv_key, &compress("gzip", &csv));
    // The document in two zstd frames, as `pzstd` or `cat a.zst b.zst` make: read whole.
    let half = cloudstack.len() / 2;
    let cs_zst = [
        compress("zstd", &cloudstack[..half]),
        compress("zstd", &cloudstack[half..]),
    ]
    .concat();
    let cs_event = d.put(cs_key, &cs_zst);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| d.deliver(csv_event.clone()));
        let b = s.spawn(|| d.deliver(cs_event.clone()));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (smb, smb_records) = expected("canonical-2017-02");
    let (bu1, bu1_records) = expected("cloudstack-2017-02");
    assert_eq!(
        (a[0]["status"].as_str(), a[0]["records"].as_u64()),
        (Some("rated"), Some(smb_records)),
        "{a:?}"
    );
    assert_eq!(
        (b[0]["status"].as_str(), b[0]["records"].as_u64()),
        (Some("rated"), Some(bu1_records)),
        "{b:?}"
    );
    assert_eq!(d.total("smb-tenant"), smb);
    assert_eq!(d.total("bu1user1"), bu1);

    // One notification delivered twice at the same moment (S3 delivers at least once), to
    // both processes: one rates it, the other waits for its lease and replays.
    let twice = d.put(
        "exports/cloudstack/2017-02-14.json",
        &std::fs::read(root.join("examples/exports/cloudstack-nightly-2017-02-14.json")).unwrap(),
    );
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| d.deliver(twice.clone()));
        let y = s.spawn(|| d.deliver(twice.clone()));
        (x.join().unwrap(), y.join().unwrap())
    });
    let mut statuses = [x[0]["status"].clone(), y[0]["status"].clone()];
    statuses.sort_by_key(|v| v.to_string());
    assert_eq!(statuses, [json!("rated"), json!("replayed")], "{x:?} {y:?}");
    assert_eq!(
        d.total("bu1user1"),
        bu1,
        "the nightly export's records are copies of the month's (same record ids)"
    );

    // The same notification again, and the same bytes uploaded again under the same key
    // (same ETag): answered from the ledger, nothing billed twice.
    assert_eq!(d.deliver(csv_event.clone())[0]["status"], "replayed");
    let again = d.put(csv_key, &compress("gzip", &csv));
    assert_eq!(d.deliver(again)[0]["status"], "replayed");
    // The same records under another key: another batch, every record a copy of one counted.
    let copy = d.put("exports/canonical/copy.csv", &csv);
    let out = d.deliver(copy);
    assert_eq!(out[0]["status"], "rated", "{out:?}");
    assert_eq!(
        d.total("smb-tenant"),
        smb,
        "a copy of an export bills nothing"
    );
    let status = d.status(csv_key);
    assert_eq!(
        (status["status"].as_str(), status["records"].as_u64()),
        (Some("rated"), Some(37)),
        "{status}"
    );

    // Bad records: refused whole, with a report naming the line, field, value and rule.
    let text = String::from_utf8(csv.clone()).unwrap();
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replace(",257698037760,", ",-5,")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(bad, text, "the bad line was made bad");
    let bad_key = "exports/canonical/bad.csv";
    let out = d.deliver(d.put(bad_key, bad.as_bytes()));
    assert_eq!(
        (out[0]["status"].as_str(), out[0]["code"].as_str()),
        (Some("rejected"), Some("bad_records")),
        "{out:?}"
    );
    let report = d.report(bad_key);
    assert_eq!(report["nothing_rated"], true);
    assert_eq!(report["error"]["total"], 1, "{report}");
    let rec = &report["error"]["records"][0];
    assert_eq!(
        (
            rec["index"].as_u64(),
            rec["field"].as_str(),
            rec["value"].as_str()
        ),
        (Some(3), Some("quantity"), Some("-5")),
        "{report}"
    );
    assert_eq!(d.status(bad_key)["status"], "rejected");
    assert_eq!(d.total("smb-tenant"), smb, "a refused export bills nothing");

    // A gzip object cut short, and a JSON document cut short: refused with what is wrong.
    let gz = compress("gzip", &cloudstack);
    let out = d.deliver(d.put("exports/cloudstack/cut.json.gz", &gz[..gz.len() / 2]));
    assert_eq!(out[0]["code"], "export_compression", "{out:?}");
    let report = d.report("exports/cloudstack/cut.json.gz");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gzip stream is corrupt or cut short"),
        "{report}"
    );
    let out = d.deliver(d.put(
        "exports/cloudstack/cut.json",
        &cloudstack[..cloudstack.len() / 2],
    ));
    assert_eq!(out[0]["code"], "import", "{out:?}");
    assert!(
        d.report("exports/cloudstack/cut.json")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "a cut document is a syntax error at its end"
    );
    assert_eq!(d.total("bu1user1"), bu1, "refused exports bill nothing");

    // An event for an object deleted (or never there): refused, said so.
    let out = d.deliver(e2e::s3_event(
        BUCKET,
        "exports/cloudstack/gone.json",
        10,
        "\"0\"",
    ));
    assert_eq!(out[0]["code"], "export_missing", "{out:?}");
    assert_eq!(d.status("exports/nothing.json")["status"], "missing");
    // A key not rated yet.
    d.moto.put(BUCKET, "exports/later.csv", &csv);
    assert_eq!(d.status("exports/later.csv")["status"], "pending");

    // Status is for uploaders and operators, and only for the deployment's bucket.
    let (code, body) = d.call(
        "GET",
        "/exports",
        OPERATOR,
        json!({"key": csv_key, "bucket": "someone-elses"}),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    // The CLI reads the same source: the object's batch id is the trigger's, so it replays.
    let url = format!("s3://{BUCKET}/{csv_key}");
    let (ok, text) = cli(&bin, &env, &["rate", &url, &catalog, &accounts, &store]);
    assert!(ok, "{text}");
    assert!(text.contains("already rated: replayed"), "{text}");
    let (ok, text) = cli(
        &bin,
        &env,
        &[
            "rate",
            &format!("s3://{BUCKET}/exports/missing.csv"),
            &catalog,
            &accounts,
            &store,
        ],
    );
    assert!(!ok && text.contains("no such object"), "{text}");

    // A versioned bucket, as the template's is: each event names the version it created, and
    // that version is rated, even when the key was overwritten before the event was handled
    // (before, the older event rated the newer object and the older one was never read).
    d.moto.enable_versioning(BUCKET);
    let key = "exports/canonical/2017-02 versions.csv";
    let text = String::from_utf8(csv.clone()).unwrap();
    let older: String = text.lines().take(11).map(|l| format!("{l}\n")).collect();
    let (etag1, v1) = d.moto.put_version(BUCKET, key, older.as_bytes());
    let (etag2, v2) = d.moto.put_version(BUCKET, key, &csv);
    assert_ne!(v1, v2);
    let versioned = |len: usize, etag: &str, version: &str| {
        let mut event = e2e::s3_event(BUCKET, key, len, etag);
        event["Records"][0]["s3"]["object"]["versionId"] = json!(version);
        event
    };
    let out = d.deliver(versioned(older.len(), &etag1, &v1));
    assert_eq!(
        (out[0]["status"].as_str(), out[0]["records"].as_u64()),
        (Some("rated"), Some(10)),
        "the older version's ten records: {out:?}"
    );
    let out = d.deliver(versioned(csv.len(), &etag2, &v2));
    assert_eq!(
        (out[0]["status"].as_str(), out[0]["records"].as_u64()),
        (Some("rated"), Some(smb_records)),
        "the newer version, rated in its turn: {out:?}"
    );
    drop(lambdas);
}
