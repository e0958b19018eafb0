//! The bad-input catalogue: every kind of bad input the rater knows, the exact error a user sees, and the proof that nothing was persisted.
//!
//! One row per kind: the input, the stable error code (`RaterError::code`), the HTTP status,
//! the key part of the message a user reads (`Display`), and the check that the store's
//! whole content is unchanged (byte-for-byte dump before and after), which covers "no ledger,
//! no committed usage, counters unchanged"; batch rows also check that no ledger exists under
//! the batch's id. New kinds found by the simulator or the fuzzers get a row here.
//!
//! Not bad input: a record id repeated with the *same* content, in the batch or across batches,
//! is dropped, not refused (see `rater::dedupe`). The CloudStack importer is stricter inside
//! one export: a usage id repeated there is a page fetched twice and is refused.

use pricing::import::Format;
use pricing::BillingPeriod;
use rater::store::Store;
use rater::{finalize, invoice_for, rate_batch, sha256_hex, BatchRequest, Mode, RaterConfig};
use rater::{EmbeddedStore, RaterError};

const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
const ACCOUNTS: &str = include_str!("../../examples/accounts/cloudstack.json");
const PERIOD: &str = "2017-02";
/// A small payload limit for the oversize row, so that the test does not build 6 MB.
const PAYLOAD_BYTES_MAX_TEST: usize = 4 * 1024;

fn period() -> BillingPeriod {
    BillingPeriod::parse(PERIOD).unwrap()
}

fn config() -> RaterConfig {
    let mut c = RaterConfig::from_json(CATALOG, ACCOUNTS, "test").unwrap();
    c.clock = std::sync::Arc::new(|| 1_488_700_000);
    c.payload_bytes_max = PAYLOAD_BYTES_MAX_TEST;
    c
}

/// One canonical JSON Lines record, with the fields a row wants to break.
fn jl(
    account: &str,
    product: &str,
    meter: &str,
    quantity: &str,
    unit: &str,
    start: &str,
    end: &str,
) -> String {
    format!(
        r#"{{"record_id":"r1","account":"{account}","resource":"vm-1","product":"{product}","meter":"{meter}","quantity":"{quantity}","unit":"{unit}","start":"{start}","end":"{end}"}}"#
    ) + "\n"
}

fn good(account: &str) -> String {
    jl(
        account,
        "copper",
        "vm.running",
        "1",
        "hours",
        "2017-02-03T00:00:00Z",
        "2017-02-03T01:00:00Z",
    )
}

fn q(quantity: &str) -> String {
    jl(
        "bu1user1",
        "copper",
        "vm.running",
        quantity,
        "hours",
        "2017-02-03T00:00:00Z",
        "2017-02-03T01:00:00Z",
    )
}

/// A CloudStack export whose one record is dated in December 262142: chrono's `%Y` reads
/// six-digit years, and the month after it does not exist in chrono.
const YEAR_262142: &str = r#"{"listusagerecordsresponse": {"count": 1, "usagerecord": [{"account":"bu1user1","usagetype":1,"rawusage":"1","usage":"1 Hrs","description":"silver-1 running time (ServiceOffering: silver)","startdate":"+262142-12-01 00:00:00","enddate":"+262142-12-01 01:00:00","usageid":"u-1","virtualmachineid":"vm-1","name":"silver-1","offeringid":"5f0e1a2b-0002-4c1d-9e00-0000000s1lvr","type":"KVM"}]}}"#;

const CSV_HEADER: &str =
    "record_id,account,project,resource,product,meter,quantity,unit,start,end,tags,region\n";

/// What the store holds before the bad input arrives.
#[derive(Clone, Copy)]
enum Given {
    Empty,
    /// One good batch rated under the key `k1`.
    Rated,
    /// `Rated`, then `bu1user1` finalized.
    Finalized,
}

enum Act {
    Batch {
        export: String,
        format: Option<Format>,
        key: Option<&'static str>,
        account: Option<&'static str>,
    },
    Finalize(&'static str),
    Invoice(&'static str),
    Config {
        catalog: String,
        accounts: String,
    },
}

fn batch(export: impl Into<String>) -> Act {
    Act::Batch {
        export: export.into(),
        format: Some(Format::JsonLines),
        key: None,
        account: None,
    }
}

fn csv(export: impl Into<String>) -> Act {
    Act::Batch {
        export: export.into(),
        format: Some(Format::Csv),
        key: None,
        account: None,
    }
}

struct Case {
    name: &'static str,
    given: Given,
    act: Act,
    code: &'static str,
    status: u16,
    /// A part of the message that names the rule and the offending value.
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let day = ("2017-02-03T00:00:00Z", "2017-02-03T01:00:00Z");
    vec![
        Case { name: "malformed JSON line", given: Given::Empty, act: batch("{\"account\": \n"), code: "bad_records", status: 422, says: "record 1: field `account` = `{\"account\": `: not a usage record: EOF while parsing a value" },
        Case { name: "JSON line that is not a record", given: Given::Empty, act: batch("[1,2,3]\n"), code: "bad_records", status: 422, says: "record 1: field `$` = `[1,2,3]`: not a usage record" },
        Case { name: "malformed CSV row (missing columns)", given: Given::Empty, act: csv(format!("{CSV_HEADER}r1,bu1user1,,vm-1,copper\n")), code: "bad_records", status: 422, says: "record 2: field `$` = `r1,bu1user1,,vm-1,copper`: the row has 5 fields, the header has 12" },
        Case { name: "CSV with a wrong header", given: Given::Empty, act: csv("id,who,what\n1,2,3\n"), code: "import", status: 400, says: "csv input is not a usage export: unknown column `id` at position 1" },
        Case { name: "unrecognisable format", given: Given::Empty, act: Act::Batch { export: "hello world\n".into(), format: None, key: None, account: None }, code: "bad_request", status: 400, says: "bad request: `format`: cannot tell the export's format from its first bytes" },
        Case { name: "unknown product (offering)", given: Given::Empty, act: batch(jl("bu1user1", "tin", "vm.running", "1", "hours", day.0, day.1)), code: "bad_records", status: 422, says: "record 1 (r1): field `product` = `tin`: unknown product or offering" },
        Case { name: "unknown meter", given: Given::Empty, act: batch(jl("bu1user1", "copper", "volume.gbh", "1", "gigabyte_hours", day.0, day.1)), code: "bad_records", status: 422, says: "record 1 (r1): field `meter` = `volume.gbh`: product has no price for this meter" },
        Case { name: "negative quantity", given: Given::Empty, act: batch(q("-1")), code: "bad_records", status: 422, says: "field `quantity` = `-1`: quantity is negative" },
        Case { name: "NaN quantity", given: Given::Empty, act: batch(q("NaN")), code: "bad_records", status: 422, says: "field `quantity` = `NaN`: not a decimal number" },
        Case { name: "infinite quantity", given: Given::Empty, act: batch(q("inf")), code: "bad_records", status: 422, says: "field `quantity` = `inf`: not a decimal number" },
        Case { name: "absurd quantity", given: Given::Empty, act: batch(q("1000000000000000000000000")), code: "bad_records", status: 422, says: "field `quantity` = `1000000000000000000000000`: quantity is larger than the largest allowed (1000000000000000000000)" },
        Case { name: "quantity in exponent form", given: Given::Empty, act: batch(q("1e30")), code: "bad_records", status: 422, says: "field `quantity` = `1e30`: quantity is larger than the largest allowed" },
        Case { name: "issue 12: a record whose line cannot be priced (10^14 GB-months on a GB-hour meter)", given: Given::Empty, act: batch(jl("bu1user1", "small-disk", "volume.gbh", "100000000000000", "gigabyte_months", day.0, day.1)), code: "bad_records", status: 422, says: "field `quantity` = `73000000000000000`: the batch's usage of small-disk/volume.gbh for this account and period adds up to 73000000000000000 GB.h, more than one batch may bring (5000000000000 GB.h)" },
        // chrono's `%Y` reads six-digit years (see also the test below, without a window).
        Case { name: "a CloudStack date in year 262142", given: Given::Empty, act: Act::Batch { export: YEAR_262142.into(), format: Some(Format::CloudStack), key: None, account: None }, code: "bad_records", status: 422, says: "record 0: field `startdate` = `+262142-12-01 00:00:00`: not a date in years 0001-9999" },
        Case { name: "end before start", given: Given::Empty, act: batch(jl("bu1user1", "copper", "vm.running", "1", "hours", day.1, day.0)), code: "bad_records", status: 422, says: "field `end` = `2017-02-03T00:00:00Z`: end is before start" },
        Case { name: "record outside the period", given: Given::Empty, act: batch(jl("bu1user1", "copper", "vm.running", "1", "hours", "2017-03-03T00:00:00Z", "2017-03-03T01:00:00Z")), code: "bad_records", status: 422, says: "field `start` = `2017-03-03T00:00:00+00:00`: record is outside the billing period 2017-02" },
        Case { name: "unit mismatch", given: Given::Empty, act: batch(jl("bu1user1", "copper", "vm.running", "1", "gigabytes", day.0, day.1)), code: "bad_records", status: 422, says: "field `unit` = `GB`: unit `GB` cannot be converted to the meter's unit `h`" },
        Case { name: "unknown unit", given: Given::Empty, act: batch(jl("bu1user1", "copper", "vm.running", "1", "parsecs", day.0, day.1)), code: "bad_records", status: 422, says: "field `unit` = `parsecs`: unknown unit" },
        Case { name: "unknown account", given: Given::Empty, act: batch(good("nobody")), code: "bad_records", status: 422, says: "field `account` = `nobody`: unknown account" },
        Case { name: "a product the customer's reseller hides", given: Given::Empty, act: batch(jl("acme-shop", "vm-snapshots", "snapshot.gbh", "10", "gigabyte_hours", "2017-02-03T00:00:00Z", "2017-02-03T01:00:00Z")), code: "bad_records", status: 422, says: "field `product` = `vm-snapshots`: reseller `acme` does not sell this product to its customers" },
        Case { name: "record of another account than the request's", given: Given::Empty, act: Act::Batch { export: good("smb-tenant"), format: Some(Format::JsonLines), key: None, account: Some("bu1user1") }, code: "bad_records", status: 422, says: "field `account` = `smb-tenant`: the batch was sent for account `bu1user1` only" },
        Case { name: "one bad record among good ones rejects the batch", given: Given::Empty, act: batch(good("bu1user1") + &q("-5") + &good("smb-tenant")), code: "bad_records", status: 422, says: "batch rejected: 1 bad record(s), nothing was rated\n  record 2 (r1): field `quantity` = `-5`" },
        Case { name: "record id longer than any exporter writes", given: Given::Empty, act: batch(good("bu1user1").replace("\"r1\"", &format!("\"{}\"", "u".repeat(2000)))), code: "bad_records", status: 422, says: Box::leak(format!("field `record_id` = `{}... (2000 bytes)`: 2000 bytes, more than the 1024 allowed", "u".repeat(120)).into_boxed_str()) },
        Case { name: "resource name longer than any exporter writes", given: Given::Empty, act: batch(good("bu1user1").replace("\"vm-1\"", &format!("\"{}\"", "v".repeat(1025)))), code: "bad_records", status: 422, says: "(1025 bytes)`: 1025 bytes, more than the 1024 allowed" },
        Case { name: "more tags than a record may carry", given: Given::Empty, act: batch(good("bu1user1").replace("\"resource\"", &format!("\"tags\":[{}],\"resource\"", vec!["\"t\""; 65].join(",")))), code: "bad_records", status: 422, says: "... (129 bytes)`: 65 tags, more than the 64 allowed" },
        Case { name: "empty batch", given: Given::Empty, act: batch(""), code: "empty_batch", status: 400, says: "empty batch: the export holds no usage record" },
        Case { name: "whitespace-only batch", given: Given::Empty, act: batch("  \n\n"), code: "empty_batch", status: 400, says: "empty batch: the export holds no usage record" },
        Case { name: "CSV header only", given: Given::Empty, act: csv(CSV_HEADER), code: "empty_batch", status: 400, says: "empty batch: the export holds no usage record" },
        Case { name: "oversize payload", given: Given::Empty, act: batch(good("bu1user1").repeat(PAYLOAD_BYTES_MAX_TEST / 100 + 10)), code: "payload_too_large", status: 413, says: "payload is 9400 bytes, more than the limit of 4096 bytes" },
        Case { name: "batch id starting with #", given: Given::Empty, act: Act::Batch { export: good("bu1user1"), format: Some(Format::JsonLines), key: Some("#COMMITTED"), account: None }, code: "bad_request", status: 400, says: "`batch_id`: `#COMMITTED` must be printable ASCII without spaces and must not start with `#`" },
        Case { name: "batch id too long", given: Given::Empty, act: Act::Batch { export: good("bu1user1"), format: Some(Format::JsonLines), key: Some(Box::leak("k".repeat(200).into_boxed_str())), account: None }, code: "bad_request", status: 400, says: "`batch_id`: must be 1 to 128 bytes, got 200" },
        Case { name: "idempotency key reused for other content", given: Given::Rated, act: Act::Batch { export: good("smb-tenant"), format: Some(Format::JsonLines), key: Some("k1"), account: None }, code: "idempotency_key_reused", status: 422, says: "batch id `k1` was used before for different content" },
        Case { name: "record id repeated with other content in one batch", given: Given::Empty, act: batch(q("1") + &q("2")), code: "bad_records", status: 422, says: "record 2 (r1): field `record_id` = `r1`: record id was already counted with different content (first as record 1 of this batch)" },
        Case { name: "record id counted by an earlier batch, now with other content", given: Given::Rated, act: batch(q("2")), code: "bad_records", status: 422, says: "record 1 (r1): field `record_id` = `r1`: record id was already counted with different content (by an earlier batch of period 2017-02)" },
        Case { name: "late usage for a finalized period", given: Given::Finalized, act: batch(q("7")), code: "period_closed", status: 409, says: "late usage refused: period 2017-02 of account `bu1user1` is closed by final invoice test-000001; nothing was written" },
        Case { name: "finalizing a finalized period", given: Given::Finalized, act: Act::Finalize("bu1user1"), code: "already_finalized", status: 409, says: "period 2017-02 of account `bu1user1` is already finalized (invoice test-000001)" },
        Case { name: "finalizing an unknown account", given: Given::Rated, act: Act::Finalize("nobody"), code: "unknown_account", status: 422, says: "account `nobody` is not in the accounts book (version 2017-02-28.1)" },
        Case { name: "invoice of an unknown account", given: Given::Rated, act: Act::Invoice("nobody"), code: "unknown_account", status: 422, says: "account `nobody` is not in the accounts book (version 2017-02-28.1)" },
        Case { name: "catalog that is not JSON", given: Given::Empty, act: Act::Config { catalog: "{".into(), accounts: ACCOUNTS.into() }, code: "config", status: 500, says: "invalid configuration: catalog: invalid catalog (1 problem(s))\n  $: EOF while parsing" },
        Case { name: "catalog with a float price", given: Given::Empty, act: Act::Config { catalog: CATALOG.replace("\"2.2000\"", "2.2"), accounts: ACCOUNTS.into() }, code: "config", status: 500, says: "$.products[0].charges[0].price.unit_price: write the decimal 2.2 as a string" },
        Case { name: "catalog with an unknown currency", given: Given::Empty, act: Act::Config { catalog: CATALOG.replace("\"GBP\"", "\"XXX\""), accounts: ACCOUNTS.into() }, code: "config", status: 500, says: "$.currency.code: unknown currency `XXX`" },
        Case { name: "account id longer than a storage key allows", given: Given::Empty, act: Act::Config { catalog: CATALOG.into(), accounts: ACCOUNTS.replace("\"bu1user1\"", &format!("\"{}\"", "b".repeat(129))) }, code: "config", status: 500, says: "(129 bytes) is longer than the 128 bytes allowed" },
        Case { name: "coupon redeemed past its limit", given: Given::Empty, act: Act::Config { catalog: CATALOG.replacen("\"max_redemptions\": 500", "\"max_redemptions\": 1", 1), accounts: ACCOUNTS.replacen("\"id\": \"bu1user1\",", r#""id": "bu1user1", "coupons": [ { "code": "WELCOME10", "redeemed_at": "2017-02-03T00:00:00Z" } ],"#, 1).replacen("\"id\": \"smb-tenant\",", r#""id": "smb-tenant", "coupons": [ { "code": "welcome10", "redeemed_at": "2017-02-01T00:00:00Z" } ],"#, 1) }, code: "config", status: 500, says: "$.accounts[0].coupons[0].code: coupon `WELCOME10` may be redeemed by 1 accounts: this is redemption 2 (by account `bu1user1`)" },
        Case { name: "account id with # (breaks storage keys)", given: Given::Empty, act: Act::Config { catalog: CATALOG.into(), accounts: ACCOUNTS.replace("\"bu1user1\"", "\"bu1#user1\"") }, code: "config", status: 500, says: "account id `bu1#user1` must be non-empty and without `#`" },
    ]
}

fn store() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    (dir, s)
}

async fn given(store: &EmbeddedStore, config: &RaterConfig, g: Given) {
    if matches!(g, Given::Empty) {
        return;
    }
    let req = BatchRequest {
        batch_id: Some("k1".into()),
        format: Some(Format::JsonLines),
        period: Some(period()),
        account: None,
        mode: Mode::Interim,
        export: (good("bu1user1") + &good("smb-tenant")).into_bytes(),
    };
    rate_batch(store, config, req).await.unwrap();
    if matches!(g, Given::Finalized) {
        finalize(store, config, "bu1user1", period()).await.unwrap();
    }
}

/// Runs one row: the error it got, and whether the store is unchanged.
async fn run(case: &Case) -> RaterError {
    let (_dir, store) = store();
    let config = config();
    given(&store, &config, case.given).await;
    let before = store.dump().unwrap();
    let counter = store.counter("test").await.unwrap();
    let err = match &case.act {
        Act::Batch {
            export,
            format,
            key,
            account,
        } => {
            let req = BatchRequest {
                batch_id: key.map(str::to_string),
                format: *format,
                period: Some(period()),
                account: account.map(str::to_string),
                mode: Mode::Interim,
                export: export.clone().into_bytes(),
            };
            let err = rate_batch(&store, &config, req).await.err();
            let id = key
                .map(str::to_string)
                .unwrap_or_else(|| sha256_hex(export.as_bytes()));
            if !matches!(case.given, Given::Rated) || id != "k1" {
                if let Ok(ledger) = store.ledger(&id).await {
                    assert_eq!(ledger, None, "{}: a ledger was written", case.name);
                }
            }
            err
        }
        Act::Finalize(account) => finalize(&store, &config, account, period()).await.err(),
        Act::Invoice(account) => invoice_for(&store, &config, account, period()).await.err(),
        Act::Config { catalog, accounts } => {
            RaterConfig::from_json(catalog, accounts, "test").err()
        }
    };
    let err = err.unwrap_or_else(|| panic!("{}: accepted", case.name));
    assert_eq!(
        store.dump().unwrap(),
        before,
        "{}: the store changed",
        case.name
    );
    assert_eq!(
        store.counter("test").await.unwrap(),
        counter,
        "{}: the counter moved",
        case.name
    );
    err
}

#[tokio::test]
async fn every_bad_input_is_refused_with_its_rule_and_writes_nothing() {
    let print = std::env::var("BAD_INPUT_PRINT").is_ok();
    let mut failures = Vec::new();
    for case in cases() {
        let err = run(&case).await;
        let shown = err.to_string();
        if print {
            println!(
                "{:50} | {} | {} | {shown}",
                case.name,
                err.code(),
                err.http_status()
            );
            continue;
        }
        if err.code() != case.code || err.http_status() != case.status || !shown.contains(case.says)
        {
            failures.push(format!(
                "{}: got {} {} `{shown}`, want {} {} containing `{}`",
                case.name,
                err.code(),
                err.http_status(),
                case.code,
                case.status,
                case.says
            ));
        }
        assert!(
            !err.retryable(),
            "{}: bad input must not be retried",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// With no window, a record is rated into the period that holds it: a CloudStack date in
/// December of chrono's last year (262142) made the rater build a month whose end does not
/// exist, and panic (a 500 in the function, an abort in the CLI) instead of refusing the record.
#[tokio::test]
async fn a_date_past_four_digit_years_is_refused_without_a_window() {
    let (_dir, store) = store();
    let config = config();
    let before = store.dump().unwrap();
    let req = BatchRequest {
        batch_id: None,
        format: Some(Format::CloudStack),
        period: None,
        account: None,
        mode: Mode::Interim,
        export: YEAR_262142.as_bytes().to_vec(),
    };
    let err = rate_batch(&store, &config, req).await.unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("bad_records", 422),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "record 0: field `startdate` = `+262142-12-01 00:00:00`: not a date in years 0001-9999"
        ),
        "{err}"
    );
    assert_eq!(store.dump().unwrap(), before, "nothing written");
}
