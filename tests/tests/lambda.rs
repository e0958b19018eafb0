//! End to end: the real `rater` Lambda binary behind a Lambda Runtime API emulator, on DynamoDB Local, fed a Function URL request and a scheduled event.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use e2e::{build_binaries, DynamoLocal, KillOnDrop, Outcome, RuntimeApi};
use pricing::{parse_json, AccountBook, BillingPeriod, Catalog, Invoice, UsageRecord};
use serde_json::{json, Value};

const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
const ACCOUNTS: &str = include_str!("../../examples/accounts/cloudstack.json");
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

fn line(
    account: &str,
    resource: &str,
    product: &str,
    meter: &str,
    quantity: &str,
    unit: &str,
    day: u32,
) -> String {
    format!(
        r#"{{"account":"{account}","resource":"{resource}","product":"{product}","meter":"{meter}","quantity":"{quantity}","unit":"{unit}","start":"2017-02-{day:02}T00:00:00Z","end":"2017-02-{day:02}T01:00:00Z"}}"#
    ) + "\n"
}

/// The invoice the pricing engine gives for these exports, computed in-process: what the
/// Lambda must answer. A final one is issued on `issued` (the day the Lambda ran).
fn expected(account: &str, exports: &[&str], kind_final: Option<(&str, &str)>) -> Value {
    let catalog = Catalog::from_json(CATALOG).unwrap();
    let book: AccountBook = parse_json(ACCOUNTS).unwrap();
    let records: Vec<UsageRecord> = exports
        .iter()
        .flat_map(|e| e.lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let period = BillingPeriod::parse("2017-02").unwrap();
    let usage = pricing::rate(&catalog, period, &records).unwrap();
    let acc = book.account(account).unwrap();
    let mut statement = pricing::Statement::from_book(acc, period);
    statement.issue_date = kind_final.map(|(_, day)| day.parse().unwrap());
    let mut inv = pricing::invoice_with(&catalog, acc, period, &usage, &statement).unwrap();
    inv.accounts_version = Some(book.version.clone());
    if let Some((n, _)) = kind_final {
        inv.kind = pricing::InvoiceKind::Final;
        inv.number = Some(n.to_string());
    }
    serde_json::to_value(inv).unwrap()
}

fn invoice_of<'a>(invoices: &'a Value, account: &str) -> &'a Value {
    invoices
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["account"] == account)
        .unwrap_or_else(|| panic!("no invoice for {account} in {invoices}"))
}

fn cli(bin: &std::path::Path, ddb: &DynamoLocal, args: &[&str]) {
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
}

fn url_event(body: &str, headers: Value, query: Value) -> Value {
    json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": "example.lambda-url.us-east-1.on.aws",
            "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "e2e" },
            "requestId": "e2e",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Mar/2017:00:00:00 +0000",
            "timeEpoch": 1488326400000u64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

fn url_response(outcome: Outcome) -> (u64, Value, String) {
    let Outcome::Response(r) = outcome else {
        panic!("a Function URL request must answer a response, got {outcome:?}");
    };
    let status = r["statusCode"].as_u64().unwrap();
    let body = r["body"].as_str().unwrap().to_string();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, json, body)
}

#[test]
fn real_lambda_binary_rates_function_url_and_scheduled_events_on_dynamodb_local() {
    let bin = build_binaries("rater");
    let ddb = DynamoLocal::start();
    let table = "ratecard-e2e";
    let store = format!("--store=dynamodb:{table}");
    let catalog = format!(
        "--catalog={}",
        e2e::workspace_root()
            .join("examples/catalogs/cloudstack.json")
            .display()
    );
    let accounts = format!(
        "--accounts={}",
        e2e::workspace_root()
            .join("examples/accounts/cloudstack.json")
            .display()
    );
    // The table from infra/table.json, and the config the function loads at cold start.
    cli(&bin, &ddb, &["create-table", &store]);
    cli(
        &bin,
        &ddb,
        &[
            "publish-config",
            &catalog,
            &accounts,
            "--issuer=e2e",
            &store,
        ],
    );

    let api = RuntimeApi::start();
    let log = std::fs::File::create(std::env::temp_dir().join("ratecard-e2e-lambda.log")).unwrap();
    let _lambda = KillOnDrop(
        Command::new(bin.join("rater"))
            .envs(api.env())
            .envs(ddb.env())
            .env("RATECARD_TABLE", table)
            .env("RATECARD_ISSUER", "e2e")
            .env_remove("RATECARD_CATALOG")
            .env_remove("RATECARD_ACCOUNTS")
            .env_remove("RATECARD_CONFIG_VERSION")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the rater binary"),
    );

    // (a) A Function URL upload, base64 body, idempotency key header.
    let mut export_a = String::new();
    for i in 0..40 {
        export_a += &line(
            "bu1user1",
            &format!("vm-{i}"),
            "copper",
            "vm.running",
            "24",
            "hours",
            1 + i % 20,
        );
    }
    export_a += &line(
        "bu1user1",
        "vol-1",
        "small-disk",
        "volume.gbh",
        "120",
        "gigabyte_hours",
        2,
    );
    export_a += &line(
        "smb-tenant",
        "web-1",
        "bronze",
        "vm.running",
        "24",
        "hours",
        3,
    );
    let upload = url_event(
        &export_a,
        json!({"idempotency-key": "upload-a", "content-type": "application/x-ndjson"}),
        json!({"period": "2017-02", "mode": "interim", "format": "jsonl"}),
    );
    let (status, body, raw) = url_response(api.invoke(upload.clone(), INVOKE_TIMEOUT));
    assert_eq!(status, 200, "{raw}");
    assert_eq!(body["batch_id"], "upload-a");
    assert_eq!(body["replayed"], false);
    assert_eq!(body["records"], 42);
    assert_eq!(
        invoice_of(&body["invoices"], "bu1user1"),
        &expected("bu1user1", &[&export_a], None)
    );
    assert_eq!(
        invoice_of(&body["invoices"], "smb-tenant"),
        &expected("smb-tenant", &[&export_a], None)
    );
    let first_invoices = body["invoices"].clone();

    // The same upload delivered again: a replay, same invoices.
    let (status, body, _) = url_response(api.invoke(upload, INVOKE_TIMEOUT));
    assert_eq!(status, 200);
    assert_eq!(body["replayed"], true);
    assert_eq!(body["invoices"], first_invoices);

    // CSV on request.
    let csv = url_event(
        &export_a,
        json!({"idempotency-key": "upload-a", "accept": "text/csv"}),
        json!({"period": "2017-02"}),
    );
    let (status, _, raw) = url_response(api.invoke(csv, INVOKE_TIMEOUT));
    assert_eq!(status, 200);
    assert!(
        raw.starts_with("invoice_number,kind,account,period"),
        "{raw}"
    );

    // Bad input: 422 with the bad record; oversize: 413.
    let bad = url_event(
        &line("bu1user1", "vm", "tin", "vm.running", "1", "hours", 2),
        json!({}),
        json!({"period": "2017-02"}),
    );
    let (status, body, _) = url_response(api.invoke(bad, INVOKE_TIMEOUT));
    assert_eq!(status, 422);
    assert_eq!(body["error"]["records"][0]["value"], "tin");
    let huge = url_event(&"x".repeat(6 * 1024 * 1024 + 1), json!({}), json!({}));
    let (status, body, _) = url_response(api.invoke(huge, INVOKE_TIMEOUT));
    assert_eq!(status, 413, "{body}");

    // (b) The scheduled month-end run: rate, then finalize the period.
    let export_b = line(
        "smb-tenant",
        "web-1",
        "bronze",
        "vm.running",
        "20",
        "hours",
        27,
    );
    let nightly = json!({ "batch_id": "nightly-2017-02-28", "format": "jsonl", "period": "2017-02", "mode": "final", "export": export_b });
    let Outcome::Response(resp) = api.invoke(nightly.clone(), INVOKE_TIMEOUT) else {
        panic!("scheduled event failed");
    };
    assert_eq!(resp["replayed"], false);
    let final_smb = invoice_of(&resp["invoices"], "smb-tenant");
    // Issued today (the function's clock), due after the account's 30 days of terms.
    let issued = final_smb["issue_date"].as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let today = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
        .unwrap()
        .date_naive();
    let day: chrono::NaiveDate = issued.parse().unwrap();
    assert!(day == today || day.succ_opt() == Some(today), "{issued}");
    assert_eq!(
        final_smb,
        &expected(
            "smb-tenant",
            &[&export_a, &export_b],
            Some(("e2e-000001", issued))
        )
    );
    let Outcome::Response(again) = api.invoke(nightly, INVOKE_TIMEOUT) else {
        panic!("replayed scheduled event failed");
    };
    assert_eq!(again["replayed"], true);
    assert_eq!(again["invoices"], resp["invoices"]);

    // Late usage for the finalized period: refused, 409.
    let late = url_event(
        &line(
            "smb-tenant",
            "web-9",
            "bronze",
            "vm.running",
            "1",
            "hours",
            28,
        ),
        json!({}),
        json!({"period": "2017-02"}),
    );
    let (status, body, _) = url_response(api.invoke(late, INVOKE_TIMEOUT));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "period_closed");

    // A scheduled event with nothing in it fails, saying why and that a retry will not help.
    let Outcome::Error(err) = api.invoke(
        json!({"batch_id": "empty", "period": "2017-02", "export": ""}),
        INVOKE_TIMEOUT,
    ) else {
        panic!("an empty scheduled batch must fail");
    };
    assert_eq!(err["errorType"], "Ratecard.empty_batch", "{err}");

    // The final invoice is what the store keeps.
    let inv: Invoice = serde_json::from_value(final_smb.clone()).unwrap();
    inv.check_totals().unwrap();
}
