//! Issue 16 end to end: resellers' customers invoiced at their reseller's prices, each reseller billed at wholesale and reading only its own tenant, through the real `rater` binary behind the Runtime API on DynamoDB Local, with the request contexts of four principals (an uploader, reseller Acme, reseller Nimbus, an operator).
//!
//! The amounts are computed by hand from the example catalog's prices (see the comments);
//! every refused request must leave the store as it was.

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{build_binaries, DynamoLocal, KillOnDrop, Outcome, RuntimeApi};
use serde_json::{json, Value};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const TABLE: &str = "ratecard-e2e-resellers";
const ISSUER: &str = "prov";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/billing-ops/alice";
const UPLOADER: &str = "arn:aws:sts::123456789012:assumed-role/exporter/nightly";
const ACME: &str = "arn:aws:sts::123456789012:assumed-role/acme-billing/bob";
const NIMBUS: &str = "arn:aws:sts::123456789012:assumed-role/nimbus-billing/carol";
const STRANGER: &str = "arn:aws:iam::999999999999:user/eve";

fn cli(bin: &std::path::Path, ddb: &DynamoLocal, args: &[&str]) -> String {
    let out = Command::new(bin.join("ratecard"))
        .args(args)
        .envs(ddb.env())
        .current_dir(e2e::workspace_root())
        .output()
        .expect("run ratecard");
    assert!(
        out.status.success(),
        "ratecard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Deployment {
    api: RuntimeApi,
}

impl Deployment {
    fn call(&self, method: &str, path: &str, arn: &str, body: &str, query: Value) -> (u64, Value) {
        let Outcome::Response(r) = self.api.invoke(
            e2e::signed_url_event(method, path, arn, body, query, json!({})),
            INVOKE_TIMEOUT,
        ) else {
            panic!("{method} {path}: a Function URL request must answer a response");
        };
        let status = r["statusCode"].as_u64().unwrap();
        let body = r["body"].as_str().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn invoice(&self, arn: &str, account: &str) -> (u64, Value) {
        let (status, body) = self.call(
            "GET",
            "/",
            arn,
            "",
            json!({"account": account, "period": "2017-02"}),
        );
        (status, body["invoices"][0].clone())
    }

    /// Every document the test can see, read as the operator: what a refused request must not
    /// change.
    fn snapshot(&self) -> Value {
        let mut s = serde_json::Map::new();
        for a in [
            "acme-shop",
            "nimbus-studio",
            "reseller-acme",
            "reseller-nimbus",
            "bu1user1",
        ] {
            let (status, inv) = self.invoice(OPERATOR, a);
            assert_eq!(status, 200, "{a}: {inv}");
            let (_, history) = self.call("GET", "/history", OPERATOR, "", json!({"account": a}));
            s.insert(a.to_string(), json!({"invoice": inv, "history": history}));
        }
        Value::Object(s)
    }
}

fn forbidden(d: &Deployment, method: &str, path: &str, arn: &str, body: &str, query: Value) {
    let (status, answer) = d.call(method, path, arn, body, query);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{method} {path} as {arn}: {answer}"
    );
}

fn amount(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not an amount: {v}"))
}

#[test]
fn resellers_are_billed_and_isolated_through_the_real_function_on_dynamodb_local() {
    let bin = build_binaries("rater");
    let ddb = DynamoLocal::start();
    let store = format!("--store=dynamodb:{TABLE}");
    let root = e2e::workspace_root();
    let catalog = format!(
        "--catalog={}",
        root.join("examples/catalogs/cloudstack.json").display()
    );
    let accounts = format!(
        "--accounts={}",
        root.join("examples/accounts/cloudstack.json").display()
    );
    cli(&bin, &ddb, &["create-table", &store]);
    cli(
        &bin,
        &ddb,
        &[
            "publish-config",
            &catalog,
            &accounts,
            &format!("--issuer={ISSUER}"),
            &store,
        ],
    );
    let api = RuntimeApi::start();
    let log =
        std::fs::File::create(std::env::temp_dir().join("ratecard-e2e-resellers.log")).unwrap();
    let _lambda = KillOnDrop(
        Command::new(bin.join("rater"))
            .envs(api.env())
            .envs(ddb.env())
            .env("RATECARD_TABLE", TABLE)
            .env("RATECARD_ISSUER", ISSUER)
            .env(
                "RATECARD_OPERATORS",
                "arn:aws:sts::123456789012:assumed-role/billing-ops/*",
            )
            .env(
                "RATECARD_UPLOADERS",
                "arn:aws:sts::123456789012:assumed-role/exporter/*",
            )
            .env(
                "RATECARD_RESELLERS",
                "acme=arn:aws:sts::123456789012:assumed-role/acme-billing/*,nimbus=arn:aws:sts::123456789012:assumed-role/nimbus-billing/*",
            )
            .env_remove("RATECARD_CATALOG")
            .env_remove("RATECARD_ACCOUNTS")
            .env_remove("RATECARD_CONFIG_VERSION")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the rater binary"),
    );
    let d = Deployment { api };

    // The exporter uploads the month (CloudStack): an uploader may rate interim batches.
    let export =
        std::fs::read_to_string(root.join("examples/exports/resellers-2017-02.json")).unwrap();
    let interim = json!({"period": "2017-02", "format": "cloudstack", "mode": "interim"});
    let (status, body) = d.call("POST", "/", UPLOADER, &export, interim.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"], 140, "{body}");

    let before = d.snapshot();
    // The uploader does nothing else; a principal in no list does nothing at all.
    let month = r#"{"period":"2017-02"}"#;
    let final_q = json!({"period": "2017-02", "format": "cloudstack", "mode": "final"});
    let acme_q = json!({"account": "acme-shop", "period": "2017-02"});
    forbidden(&d, "GET", "/", UPLOADER, "", acme_q.clone());
    forbidden(
        &d,
        "GET",
        "/margin",
        UPLOADER,
        "",
        json!({"reseller": "acme", "period": "2017-02"}),
    );
    forbidden(&d, "POST", "/close", UPLOADER, month, json!({}));
    forbidden(&d, "POST", "/", UPLOADER, &export, final_q.clone());
    forbidden(&d, "POST", "/", STRANGER, &export, interim.clone());
    forbidden(&d, "GET", "/", STRANGER, "", acme_q.clone());
    // Acme reads its own customers and its own account, nothing of Nimbus's or the
    // provider's direct customers (nor whether an account exists), and writes nothing.
    for other in [
        "nimbus-studio",
        "reseller-nimbus",
        "bu1user1",
        "no-such-account",
    ] {
        let q = json!({"account": other, "period": "2017-02"});
        forbidden(&d, "GET", "/", ACME, "", q);
        forbidden(&d, "GET", "/history", ACME, "", json!({"account": other}));
        forbidden(
            &d,
            "GET",
            "/statements",
            ACME,
            "",
            json!({"account": other, "from": "2017-02"}),
        );
        forbidden(
            &d,
            "GET",
            "/notes",
            ACME,
            "",
            json!({"account": other, "period": "2017-02"}),
        );
    }
    forbidden(
        &d,
        "GET",
        "/margin",
        ACME,
        "",
        json!({"reseller": "nimbus", "period": "2017-02"}),
    );
    forbidden(&d, "GET", "/", NIMBUS, "", acme_q.clone());
    forbidden(&d, "POST", "/", ACME, &export, interim.clone());
    forbidden(&d, "POST", "/close", ACME, month, json!({}));
    forbidden(
        &d,
        "POST",
        "/finalize",
        ACME,
        r#"{"account":"acme-shop","period":"2017-02"}"#,
        json!({}),
    );
    assert_eq!(d.snapshot(), before, "a refused request changed something");
    // The provider's statement to Acme waits for Acme's customers: it bills their usage.
    let (status, body) = d.call(
        "POST",
        "/finalize",
        OPERATOR,
        r#"{"account":"reseller-acme","period":"2017-02"}"#,
        json!({}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("customer_open")),
        "{body}"
    );
    assert_eq!(d.snapshot(), before, "a refused statement wrote something");

    // Acme's customer, at Acme's prices in EUR (GBP x 1.17, half-even), in Acme's name:
    // copper 2.20 x 1.25 x 1.17 = 3.2175 x 672 h = 2,162.16; medium disk 0.0036 x 1.40 x 1.17
    // = 0.0058968 x 13,440 GB.h = 79.25; sent 3.2175 x 28 GB = 90.09; DDoS 500 x 1.10 x 1.17
    // = 643.50. Net 2,975.00; German VAT 19 % 565.25; total 3,540.25.
    let (status, shop) = d.invoice(ACME, "acme-shop");
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["issuer"], "Acme Cloud");
    assert_eq!(
        (amount(&shop["net"]), amount(&shop["total"])),
        ("2975.00", "3540.25")
    );

    // The operator closes February: customers first, each in its reseller's own series, then
    // the provider's statements to the resellers in the provider's series.
    let (status, report) = d.call("POST", "/close", OPERATOR, month, json!({}));
    assert_eq!(status, 200, "{report}");
    let issued: Vec<(String, String)> = report["issued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["account"].as_str().unwrap().into(),
                c["number"].as_str().unwrap().into(),
            )
        })
        .collect();
    let number = |a: &str| issued.iter().find(|(x, _)| x == a).map(|(_, n)| n.clone());
    assert_eq!(
        number("acme-shop").as_deref(),
        Some("acme-000001"),
        "{report}"
    );
    assert_eq!(
        number("nimbus-studio").as_deref(),
        Some("nimbus-000001"),
        "{report}"
    );
    let statement_acme = number("reseller-acme").expect("Acme's statement");
    assert!(statement_acme.starts_with("prov-"), "{statement_acme}");
    let pos = |a: &str| issued.iter().position(|(x, _)| x == a).unwrap();
    assert!(
        pos("reseller-acme") > pos("acme-shop"),
        "statements after customers: {report}"
    );

    // The provider's statement to Acme, at wholesale in EUR (half-up), reverse-charged:
    // copper 2.20 x 1.17 = 2.574 x 672 = 1,729.73; disk 0.0036 x 1.17 = 0.004212 x 13,440 =
    // 56.61; sent 2.574 x 28 = 72.07; DDoS 500 x 1.17 = 585.00. Net 2,443.41.
    let (status, st) = d.invoice(ACME, "reseller-acme");
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["number"], statement_acme.as_str());
    assert_eq!(
        (amount(&st["net"]), amount(&st["total"])),
        ("2443.41", "2443.41")
    );

    // Acme's margin: 2,975.00 - 2,443.41 = 531.59, per line and in total; it reconciles.
    let (status, m) = d.call(
        "GET",
        "/margin",
        ACME,
        "",
        json!({"reseller": "acme", "period": "2017-02"}),
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["statement"], statement_acme.as_str());
    assert_eq!(m["fx_rate"], "1.17");
    assert_eq!(
        (
            amount(&m["retail"]),
            amount(&m["wholesale"]),
            amount(&m["margin"])
        ),
        ("2975.00", "2443.41", "531.59")
    );
    let lines = m["customers"][0]["lines"].as_array().unwrap();
    let copper = lines.iter().find(|l| l["product"] == "copper").unwrap();
    assert_eq!(
        (
            amount(&copper["retail"]),
            amount(&copper["wholesale"]),
            amount(&copper["margin"])
        ),
        ("2162.16", "1729.73", "432.43")
    );

    // Acme's customer pays in Acme's currency (EUR): a payment in the wholesale catalog's GBP
    // is refused. Acme reads its customer's statement, February to today: 3,540.25 invoiced
    // (issued today), 1,000.00 paid on 10 March (March, still open), 2,540.25 owed; Nimbus may
    // not read it.
    let pay = |currency: &str| {
        format!(
            r#"{{"account":"acme-shop","date":"2017-03-10T00:00:00Z","amount":"1000.00","currency":"{currency}","reference":"shop-sepa-1"}}"#
        )
    };
    let (status, body) = d.call("POST", "/payments", OPERATOR, &pay("GBP"), json!({}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = d.call("POST", "/payments", OPERATOR, &pay("EUR"), json!({}));
    assert_eq!((status, &body["recorded"]), (200, &json!(true)), "{body}");
    let today = chrono::DateTime::from_timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        0,
    )
    .unwrap()
    .date_naive()
    .to_string();
    let st_q = json!({"account": "acme-shop", "from": "2017-02", "to": today});
    let (status, shop_st) = d.call("GET", "/statements", ACME, "", st_q.clone());
    assert_eq!(status, 200, "{shop_st}");
    assert_eq!(shop_st["currency"], "EUR", "{shop_st}");
    let figure = |k: &str| {
        amount(&shop_st[k])
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    let want = ["0", "3540.25", "1000.00", "2540.25"].map(|s| s.parse().unwrap());
    assert_eq!(
        ["opening", "invoiced", "paid", "closing"].map(figure),
        want,
        "{shop_st:#}"
    );
    forbidden(&d, "GET", "/statements", NIMBUS, "", st_q);

    // Nimbus, in GBP (no conversion), UK VAT on both sides: silver 0.60 x 1.30 x 672 =
    // 524.16, received 0.60 x 1.15 x 14 = 9.66 (net 533.82); wholesale 403.20 + 8.40 = 411.60;
    // margin 122.22.
    let (status, m) = d.call(
        "GET",
        "/margin",
        NIMBUS,
        "",
        json!({"reseller": "nimbus", "period": "2017-02"}),
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (
            amount(&m["retail"]),
            amount(&m["wholesale"]),
            amount(&m["margin"])
        ),
        ("533.82", "411.60", "122.22")
    );
    let (_, st) = d.invoice(NIMBUS, "reseller-nimbus");
    assert_eq!(
        (amount(&st["net"]), amount(&st["total"])),
        ("411.60", "493.92")
    );

    // Usage and cost reports, served with the invoices' tenancy: Acme's holds its own tenant
    // only (its customer with the margin above), whatever it asks for.
    let (status, r) = d.call(
        "GET",
        "/reports",
        ACME,
        "",
        json!({"from": "2017-02", "group_by": "account", "by": "month"}),
    );
    assert_eq!(status, 200, "{r}");
    let rows = r["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["keys"][0].as_str().unwrap())
        .collect();
    // Its customers (its own account, its cost, only when named).
    assert_eq!(names, ["acme-shop"], "{r}");
    assert_eq!(
        (
            amount(&rows[0]["amount"]),
            amount(&rows[0]["wholesale"]),
            amount(&rows[0]["margin"])
        ),
        ("2975.00", "2443.41", "531.59")
    );
    for q in [
        json!({"from": "2017-02", "account": "bu1user1"}),
        json!({"from": "2017-02", "account": "nimbus-studio"}),
        json!({"from": "2017-02", "account": "no-such-account"}),
    ] {
        forbidden(&d, "GET", "/reports", ACME, "", q);
    }
    forbidden(
        &d,
        "GET",
        "/reports",
        UPLOADER,
        "",
        json!({"from": "2017-02"}),
    );
    forbidden(
        &d,
        "GET",
        "/reports",
        STRANGER,
        "",
        json!({"from": "2017-02"}),
    );
    // Bad parameters: 400, naming the parameter.
    for (q, says) in [
        (
            json!({"from": "2017-02", "group_by": "flavor"}),
            "`group_by`: `flavor` is not a grouping",
        ),
        (
            json!({"from": "2017-02", "to": "2016-12"}),
            "`to`: 2016-12-31 is before `from` 2017-02-01",
        ),
        (
            json!({"from": "2017-01", "to": "2018-02"}),
            "longer than 13 months",
        ),
        (json!({"group_by": "project"}), "`from`"),
    ] {
        let (status, e) = d.call("GET", "/reports", OPERATOR, "", q.clone());
        assert_eq!(status, 400, "{q}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{q}: {message}");
    }
    // The operator's workbook: an XLSX (a zip) in a base64 body.
    let Outcome::Response(x) = d.api.invoke(
        e2e::signed_url_event(
            "GET",
            "/reports",
            OPERATOR,
            "",
            json!({"from": "2017-02", "group_by": "project,product", "output": "xlsx"}),
            json!({}),
        ),
        INVOKE_TIMEOUT,
    ) else {
        panic!("GET /reports must answer a response");
    };
    assert_eq!(x["statusCode"], 200, "{x}");
    assert_eq!(x["isBase64Encoded"], true);
    use base64::Engine as _;
    let zip = base64::engine::general_purpose::STANDARD
        .decode(x["body"].as_str().unwrap())
        .unwrap();
    assert!(zip.starts_with(b"PK"), "not a workbook");

    // Acme's customer's invoice as a PDF in Acme's name, with its e-invoice, through the
    // function; another tenant's document is refused like its invoice.
    let Outcome::Response(p) = d.api.invoke(
        e2e::signed_url_event(
            "GET",
            "/",
            ACME,
            "",
            json!({"account": "acme-shop", "period": "2017-02", "output": "pdf"}),
            json!({}),
        ),
        INVOKE_TIMEOUT,
    ) else {
        panic!("GET /?output=pdf must answer a response");
    };
    assert_eq!(p["statusCode"], 200, "{p}");
    assert_eq!(p["headers"]["content-type"], "application/pdf");
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(p["body"].as_str().unwrap())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        pdf.windows(b"factur-x.xml".len())
            .any(|w| w == b"factur-x.xml"),
        "no e-invoice embedded"
    );
    forbidden(
        &d,
        "GET",
        "/",
        ACME,
        "",
        json!({"account": "nimbus-studio", "period": "2017-02", "output": "pdf"}),
    );

    // The CLI's report reads the same store: its CSV total row says the same.
    let csv = cli(
        &bin,
        &ddb,
        &[
            "margin",
            "--reseller=acme",
            "--period=2017-02",
            &catalog,
            &accounts,
            &store,
            "--output=csv",
        ],
    );
    let total = csv.lines().last().unwrap();
    assert!(total.ends_with("2975.00,2443.41,531.59,17.87"), "{csv}");
}
