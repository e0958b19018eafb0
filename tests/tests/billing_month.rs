//! Issue 14 end to end: three billing months (February to April 2017) through the real `rater` Lambda binary behind the Runtime API emulator, on DynamoDB Local, with every expected amount computed by hand in `month_scenario`.
//!
//! What runs: nightly batches (Function URL uploads by an exporter, the uploader role), payments,
//! a plan change (a new accounts version published between months), the month-end close as the
//! schedule sends it (`{"close": {"time": ...}}`), delivered twice: February one after the
//! other (the second finds everything final), March concurrently to two function processes
//! polling the same Runtime API; late usage after February's close under each policy
//! (`refuse`, `note`, `next_period`); a re-rate of February under a corrected catalog
//! version (`POST /rerate`); and the bad inputs of the issue, each refused with its code and
//! nothing written.
//!
//! The function loads its configuration once, at cold start (`rater/src/main.rs`): after
//! `ratecard publish-config` makes a new version current, the test restarts the function
//! process, as a new Lambda execution environment would pick it up.

mod month_scenario;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use e2e::{build_binaries, DynamoLocal, Outcome, RuntimeApi};
use month_scenario::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const TABLE: &str = "ratecard-e2e-month";
/// The deployment's `RATECARD_OPERATORS`: the billing-ops role's sessions.
const OPERATORS: &str = "arn:aws:sts::123456789012:assumed-role/billing-ops/*";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/billing-ops/alice";
/// An exporter: any principal allowed to invoke the URL but not listed is an uploader.
const UPLOADER: &str = "arn:aws:sts::123456789012:assumed-role/exporter/nightly";

/// One rater process polling the emulator, with its log files.
struct Function {
    child: Child,
    stdout: PathBuf,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deployment under test: binaries, DynamoDB Local, the Runtime API and its function
/// processes, and a scratch directory for config files and logs.
struct Deployment {
    bin: PathBuf,
    ddb: DynamoLocal,
    api: RuntimeApi,
    dir: PathBuf,
    functions: Vec<Function>,
    started: usize,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.functions.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Deployment {
    fn cli(&self, args: &[&str]) {
        let out = Command::new(self.bin.join("ratecard"))
            .args(args)
            .envs(self.ddb.env())
            .env("RATECARD_ISSUER", ISSUER)
            .current_dir(&self.dir)
            .output()
            .expect("run ratecard");
        assert!(
            out.status.success(),
            "ratecard {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ratecard publish-config`: stores the versions and makes them current (what a cold
    /// start loads).
    fn publish(&self, catalog: &str, accounts: &str) {
        let n = self.started;
        let (c, a) = (
            self.dir.join(format!("catalog-{n}.json")),
            self.dir.join(format!("accounts-{n}.json")),
        );
        std::fs::write(&c, catalog).unwrap();
        std::fs::write(&a, accounts).unwrap();
        self.cli(&[
            "publish-config",
            &format!("--catalog={}", c.display()),
            &format!("--accounts={}", a.display()),
            &format!("--issuer={ISSUER}"),
            &format!("--store=dynamodb:{TABLE}"),
        ]);
    }

    /// Starts one more function process (a new execution environment: a cold start).
    fn start_function(&mut self) {
        self.started += 1;
        let stdout = self.dir.join(format!("rater-{}.out", self.started));
        let stderr = self.dir.join(format!("rater-{}.err", self.started));
        let child = Command::new(self.bin.join("rater"))
            .envs(self.api.env())
            .envs(self.ddb.env())
            .env("RATECARD_TABLE", TABLE)
            .env("RATECARD_ISSUER", ISSUER)
            .env("RATECARD_OPERATORS", OPERATORS)
            .env_remove("RATECARD_CATALOG")
            .env_remove("RATECARD_ACCOUNTS")
            .env_remove("RATECARD_CONFIG_VERSION")
            .env_remove("RATECARD_CLOSE_GRACE_HOURS")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start the rater binary");
        self.functions.push(Function { child, stdout });
    }

    /// Stops every function process and starts one: the next request is served by a cold
    /// start with the configuration now current.
    fn restart(&mut self) {
        self.functions.clear();
        self.start_function();
    }

    /// A Function URL request, answered: (status, JSON body).
    fn call(&self, method: &str, path: &str, arn: &str, body: &str, query: Value) -> (u64, Value) {
        url_response(self.api.invoke(
            e2e::signed_url_event(method, path, arn, body, query, json!({})),
            INVOKE_TIMEOUT,
        ))
    }

    /// An exporter's nightly upload (interim, JSON Lines, its idempotency key).
    fn upload(&self, b: &Batch) -> (u64, Value) {
        let query = json!({"period": b.period, "format": "jsonl", "mode": "interim"});
        let headers = json!({"idempotency-key": b.key, "content-type": "application/x-ndjson"});
        url_response(self.api.invoke(
            e2e::signed_url_event("POST", "/", UPLOADER, &b.jsonl, query, headers),
            INVOKE_TIMEOUT,
        ))
    }

    /// The month-end schedule's direct invocation.
    fn scheduled_close(&self, time: &str) -> Value {
        match self
            .api
            .invoke(json!({"close": {"time": time}}), INVOKE_TIMEOUT)
        {
            Outcome::Response(r) => r,
            Outcome::Error(e) => panic!("the scheduled close at {time} failed: {e}"),
        }
    }

    fn invoice(&self, account: &str, period: &str) -> Value {
        let (status, body) = self.call(
            "GET",
            "/",
            OPERATOR,
            "",
            json!({"account": account, "period": period}),
        );
        assert_eq!(status, 200, "GET {account} {period}: {body}");
        body["invoices"][0].clone()
    }

    fn history(&self, account: &str) -> Value {
        let (status, body) =
            self.call("GET", "/history", OPERATOR, "", json!({"account": account}));
        assert_eq!(status, 200, "GET /history {account}: {body}");
        assert_eq!(body["account"], account);
        body["documents"].clone()
    }

    fn notes(&self, account: &str, period: &str) -> Value {
        let (status, body) = self.call(
            "GET",
            "/notes",
            OPERATOR,
            "",
            json!({"account": account, "period": period}),
        );
        assert_eq!(status, 200, "GET /notes {account} {period}: {body}");
        body["notes"].clone()
    }

    /// What the refusals below must leave as it is: every account's history, acme's open
    /// April invoice, its February notes and every February and March final invoice.
    fn snapshot(&self) -> Value {
        let mut s = json!({
            "acme-2017-04": self.invoice("acme", "2017-04"),
            "acme-notes": self.notes("acme", "2017-02"),
        });
        for a in ACCOUNTS {
            s[format!("history-{a}")] = self.history(a);
            for p in ["2017-02", "2017-03"] {
                s[format!("{a}-{p}")] = self.invoice(a, p);
            }
        }
        s
    }

    /// The close requests each process's log lines say it served.
    fn closes_served(&self) -> Vec<usize> {
        self.functions
            .iter()
            .map(|f| {
                std::fs::read_to_string(&f.stdout)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|l| l["action"] == "close")
                    .count()
            })
            .collect()
    }
}

/// acme's statement as JSON against `acme_statement` (by hand), the same closing balance
/// from a range that starts after every payment (the opening then stands for them), as CSV
/// and as a PDF whose text shows it; an uploader may not read it.
fn check_statements(dep: &Deployment) {
    let q = |from: &str, output: &str| json!({"account": "acme", "from": from, "to": today().to_string(), "output": output});
    let (status, st) = dep.call("GET", "/statements", OPERATOR, "", q("2017-02", "json"));
    assert_eq!(status, 200, "{st}");
    let got: Vec<(String, String, Decimal, Decimal)> = st["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["reference"].as_str().unwrap().to_string(),
                dec(&e["amount"]),
                dec(&e["balance"]),
            )
        })
        .collect();
    let want: Vec<(String, String, Decimal, Decimal)> = acme_statement()
        .into_iter()
        .map(|(k, r, a, b)| (k.to_string(), r.to_string(), d(a), d(b)))
        .collect();
    assert_eq!(got, want, "acme's statement: {st:#}");
    let sums: Vec<Decimal> = [
        "opening", "invoiced", "credited", "debited", "paid", "closing",
    ]
    .iter()
    .map(|k| dec(&st[*k]))
    .collect();
    assert_eq!(sums, ACME_STATEMENT_SUMS.map(d).to_vec(), "{st:#}");
    // From today: the payments of 2017 are in the opening (-27.72), the documents follow.
    let (status, later) = dep.call(
        "GET",
        "/statements",
        OPERATOR,
        "",
        q(&today().to_string(), "json"),
    );
    assert_eq!(status, 200, "{later}");
    assert_eq!(dec(&later["opening"]), d("-27.72"), "{later:#}");
    assert_eq!(dec(&later["closing"]), d("56.76"), "{later:#}");
    assert_eq!(later["entries"].as_array().unwrap().len(), 5, "{later:#}");
    let (status, csv) = dep.call("GET", "/statements", OPERATOR, "", q("2017-02", "csv"));
    assert_eq!(status, 200, "{csv}");
    let csv = csv.as_str().unwrap();
    assert!(
        // (Its last column, `owed_to`, is empty: nothing owed to a former issuer.)
        csv.lines().last().unwrap().ends_with(",GBP,,56.76,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 1 + 7 + 1, "{csv}");
    let (status, pdf) = dep.call("GET", "/statements", OPERATOR, "", q("2017-02", "pdf"));
    assert_eq!(status, 200, "{pdf}");
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        pdf.as_str().unwrap(),
    )
    .unwrap();
    let path = dep.dir.join("acme-statement.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by .ci/install)");
    let text = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "STATEMENT",
        "Opening balance",
        "Payment acme-wire-2",
        "Debit note e2e-N000001 (2017-02) corrects e2e-000001",
        "GBP 59.28",
        "Closing balance",
        "GBP 56.76",
    ] {
        assert!(
            text.contains(shown),
            "no {shown} in the statement PDF:\n{text}"
        );
    }
    let (status, body) = dep.call("GET", "/statements", UPLOADER, "", q("2017-02", "json"));
    refused(status, &body, (403, "forbidden"), "an uploader's statement");
    let (status, body) = dep.call(
        "GET",
        "/statements",
        OPERATOR,
        "",
        json!({"account": "acme", "from": "2017-04", "to": "2017-02"}),
    );
    refused(
        status,
        &body,
        (400, "bad_request"),
        "a reversed statement range",
    );
}

fn url_response(outcome: Outcome) -> (u64, Value) {
    let Outcome::Response(r) = outcome else {
        panic!("a Function URL request must answer a response, got {outcome:?}");
    };
    let status = r["statusCode"].as_u64().unwrap();
    let body = r["body"].as_str().unwrap();
    (status, serde_json::from_str(body).unwrap_or(json!(body)))
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ratecard-e2e-month-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The refusal's status and code, with nothing written.
fn refused(status: u64, body: &Value, want: (u64, &str), what: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap_or("")),
        want,
        "{what}: {body}"
    );
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: a refusal says why: {body}"
    );
}

/// Notes issue in whole seconds (`DOC#<issued ms>` is the clock's seconds x 1000): a second
/// apart, the history's order is the order of issue whatever the numbers.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1_100));
}

/// A refused request: (path, caller, body, (status, code), what it is).
type BadRequest<'a> = (&'a str, &'a str, String, (u64, &'a str), &'a str);

fn current_month() -> String {
    now().format("%Y-%m").to_string()
}

fn record_payments(dep: &Deployment, period: &str) {
    for p in payments(period) {
        let (status, body) = dep.call("POST", "/payments", OPERATOR, &p.json(), json!({}));
        assert_eq!(status, 200, "payment {}: {body}", p.reference);
        assert_eq!(body["recorded"], true, "{body}");
    }
}

fn upload_month(dep: &Deployment, period: &str) {
    for b in nightly(period) {
        let (status, body) = dep.upload(&b);
        assert_eq!(status, 200, "{}: {body}", b.key);
        assert_eq!(body["batch_id"], b.key, "{body}");
        assert_eq!(body["replayed"], false, "{body}");
    }
}

fn check_month_finals(
    dep: &Deployment,
    period: &str,
    issued_between: (chrono::NaiveDate, chrono::NaiveDate),
) -> Vec<Value> {
    finals(period)
        .iter()
        .map(|e| {
            let inv = dep.invoice(e.account, period);
            check_final(&inv, e, issued_between);
            inv
        })
        .collect()
}

#[test]
fn three_billing_months_through_the_real_function_on_dynamodb_local() {
    let bin = build_binaries("rater");
    let ddb = DynamoLocal::start();
    let mut dep = Deployment {
        bin,
        ddb,
        api: RuntimeApi::start(),
        dir: scratch_dir(),
        functions: Vec::new(),
        started: 0,
    };
    dep.cli(&["create-table", &format!("--store=dynamodb:{TABLE}")]);
    dep.publish(CATALOG, ACCOUNTS_V1);
    dep.start_function();

    // ---- February: two nightly batches; a redelivery changes nothing.
    upload_month(&dep, "2017-02");
    let (status, again) = dep.upload(&nightly("2017-02").remove(0));
    assert_eq!((status, &again["replayed"]), (200, &json!(true)), "{again}");
    // A payment: the exporter may not record one; the operator may, once per reference.
    let feb_payment = payments("2017-02").remove(0);
    let (status, body) = dep.call(
        "POST",
        "/payments",
        UPLOADER,
        &feb_payment.json(),
        json!({}),
    );
    refused(status, &body, (403, "forbidden"), "an uploader's payment");
    record_payments(&dep, "2017-02");
    let (status, body) = dep.call(
        "POST",
        "/payments",
        OPERATOR,
        &feb_payment.json(),
        json!({}),
    );
    assert_eq!(
        (status, &body["recorded"]),
        (200, &json!(false)),
        "the same payment again: {body}"
    );
    // Interim (not numbered) February of acme: the same figures as the final below.
    let interim = dep.invoice("acme", "2017-02");
    assert_eq!(interim["kind"], "interim", "{interim}");
    assert!(
        interim.get("number").is_none() || interim["number"].is_null(),
        "{interim}"
    );
    assert_eq!(dec(&interim["total"]), d("27.72"), "{interim}");
    assert_eq!(dec(&interim["carried_forward"]), d("17.72"), "{interim}");

    // ---- February's close, as the schedule sends it on 4 March at 05:00 (72 h grace), twice
    // in a row: the second run finds every account final and issues nothing.
    let before = today();
    let report = dep.scheduled_close("2017-03-04T05:00:00Z");
    check_report(&report, "2017-02", (3, 0, 1, 0), &issued("2017-02"));
    let report = dep.scheduled_close("2017-03-04T05:00:00Z");
    check_report(&report, "2017-02", (0, 3, 1, 0), &[]);
    let feb = (before, today());
    let feb_finals = check_month_finals(&dep, "2017-02", feb);
    // ---- Late usage for February, after its close, under each account's policy.
    // gamma (the catalog's `refuse`): 409 naming the final invoice, nothing written.
    let snap = json!({"h": dep.history("gamma"), "i": dep.invoice("gamma", "2017-02")});
    let (status, body) = dep.upload(&late_refused());
    refused(status, &body, (409, "period_closed"), "gamma's late usage");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("e2e-000003"),
        "{body}"
    );
    assert_eq!(
        json!({"h": dep.history("gamma"), "i": dep.invoice("gamma", "2017-02")}),
        snap
    );
    // acme (`note`): a debit note against e2e-000001, issued with the batch's answer.
    let issued_from = today();
    let (status, body) = dep.upload(&late_note());
    assert_eq!(status, 200, "{body}");
    let late = body["late"].as_array().unwrap();
    assert_eq!(late.len(), 1, "{body}");
    assert_eq!(
        (
            &late[0]["account"],
            &late[0]["period"],
            &late[0]["invoice"],
            &late[0]["policy"]
        ),
        (
            &json!("acme"),
            &json!("2017-02"),
            &json!("e2e-000001"),
            &json!("note")
        ),
        "{body}"
    );
    let notes = late[0]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{body}");
    check_note(&notes[0], &late_note_expected(), (issued_from, today()));
    let n1 = notes[0].clone();
    // Its redelivery: the same answer, no second note.
    let (status, again) = dep.upload(&late_note());
    assert_eq!((status, &again["replayed"]), (200, &json!(true)), "{again}");
    assert_eq!(again["late"], body["late"]);
    assert_eq!(dep.notes("acme", "2017-02"), json!([n1]));
    // beta (`next_period`): accepted, no note; March's invoice will bill it.
    let (status, body) = dep.upload(&late_next_period());
    assert_eq!(status, 200, "{body}");
    let late = &body["late"][0];
    assert_eq!(
        (&late["account"], &late["policy"]),
        (&json!("beta"), &json!("next_period")),
        "{body}"
    );
    assert!(
        late.get("notes")
            .is_none_or(|n| n.as_array().is_some_and(Vec::is_empty)),
        "{body}"
    );
    assert_eq!(dep.notes("beta", "2017-02"), json!([]));
    // A final invoice is never edited.
    for (e, inv) in finals("2017-02").iter().zip(&feb_finals) {
        assert_eq!(
            &dep.invoice(e.account, "2017-02"),
            inv,
            "{} February changed",
            e.account
        );
    }

    // ---- The plan change: accounts 2017-03.1 moves acme to backup-plus on 11 March. The
    // function reads config at cold start only, so it is restarted after publishing.
    dep.publish(CATALOG, &accounts_v2());
    dep.restart();

    // ---- March: a batch, acme's invoice "to date", the payments, the second batch.
    let mar = nightly("2017-03");
    let (status, body) = dep.upload(&mar[0]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = dep.call(
        "GET",
        "/",
        OPERATOR,
        "",
        json!({"account": "acme", "period": "2017-03", "as_of": TO_DATE_AS_OF}),
    );
    assert_eq!(status, 200, "{body}");
    let to_date = &body["invoices"][0];
    let (net, vat, total, brought) = TO_DATE;
    assert_eq!(to_date["kind"], "interim", "{to_date}");
    assert_eq!(to_date["as_of"], TO_DATE_AS_OF, "{to_date}");
    assert_eq!(dec(&to_date["net"]), d(net), "{to_date:#}");
    assert_eq!(dec(&to_date["taxes"][0]["amount"]), d(vat), "{to_date:#}");
    assert_eq!(dec(&to_date["total"]), d(total), "{to_date:#}");
    assert_eq!(dec(&to_date["brought_forward"]), d(brought), "{to_date:#}");
    record_payments(&dep, "2017-03");
    let (status, body) = dep.upload(&mar[1]);
    assert_eq!(status, 200, "{body}");

    // ---- March's close, delivered twice at once to two function processes polling the same
    // Runtime API: both succeed, each account is finalized once, numbers stay gapless.
    dep.start_function();
    // Both processes waiting for an event: each takes one of the two queued together.
    dep.api.wait_for_pollers(2, INVOKE_TIMEOUT);
    next_second();
    let before = today();
    let reports: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = ["2017-04-04T05:00:00Z", "2017-04-20T05:00:00Z"]
            .into_iter()
            .map(|t| {
                let dep = &dep;
                s.spawn(move || dep.scheduled_close(t))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mar_dates = (before, today());
    assert_eq!(
        dep.closes_served(),
        vec![1, 1],
        "each process served one close"
    );
    let mut all_issued: Vec<(String, String)> = Vec::new();
    let mut finalized = 0;
    for r in &reports {
        assert_eq!(r["period"], "2017-03", "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(r["skipped"], 1, "{r}");
        assert_eq!(
            r["finalized"].as_u64().unwrap() + r["already_final"].as_u64().unwrap(),
            3,
            "every account with something to bill is final after each run: {r}"
        );
        finalized += r["finalized"].as_u64().unwrap();
        for c in r["issued"].as_array().unwrap() {
            all_issued.push((
                c["account"].as_str().unwrap().into(),
                c["number"].as_str().unwrap().into(),
            ));
        }
    }
    all_issued.sort();
    assert_eq!(
        finalized, 3,
        "three accounts finalized once in all: {reports:#?}"
    );
    let want: Vec<(String, String)> = issued("2017-03")
        .iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect();
    assert_eq!(
        all_issued, want,
        "gapless numbers, one per account: {reports:#?}"
    );
    let mar_finals = check_month_finals(&dep, "2017-03", mar_dates);
    check_adjustments(&mar_finals[1]);
    dep.restart();

    // ---- Bad inputs at the function: each refused with its code, nothing written.
    let before = dep.snapshot();
    let pay = |amount: &str, currency: &str, date: &str, reference: &str| {
        format!(
            r#"{{"account":"acme","date":"{date}T00:00:00Z","amount":"{amount}","currency":"{currency}","reference":"{reference}"}}"#
        )
    };
    let now_month = current_month();
    let cases: Vec<BadRequest> = vec![
        (
            "/payments",
            OPERATOR,
            pay("5.00", "EUR", "2017-04-05", "bad-eur"),
            (400, "bad_request"),
            "a payment in EUR for a GBP account",
        ),
        (
            "/payments",
            OPERATOR,
            pay("0.00", "GBP", "2017-04-05", "bad-zero"),
            (400, "bad_request"),
            "a zero payment",
        ),
        (
            "/payments",
            OPERATOR,
            pay("-5.00", "GBP", "2017-04-05", "bad-neg"),
            (400, "bad_request"),
            "a negative payment",
        ),
        (
            "/payments",
            OPERATOR,
            pay("5.001", "GBP", "2017-04-05", "bad-digits"),
            (400, "bad_request"),
            "a payment with more decimals than GBP",
        ),
        (
            "/payments",
            OPERATOR,
            pay("5.00", "GBP", "2017-03-20", "bad-closed"),
            (409, "period_closed"),
            "a payment dated in closed March",
        ),
        (
            "/payments",
            UPLOADER,
            pay("5.00", "GBP", "2017-04-05", "bad-role"),
            (403, "forbidden"),
            "a payment by an uploader",
        ),
        (
            "/rerate",
            OPERATOR,
            r#"{"account":"acme","period":"2017-05"}"#.into(),
            (404, "no_final_invoice"),
            "a re-rate of a period with no final invoice",
        ),
        (
            "/rerate",
            OPERATOR,
            r#"{"account":"acme","period":"2017-04"}"#.into(),
            (404, "no_final_invoice"),
            "a re-rate of the open period",
        ),
        (
            "/rerate",
            UPLOADER,
            r#"{"account":"acme","period":"2017-02"}"#.into(),
            (403, "forbidden"),
            "a re-rate by an uploader",
        ),
        (
            "/close",
            UPLOADER,
            format!(r#"{{"period":"{now_month}","override":true}}"#),
            (403, "forbidden"),
            "a close override by an uploader",
        ),
        (
            "/close",
            UPLOADER,
            r#"{"period":"2017-04"}"#.into(),
            (403, "forbidden"),
            "a close by an uploader",
        ),
        (
            "/close",
            OPERATOR,
            format!(r#"{{"period":"{now_month}"}}"#),
            (409, "period_not_ended"),
            "a close of the month not ended",
        ),
        (
            "/finalize",
            OPERATOR,
            format!(r#"{{"account":"acme","period":"{now_month}"}}"#),
            (409, "period_not_ended"),
            "a finalize of the month not ended",
        ),
    ];
    for (path, arn, body, want, what) in &cases {
        let (status, answer) = dep.call("POST", path, arn, body, json!({}));
        refused(status, &answer, *want, what);
    }
    assert_eq!(dep.snapshot(), before, "a refused request wrote something");

    // ---- April: a batch, a payment, the scheduled close, then an operator's close of the
    // same month (a second delivery by another route): nothing more.
    upload_month(&dep, "2017-04");
    record_payments(&dep, "2017-04");
    let before = today();
    let report = dep.scheduled_close("2017-05-04T05:00:00Z");
    check_report(&report, "2017-04", (3, 0, 1, 0), &issued("2017-04"));
    let (status, report) = dep.call(
        "POST",
        "/close",
        OPERATOR,
        r#"{"period":"2017-04"}"#,
        json!({}),
    );
    assert_eq!(status, 200, "{report}");
    check_report(&report, "2017-04", (0, 3, 1, 0), &[]);
    check_month_finals(&dep, "2017-04", (before, today()));
    // beta had no April usage: April is final all the same, so a payment dated in it is refused.
    let snap = dep.history("beta");
    let late_pay = r#"{"account":"beta","date":"2017-04-20T00:00:00Z","amount":"1.00","currency":"GBP","reference":"beta-late"}"#;
    let (status, body) = dep.call("POST", "/payments", OPERATOR, late_pay, json!({}));
    refused(
        status,
        &body,
        (409, "period_closed"),
        "a payment dated in beta's final April (no usage in it)",
    );
    assert_eq!(dep.history("beta"), snap);

    // ---- The re-rate: a corrected catalog version (VM 0.09) is published and the function
    // restarted; an operator re-rates acme's February: a credit note, then nothing.
    next_second();
    dep.publish(&corrected_catalog(), &accounts_v2());
    dep.restart();
    let issued_from = today();
    let rerate = r#"{"account":"acme","period":"2017-02"}"#;
    let (status, body) = dep.call("POST", "/rerate", OPERATOR, rerate, json!({}));
    assert_eq!((status, &body["issued"]), (200, &json!(true)), "{body}");
    check_note(
        &body["note"],
        &rerate_note_expected(),
        (issued_from, today()),
    );
    let n2 = body["note"].clone();
    let (status, body) = dep.call("POST", "/rerate", OPERATOR, rerate, json!({}));
    assert_eq!(
        (status, &body["issued"]),
        (200, &json!(false)),
        "a re-rate that changes nothing issues nothing: {body}"
    );
    assert!(body["note"].is_null(), "{body}");
    assert_eq!(dep.notes("acme", "2017-02"), json!([n1, n2]));
    // Still never edited.
    assert_eq!(dep.invoice("acme", "2017-02"), feb_finals[0]);

    // ---- Every account's history, newest first.
    for a in ACCOUNTS {
        check_history(a, &dep.history(a));
    }

    // ---- acme's statement, February to today: every payment, invoice and note with the
    // running balance, reconciled with the invoices' chain by the function.
    check_statements(&dep);

    // ---- The daily schedule inside the grace: on 2 April at 05:00 it closes February again,
    // which finds every account final and writes nothing.
    let before = dep.snapshot();
    let report = dep.scheduled_close("2017-04-02T05:00:00Z");
    check_report(&report, "2017-02", (0, 3, 1, 0), &[]);
    assert_eq!(dep.snapshot(), before);
    // A rerun of an earlier close after a later one: the schedule's run of 2 March at 05:00
    // closes January, in which no account had anything to bill (no usage, no subscription,
    // no balance brought in, no payment), delivered after February is final (an operator
    // closed February by hand inside the grace, as infra/README.md shows, or a dead-lettered
    // January run replayed later). Every account is skipped and nothing is written: the
    // balance that February carried forward is March's to bring in, not January's (the
    // rater once judged January by the balance as it is now and failed the run with
    // `finalized_out_of_order`; this test found it).
    let outcome = dep.api.invoke(
        json!({"close": {"time": "2017-03-02T05:00:00Z"}}),
        INVOKE_TIMEOUT,
    );
    let Outcome::Response(report) = outcome else {
        panic!(
            "re-closing January (nothing to bill in it) after February's close fails: {outcome:?}"
        );
    };
    check_report(&report, "2017-01", (0, 0, 4, 0), &[]);
    assert_eq!(dep.snapshot(), before);
}
