//! Issue 14 end to end on the embedded store: the three-month scenario of `billing_month` (same inputs, same hand-computed figures from `month_scenario`) through the `ratecard` CLI.
//!
//! The CLI acts as the operator (it has no roles: whoever can open the store file runs it), so
//! the role checks of the function have no counterpart here. Its clock is the machine's: issue
//! and due dates are today's, as on the function.
//!
//! Concurrency: the embedded store is one redb file, which one process holds at a time (redb
//! locks the file when it opens it). Two `ratecard close` run at once therefore do not close
//! concurrently: whichever opens the file second fails at once, before touching anything, and
//! the test checks exactly that, then that a rerun finds every account final.

mod month_scenario;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use month_scenario::*;
use serde_json::{json, Value};

/// The CLI on one embedded store, with the config files of the deployment.
struct Ratecard {
    bin: PathBuf,
    dir: PathBuf,
    store: String,
    /// The catalog and accounts files in force.
    catalog: PathBuf,
    accounts: PathBuf,
}

impl Drop for Ratecard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Ratecard {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("ratecard"));
        c.args(args)
            .arg(format!("--store={}", self.store))
            .env("RATECARD_ISSUER", ISSUER)
            .current_dir(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ratecard")
    }

    fn config(&self) -> [String; 3] {
        [
            format!("--catalog={}", self.catalog.display()),
            format!("--accounts={}", self.accounts.display()),
            format!("--issuer={ISSUER}"),
        ]
    }

    /// Runs a command with the config in force; its standard output, after checking success.
    fn ok(&self, args: &[&str]) -> String {
        let config = self.config();
        let mut all: Vec<&str> = args.to_vec();
        if args[0] != "notes" {
            all.extend(config.iter().map(String::as_str));
        }
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "ratecard {all:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Runs a command that must fail; its error message.
    fn fails(&self, args: &[&str]) -> String {
        let config = self.config();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(config.iter().map(String::as_str));
        let out = self.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success(),
            "ratecard {all:?} must fail: {stderr}"
        );
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `ratecard rate` of one batch, as JSON.
    fn rate(&self, b: &Batch) -> Value {
        let file = self.write(&format!("{}.jsonl", b.key), &b.jsonl);
        let file = file.display().to_string();
        self.json(&[
            "rate",
            &file,
            "--format=jsonl",
            &format!("--period={}", b.period),
            &format!("--batch-id={}", b.key),
            "--output=json",
        ])
    }

    fn rate_refused(&self, b: &Batch) -> String {
        let file = self.write(&format!("{}.jsonl", b.key), &b.jsonl);
        let file = file.display().to_string();
        self.fails(&[
            "rate",
            &file,
            "--format=jsonl",
            &format!("--period={}", b.period),
            &format!("--batch-id={}", b.key),
        ])
    }

    fn pay(&self, p: &Payment) {
        self.ok(&[
            "payment",
            &format!("--account={}", p.account),
            &format!("--date={}", p.date),
            &format!("--amount={}", p.amount),
            "--currency=GBP",
            &format!("--reference={}", p.reference),
        ]);
    }

    fn close(&self, period: &str) -> Value {
        self.json(&["close", &format!("--period={period}"), "--json"])
    }

    fn invoice(&self, account: &str, period: &str) -> Value {
        let list = self.json(&[
            "invoice",
            &format!("--account={account}"),
            &format!("--period={period}"),
            "--output=json",
        ]);
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        list[0].clone()
    }

    fn history(&self, account: &str) -> Value {
        self.json(&["history", &format!("--account={account}"), "--json"])
    }

    fn notes(&self, account: &str, period: &str) -> Value {
        self.json(&[
            "notes",
            &format!("--account={account}"),
            &format!("--period={period}"),
            "--output=json",
        ])
    }

    /// What the refusals must leave as it is (as on the function).
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

    fn rate_month(&self, period: &str) {
        for b in nightly(period) {
            let r = self.rate(&b);
            assert_eq!(
                (&r["batch_id"], &r["replayed"]),
                (&json!(b.key), &json!(false)),
                "{r}"
            );
        }
    }

    fn check_finals(
        &self,
        period: &str,
        issued_between: (chrono::NaiveDate, chrono::NaiveDate),
    ) -> Vec<Value> {
        finals(period)
            .iter()
            .map(|e| {
                let inv = self.invoice(e.account, period);
                check_final(&inv, e, issued_between);
                inv
            })
            .collect()
    }
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ratecard-e2e-cli-month-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1_100));
}

#[test]
fn three_billing_months_through_the_cli_on_the_embedded_store() {
    let bin = e2e::build_binaries("rater");
    let dir = scratch_dir();
    let store = format!("embedded:{}", dir.join("store.redb").display());
    let mut cli = Ratecard {
        bin,
        catalog: dir.join("catalog.json"),
        accounts: dir.join("accounts-v1.json"),
        dir,
        store,
    };
    cli.write("catalog.json", CATALOG);
    cli.write("accounts-v1.json", ACCOUNTS_V1);

    // ---- February: two nightly batches (a second run of one changes nothing), a payment
    // (recording it twice changes nothing).
    cli.rate_month("2017-02");
    let again = cli.rate(&nightly("2017-02").remove(0));
    assert_eq!(again["replayed"], true, "{again}");
    for p in payments("2017-02") {
        cli.pay(&p);
        cli.pay(&p);
    }
    let interim = cli.invoice("acme", "2017-02");
    assert_eq!(interim["kind"], "interim", "{interim}");
    assert_eq!(dec(&interim["total"]), d("27.72"), "{interim}");

    // ---- February's close, twice: the rerun reports everything already final.
    let before = today();
    check_report(
        &cli.close("2017-02"),
        "2017-02",
        (3, 0, 1, 0),
        &issued("2017-02"),
    );
    check_report(&cli.close("2017-02"), "2017-02", (0, 3, 1, 0), &[]);
    let feb_finals = cli.check_finals("2017-02", (before, today()));
    // The table output says the same.
    let text = cli.ok(&["close", "--period=2017-02"]);
    assert!(
        text.contains("close 2017-02: 4 accounts: 0 finalized, 3 already final, 1 skipped"),
        "{text}"
    );

    // ---- Late usage under each policy.
    let snap = json!({"h": cli.history("gamma"), "i": cli.invoice("gamma", "2017-02")});
    let err = cli.rate_refused(&late_refused());
    assert!(
        err.contains("late usage refused") && err.contains("e2e-000003"),
        "{err}"
    );
    assert_eq!(
        json!({"h": cli.history("gamma"), "i": cli.invoice("gamma", "2017-02")}),
        snap
    );
    let issued_from = today();
    let r = cli.rate(&late_note());
    let late = &r["late"][0];
    assert_eq!(
        (&late["account"], &late["invoice"], &late["policy"]),
        (&json!("acme"), &json!("e2e-000001"), &json!("note")),
        "{r}"
    );
    check_note(
        &late["notes"][0],
        &late_note_expected(),
        (issued_from, today()),
    );
    let n1 = late["notes"][0].clone();
    let again = cli.rate(&late_note());
    assert_eq!(
        (&again["replayed"], &again["late"]),
        (&json!(true), &r["late"]),
        "{again}"
    );
    assert_eq!(cli.notes("acme", "2017-02"), json!([n1]));
    let r = cli.rate(&late_next_period());
    assert_eq!(
        (&r["late"][0]["account"], &r["late"][0]["policy"]),
        (&json!("beta"), &json!("next_period")),
        "{r}"
    );
    assert_eq!(cli.notes("beta", "2017-02"), json!([]));
    for (e, inv) in finals("2017-02").iter().zip(&feb_finals) {
        assert_eq!(
            &cli.invoice(e.account, "2017-02"),
            inv,
            "{} February changed",
            e.account
        );
    }

    // ---- The plan change: from March on, the CLI is given accounts 2017-03.1.
    cli.accounts = cli.write("accounts-v2.json", &accounts_v2());

    // ---- March: a batch, the invoice "to date", the payments, the second batch.
    let mar = nightly("2017-03");
    cli.rate(&mar[0]);
    let to_date = cli.json(&[
        "invoice",
        "--account=acme",
        "--period=2017-03",
        &format!("--as-of={TO_DATE_AS_OF}"),
        "--output=json",
    ]);
    let to_date = &to_date[0];
    let (net, vat, total, brought) = TO_DATE;
    assert_eq!(to_date["kind"], "interim", "{to_date}");
    assert_eq!(to_date["as_of"], TO_DATE_AS_OF, "{to_date}");
    assert_eq!(dec(&to_date["net"]), d(net), "{to_date:#}");
    assert_eq!(dec(&to_date["taxes"][0]["amount"]), d(vat), "{to_date:#}");
    assert_eq!(dec(&to_date["total"]), d(total), "{to_date:#}");
    assert_eq!(dec(&to_date["brought_forward"]), d(brought), "{to_date:#}");
    for p in payments("2017-03") {
        cli.pay(&p);
    }
    cli.rate(&mar[1]);

    // ---- March's close by two processes started together on the same store file.
    next_second();
    let before = today();
    let config = cli.config();
    let mut args: Vec<&str> = vec!["close", "--period=2017-03", "--json"];
    args.extend(config.iter().map(String::as_str));
    let children: Vec<_> = (0..2)
        .map(|_| {
            cli.command(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ratecard close")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut finalized = 0;
    let mut issued_now: Vec<(String, String)> = Vec::new();
    let mut succeeded = 0;
    for out in &outs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            succeeded += 1;
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                (&r["period"], &r["failed"], &r["skipped"]),
                (&json!("2017-03"), &json!(0), &json!(1)),
                "{r}"
            );
            finalized += r["finalized"].as_u64().unwrap();
            for c in r["issued"].as_array().unwrap() {
                issued_now.push((
                    c["account"].as_str().unwrap().into(),
                    c["number"].as_str().unwrap().into(),
                ));
            }
        } else {
            // The embedded store is single-process: the second opener is refused at once.
            assert!(
                stderr.contains("opening embedded store")
                    && stderr.to_lowercase().contains("already open"),
                "a concurrent close may only fail because the store file is held: {stderr}"
            );
        }
    }
    assert!(succeeded >= 1, "{outs:?}");
    eprintln!("two concurrent `ratecard close` on one embedded store: {succeeded} succeeded");
    // Whatever the interleaving, a rerun finishes what is left, and each account is final
    // exactly once with the gapless numbers.
    let r = cli.close("2017-03");
    finalized += r["finalized"].as_u64().unwrap();
    for c in r["issued"].as_array().unwrap() {
        issued_now.push((
            c["account"].as_str().unwrap().into(),
            c["number"].as_str().unwrap().into(),
        ));
    }
    issued_now.sort();
    assert_eq!(finalized, 3, "{outs:?} {r}");
    let want: Vec<(String, String)> = issued("2017-03")
        .iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect();
    assert_eq!(issued_now, want);
    check_report(&cli.close("2017-03"), "2017-03", (0, 3, 1, 0), &[]);
    let mar_finals = cli.check_finals("2017-03", (before, today()));
    check_adjustments(&mar_finals[1]);

    // ---- Bad inputs: each refused with a clear error, nothing written.
    let before = cli.snapshot();
    let now_month = now().format("%Y-%m").to_string();
    let pay = |amount: &str, currency: &str, date: &str, reference: &str| -> Vec<String> {
        vec![
            "payment".into(),
            "--account=acme".into(),
            format!("--date={date}"),
            format!("--amount={amount}"),
            format!("--currency={currency}"),
            format!("--reference={reference}"),
        ]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            pay("5.00", "EUR", "2017-04-05", "bad-eur"),
            "invoiced in GBP, not EUR",
        ),
        (
            pay("0.00", "GBP", "2017-04-05", "bad-zero"),
            "is not a payment",
        ),
        (
            pay("-5.00", "GBP", "2017-04-05", "bad-neg"),
            "is not a payment",
        ),
        (
            pay("5.001", "GBP", "2017-04-05", "bad-digits"),
            "more decimals than GBP",
        ),
        // chrono reads six-digit years; a period around one has no end (this panicked).
        (
            pay("5.00", "GBP", "+262142-12-01", "bad-year"),
            "is not in years 0001-9999",
        ),
        (
            pay("5.00", "GBP", "2017-03-20", "bad-closed"),
            "closed by final invoice e2e-000004",
        ),
        (
            vec![
                "rerate".into(),
                "--account=acme".into(),
                "--period=2017-05".into(),
            ],
            "has no final invoice for period 2017-05",
        ),
        (
            vec![
                "rerate".into(),
                "--account=acme".into(),
                "--period=2017-04".into(),
            ],
            "has no final invoice for period 2017-04",
        ),
        (
            vec!["close".into(), format!("--period={now_month}")],
            "it cannot be finalized before",
        ),
        (
            vec![
                "finalize".into(),
                "--account=acme".into(),
                format!("--period={now_month}"),
            ],
            "it cannot be finalized before",
        ),
    ];
    for (args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = cli.fails(&args);
        assert!(err.contains(message), "{args:?}: {err}");
    }
    assert_eq!(cli.snapshot(), before, "a refused command wrote something");

    // ---- April: a batch, a payment, the close and its rerun.
    cli.rate_month("2017-04");
    for p in payments("2017-04") {
        cli.pay(&p);
    }
    let before = today();
    check_report(
        &cli.close("2017-04"),
        "2017-04",
        (3, 0, 1, 0),
        &issued("2017-04"),
    );
    check_report(&cli.close("2017-04"), "2017-04", (0, 3, 1, 0), &[]);
    cli.check_finals("2017-04", (before, today()));
    let snap = cli.history("beta");
    let err = cli.fails(&[
        "payment",
        "--account=beta",
        "--date=2017-04-20",
        "--amount=1.00",
        "--currency=GBP",
        "--reference=beta-late",
    ]);
    assert!(err.contains("closed by final invoice e2e-000008"), "{err}");
    assert_eq!(cli.history("beta"), snap);

    // ---- The re-rate of acme's February under the corrected catalog: a credit note in the
    // table, JSON and CSV renderings, then nothing.
    next_second();
    let corrected = cli.write("catalog-corrected.json", &corrected_catalog());
    cli.catalog = corrected;
    let issued_from = today();
    let notes = cli.json(&[
        "rerate",
        "--account=acme",
        "--period=2017-02",
        "--reason=catalog",
        "--output=json",
    ]);
    assert_eq!(notes.as_array().map(Vec::len), Some(1), "{notes}");
    check_note(&notes[0], &rerate_note_expected(), (issued_from, today()));
    let n2 = notes[0].clone();
    let out = cli.ok(&["rerate", "--account=acme", "--period=2017-02"]);
    assert!(
        out.is_empty(),
        "a re-rate that changes nothing prints no note: {out}"
    );
    assert_eq!(cli.notes("acme", "2017-02"), json!([n1, n2]));
    let csv = cli.ok(&[
        "notes",
        "--account=acme",
        "--period=2017-02",
        "--output=csv",
    ]);
    assert!(
        csv.contains("e2e-N000001") && csv.contains("e2e-N000002"),
        "{csv}"
    );
    let table = cli.ok(&[
        "notes",
        "--account=acme",
        "--period=2017-02",
        "--output=table",
    ]);
    assert!(
        table.contains("e2e-N000002") && table.contains("e2e-000001"),
        "{table}"
    );
    assert_eq!(cli.invoice("acme", "2017-02"), feb_finals[0]);

    // ---- Histories, newest first.
    for a in ACCOUNTS {
        check_history(a, &cli.history(a));
    }
    let table = cli.ok(&["history", "--account=acme"]);
    assert!(
        table.contains("e2e-N000002") && table.contains("e2e-000007"),
        "{table}"
    );

    // ---- An earlier close rerun after a later one (see billing_month.rs): closing January,
    // in which no account had anything to bill, after February is final skips every account
    // and writes nothing.
    let before = cli.snapshot();
    let out = cli.run(&[
        "close",
        "--period=2017-01",
        "--json",
        &cli.config()[0],
        &cli.config()[1],
        &cli.config()[2],
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "closing January (nothing to bill in it) after February's close fails: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    check_report(&r, "2017-01", (0, 0, 4, 0), &[]);
    assert_eq!(cli.snapshot(), before);
}
