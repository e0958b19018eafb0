//! Lambda events in and out: Function URL requests and direct (scheduled) invocations become handler calls; results become Function URL responses.
//!
//! Pure apart from the store calls made by [`handle_event`]; the Lambda binary only parses the
//! JSON payload and hands it here, so everything about the wire format is tested in-process.
//!
//! Function URL request (`POST`): the body is an export (base64 when `isBase64Encoded`), or a
//! JSON object shaped like a direct invocation (`{"batch_id", "format", "period", "mode",
//! "account", "export"}`), which is what the nightly exporter sends. The header
//! `Idempotency-Key`, and the query parameters `format`, `period`, `account`, `mode`,
//! `batch_id` set the rest (the JSON fields win). The answer is JSON, or CSV with
//! `Accept: text/csv` or `?output=csv`. A `GET` with `account` and `period` answers that
//! account's current invoice. Errors answer 4xx/5xx with `{"error": {...}}`.

use std::collections::BTreeMap;

use base64::Engine;
use pricing::BillingPeriod;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{Action, Caller};
use crate::batch::{rate_batch, BatchRequest};
use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::import::parse_format_arg;
use crate::invoices::{finalize_with, invoice_as, Finalizing, Pricing};
use crate::model::Mode;
use crate::month;
use crate::objects::{NoObjects, ObjectLoc, Objects};
use crate::render;
use crate::store::{PaymentOutcome, Store};

/// The parts of a Function URL request (payload format 2.0) the rater reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlRequest {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query_string_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
    #[serde(default)]
    pub request_context: Value,
}

impl FunctionUrlRequest {
    fn method(&self) -> String {
        self.request_context
            .pointer("/http/method")
            .and_then(Value::as_str)
            .unwrap_or("POST")
            .to_ascii_uppercase()
    }

    /// Header names are case-insensitive; Function URLs lower-case them, but tests and proxies
    /// may not.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query_string_parameters.get(name).map(String::as_str)
    }

    /// The request's path (`/`, `/payments`...), without a trailing slash.
    fn path(&self) -> &str {
        let p = self
            .request_context
            .pointer("/http/path")
            .and_then(Value::as_str)
            .unwrap_or("/");
        match p.trim_end_matches('/') {
            "" => "/",
            p => p,
        }
    }

    /// The body as bytes (decoded when base64).
    fn body_bytes(&self) -> Result<Vec<u8>, RaterError> {
        let raw = self.body.as_deref().unwrap_or("");
        if self.is_base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .map_err(|e| bad("body", format!("isBase64Encoded but not base64: {e}")))
        } else {
            Ok(raw.as_bytes().to_vec())
        }
    }

    /// The body, read as the JSON of `T`.
    fn json_body<T: serde::de::DeserializeOwned>(&self) -> Result<T, RaterError> {
        let bytes = self.body_bytes()?;
        serde_json::from_slice(&bytes).map_err(|e| bad("body", e.to_string()))
    }
}

/// A close, asked for by an operator (`POST /close`) or sent by the month-end schedule as
/// `{"close": {...}}`: either the period, or the schedule's `time` from which the period is
/// the last one past its grace (`RATECARD_CLOSE_GRACE_HOURS`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloseEvent {
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The kind of period a scheduled close closes (a month when absent).
    #[serde(default)]
    pub kind: Option<pricing::PeriodKind>,
    /// Close a period that has not ended (operators only; logged).
    #[serde(default, rename = "override")]
    pub override_end: bool,
}

impl CloseEvent {
    fn period(&self, config: &RaterConfig) -> Result<BillingPeriod, RaterError> {
        if let Some(p) = parse_period(self.period.as_deref())? {
            return Ok(p);
        }
        let time = self
            .time
            .ok_or_else(|| bad("period", "a close needs `period` or the schedule's `time`"))?;
        Ok(crate::month::period_to_close(
            time,
            chrono::Duration::hours(config.close_grace_hours),
            self.kind.unwrap_or(pricing::PeriodKind::Month),
        ))
    }
}

/// `POST /finalize`: one account period, by an operator.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinalizeEvent {
    pub account: String,
    pub period: String,
    #[serde(default, rename = "override")]
    pub override_end: bool,
}

/// `POST /rerate`: re-rate one closed account period under the deployment's (corrected)
/// catalog and accounts, by an operator.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RerateEvent {
    pub account: String,
    pub period: String,
    /// `corrected_catalog` (the default) or `corrected_account`.
    #[serde(default = "corrected_catalog")]
    pub reason: pricing::NoteReason,
}

fn corrected_catalog() -> pricing::NoteReason {
    pricing::NoteReason::CorrectedCatalog
}

/// A direct invocation, as the nightly schedule sends it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirectEvent {
    #[serde(default)]
    pub batch_id: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    /// The export itself, as text.
    pub export: String,
}

/// A Function URL response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

/// How to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Csv,
}

fn bad(field: &'static str, message: impl Into<String>) -> RaterError {
    RaterError::BadRequest {
        field,
        message: message.into(),
    }
}

fn parse_period(s: Option<&str>) -> Result<Option<BillingPeriod>, RaterError> {
    s.filter(|s| !s.is_empty())
        .map(|s| BillingPeriod::parse(s).map_err(|e| bad("period", e.to_string())))
        .transpose()
}

fn parse_mode(s: Option<&str>) -> Result<Mode, RaterError> {
    s.filter(|s| !s.is_empty())
        .map(str::parse)
        .transpose()
        .map(Option::unwrap_or_default)
}

impl DirectEvent {
    pub fn into_request(self) -> Result<BatchRequest, RaterError> {
        Ok(BatchRequest {
            batch_id: self.batch_id.filter(|s| !s.is_empty()),
            format: parse_format_arg(self.format.as_deref())?,
            period: parse_period(self.period.as_deref())?,
            account: self.account.filter(|s| !s.is_empty()),
            mode: parse_mode(self.mode.as_deref())?,
            export: self.export.into_bytes(),
        })
    }
}

/// The batch a Function URL `POST` carries, and how to answer it.
pub fn url_batch_request(
    req: &FunctionUrlRequest,
    payload_bytes_max: usize,
) -> Result<(BatchRequest, Output), RaterError> {
    let output = output_of(req);
    let raw = req.body.as_deref().unwrap_or("");
    // The encoded body is checked first so that a huge body is refused before decoding it.
    let encoded_max = if req.is_base64_encoded {
        payload_bytes_max.div_ceil(3) * 4
    } else {
        payload_bytes_max
    };
    if raw.len() > encoded_max {
        return Err(RaterError::PayloadTooLarge {
            bytes: if req.is_base64_encoded {
                raw.len() / 4 * 3
            } else {
                raw.len()
            },
            max: payload_bytes_max,
        });
    }
    let body = if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|e| bad("body", format!("isBase64Encoded but not base64: {e}")))?
    } else {
        raw.as_bytes().to_vec()
    };
    let mut batch = BatchRequest {
        batch_id: req
            .header("idempotency-key")
            .or(req.query("batch_id"))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        format: parse_format_arg(req.query("format"))?,
        period: parse_period(req.query("period"))?,
        account: req
            .query("account")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        mode: parse_mode(req.query("mode"))?,
        export: body,
    };
    // A body that is one JSON object with an `export` field is an event, not an export (a
    // JSON Lines export never has that field: records refuse unknown fields).
    if batch.export.first() == Some(&b'{') {
        if let Ok(ev) = serde_json::from_slice::<DirectEvent>(&batch.export) {
            if let Some(id) = ev.batch_id.filter(|s| !s.is_empty()) {
                batch.batch_id = Some(id);
            }
            if let Some(f) = ev.format.as_deref() {
                batch.format = parse_format_arg(Some(f))?;
            }
            if let Some(p) = parse_period(ev.period.as_deref())? {
                batch.period = Some(p);
            }
            if let Some(a) = ev.account.filter(|s| !s.is_empty()) {
                batch.account = Some(a);
            }
            if ev.mode.as_deref().is_some_and(|m| !m.is_empty()) {
                batch.mode = parse_mode(ev.mode.as_deref())?;
            }
            batch.export = ev.export.into_bytes();
        }
    }
    Ok((batch, output))
}

fn output_of(req: &FunctionUrlRequest) -> Output {
    let csv_query = req
        .query("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("csv"));
    let csv_accept = req
        .header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/csv"));
    if csv_query || csv_accept {
        Output::Csv
    } else {
        Output::Json
    }
}

/// The JSON body of an error: what failed, whether to retry, and every bad record.
pub fn error_body(e: &RaterError) -> Value {
    e.to_json()
}

fn respond(status: u16, content_type: &str, body: String) -> FunctionUrlResponse {
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_string(), content_type.to_string());
    FunctionUrlResponse {
        status_code: status,
        headers,
        body,
        is_base64_encoded: false,
    }
}

pub fn error_response(e: &RaterError) -> FunctionUrlResponse {
    let mut r = respond(
        e.http_status(),
        "application/json",
        error_body(e).to_string(),
    );
    if let RaterError::BatchInProgress { retry_after_s, .. } = e {
        r.headers
            .insert("retry-after".to_string(), retry_after_s.to_string());
    }
    r
}

/// Answers a Function URL request.
pub async fn handle_url<S: Store>(
    store: &S,
    config: &RaterConfig,
    req: &FunctionUrlRequest,
) -> FunctionUrlResponse {
    handle_url_logged(store, config, &NoObjects, req, &mut RequestLog::default()).await
}

async fn handle_url_logged<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    req: &FunctionUrlRequest,
    log: &mut RequestLog,
) -> FunctionUrlResponse {
    log.method = Some(req.method());
    let caller = Caller::of_url_request(&req.request_context, &config.principals);
    log.principal.clone_from(&caller.principal);
    let response = match route(store, config, objects, req, &caller, log).await {
        Ok(Answer::Invoices(invoices)) if output_of(req) == Output::Csv => respond(
            200,
            "text/csv; charset=utf-8",
            render::invoices_csv(&invoices),
        ),
        Ok(Answer::Invoices(invoices)) => respond(
            200,
            "application/json",
            json!({ "invoices": invoices }).to_string(),
        ),
        Ok(Answer::Batch(resp)) if output_of(req) == Output::Csv => respond(
            200,
            "text/csv; charset=utf-8",
            render::invoices_csv(&resp.invoices),
        ),
        Ok(Answer::Batch(resp)) => respond(
            200,
            "application/json",
            serde_json::to_string(&resp).expect("responses serialize"),
        ),
        Ok(Answer::Json(value)) => respond(200, "application/json", value.to_string()),
        Ok(Answer::Report(r)) => report_response(req, &r),
        Ok(Answer::Document {
            content_type,
            bytes,
        }) if content_type == "application/pdf" => binary(content_type, bytes),
        Ok(Answer::Document {
            content_type,
            bytes,
        }) => respond(
            200,
            content_type,
            String::from_utf8_lossy(&bytes).into_owned(),
        ),
        Ok(Answer::Margin(r)) if output_of(req) == Output::Csv => {
            respond(200, "text/csv; charset=utf-8", render::margin_csv(&r))
        }
        Ok(Answer::Margin(r)) => respond(
            200,
            "application/json",
            serde_json::to_string(&r).expect("reports serialize"),
        ),
        Err(e) => {
            log.error(&e);
            error_response(&e)
        }
    };
    log.status = response.status_code;
    response
}

/// What a Function URL request is answered with.
enum Answer {
    Invoices(Vec<pricing::Invoice>),
    Batch(Box<crate::batch::RateResponse>),
    Json(Value),
    Margin(Box<pricing::wholesale::MarginReport>),
    Report(Box<pricing::report::Report>),
    /// A document's bytes (a PDF is sent base64, as Function URLs send binary bodies).
    Document {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// A binary body, base64 as a Function URL sends it.
fn binary(content_type: &str, bytes: Vec<u8>) -> FunctionUrlResponse {
    let mut r = respond(
        200,
        content_type,
        base64::engine::general_purpose::STANDARD.encode(bytes),
    );
    r.is_base64_encoded = true;
    r
}

/// A report as JSON, CSV (`?output=csv` or `Accept: text/csv`) or an XLSX workbook
/// (`?output=xlsx`, base64 in the Function URL's body as binary bodies are).
fn report_response(req: &FunctionUrlRequest, r: &pricing::report::Report) -> FunctionUrlResponse {
    if req
        .query("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("xlsx"))
    {
        return match crate::xlsx::report_xlsx(r) {
            Ok(bytes) => binary(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                bytes,
            ),
            Err(e) => error_response(&RaterError::BadRequest {
                field: "output",
                message: format!("the report cannot be written as a workbook: {e}"),
            }),
        };
    }
    if output_of(req) == Output::Csv {
        return respond(200, "text/csv; charset=utf-8", render::report_csv(r));
    }
    respond(
        200,
        "application/json",
        serde_json::to_string(r).expect("reports serialize"),
    )
}

/// The report a `GET /reports` asks for: `from`, `to` (dates or months; `to` is `from`'s when
/// absent), `group_by`, `by` (month when absent), and a filter for each dimension named as a
/// parameter (`?project=web,db`, `?tag:env=prod`).
fn report_query(req: &FunctionUrlRequest) -> Result<pricing::report::ReportQuery, RaterError> {
    let from = req
        .query("from")
        .ok_or_else(|| bad("from", "GET /reports needs ?from= (a date or a month)"))?;
    let mut filters: Vec<(&str, &str)> = pricing::report::Dimension::ALL
        .iter()
        .filter_map(|d| match d.name() {
            std::borrow::Cow::Borrowed(name) => req.query(name).map(|v| (name, v)),
            std::borrow::Cow::Owned(_) => None,
        })
        .collect();
    // Tags by key: `?tag:env=prod,staging`.
    filters.extend(
        req.query_string_parameters
            .iter()
            .filter(|(k, _)| {
                k.get(..pricing::report::TAG_PREFIX.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(pricing::report::TAG_PREFIX))
            })
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    pricing::report::ReportQuery::parse(
        from,
        req.query("to").unwrap_or(from),
        req.query("group_by").unwrap_or_default(),
        req.query("by").unwrap_or("month"),
        &filters,
    )
    .map_err(crate::reports::bad_query)
}

/// The Function URL's routes, each checked against the caller's role before it does anything:
/// `GET /` (an invoice), `GET /history`, `GET /notes`, `POST /` (a batch), `POST /payments`,
/// `POST /close`, `POST /finalize`, `POST /rerate`, `GET /exports` (an export object's status),
/// `GET /margin`, `GET /reports` (a usage and cost report), `GET /statements` (an account
/// statement).
async fn route<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    req: &FunctionUrlRequest,
    caller: &Caller,
    log: &mut RequestLog,
) -> Result<Answer, RaterError> {
    let method = req.method();
    log.action = Some(req.path().to_string());
    match (method.as_str(), req.path()) {
        ("GET", "/history") => {
            let account = req
                .query("account")
                .ok_or_else(|| bad("account", "GET /history needs ?account="))?;
            let access = DocAccess::check(caller, config, Action::ReadHistory, account)?;
            let documents = access.read(month::history(store, config, account).await)?;
            let documents = access.own(config, account, documents)?;
            Ok(Answer::Json(
                json!({ "account": account, "documents": documents }),
            ))
        }
        ("GET", "/statements") => {
            let need = "GET /statements needs ?account= and ?from= (a date or a month)";
            let account = req.query("account").ok_or_else(|| bad("account", need))?;
            caller.may_read_account(Action::ReadHistory, config.tenant_of(account))?;
            let from = req.query("from").ok_or_else(|| bad("from", need))?;
            let (from, to) = crate::statements::parse_range(from, req.query("to"))?;
            statement_in_tenant(store, caller, config, account, to).await?;
            let currency = req.query("currency");
            let st =
                crate::statements::statement(store, config, account, from, to, currency).await?;
            match req.query("output").map(str::to_ascii_lowercase).as_deref() {
                Some("pdf") => {
                    let acc = config.known_account(account)?;
                    Ok(Answer::Document {
                        content_type: "application/pdf",
                        bytes: crate::documents::statement_pdf_of(config, acc, &st)?,
                    })
                }
                _ if output_of(req) == Output::Csv => Ok(Answer::Document {
                    content_type: "text/csv; charset=utf-8",
                    bytes: render::statement_csv(&st).into_bytes(),
                }),
                _ => Ok(Answer::Json(
                    serde_json::to_value(&st).expect("statements serialize"),
                )),
            }
        }
        ("GET", "/exports") => {
            caller.may(Action::ReadExportStatus)?;
            let loc = export_loc(config, req)?;
            Ok(Answer::Json(
                crate::shards::status(store, objects, &loc, config.now_s()).await?,
            ))
        }
        ("GET", "/margin") => {
            let reseller = req
                .query("reseller")
                .ok_or_else(|| bad("reseller", "GET /margin needs ?reseller= and ?period="))?;
            caller.may_read_reseller(Action::ReadMargin, reseller)?;
            let period = parse_period(req.query("period"))?
                .ok_or_else(|| bad("period", "GET /margin needs ?reseller= and ?period="))?;
            let report = crate::margin::report(store, config, reseller, period).await?;
            Ok(Answer::Margin(Box::new(report)))
        }
        ("GET", "/reports") => {
            let query = report_query(req)?;
            let report = crate::reports::report(store, config, caller, query).await?;
            Ok(Answer::Report(Box::new(report)))
        }
        ("GET", "/notes") => {
            let account = req
                .query("account")
                .ok_or_else(|| bad("account", "GET /notes needs ?account= and ?period="))?;
            // The request's own parameters first: an error answered after the check could
            // tell a reseller whether an account it may not read exists.
            let period = parse_period(req.query("period"))?
                .ok_or_else(|| bad("period", "GET /notes needs ?account= and ?period="))?;
            let access = DocAccess::check(caller, config, Action::ReadInvoice, account)?;
            let notes = access.read(crate::notes::notes_of(store, account, &period.id()).await)?;
            if notes.is_empty() {
                access.nothing()?;
            }
            for n in &notes {
                access.document(config, account, &n.catalog_id)?;
            }
            let output = req.query("output").map(str::to_ascii_lowercase);
            if let Some(output @ ("pdf" | "einvoice" | "xml")) = output.as_deref() {
                // One note as a document: `?number=` names it.
                let number = req
                    .query("number")
                    .ok_or_else(|| bad("number", "a note's document needs ?number="))?;
                let note = notes
                    .iter()
                    .find(|n| n.number.as_deref() == Some(number))
                    .ok_or_else(|| {
                        bad(
                            "number",
                            format!(
                                "{account} {} has no note numbered `{}`",
                                period.id(),
                                pricing::error::shown(number)
                            ),
                        )
                    })?;
                let acc = config.known_account(account)?;
                let version = note.accounts_version.as_deref();
                let acc =
                    &*crate::documents::as_issued(store, config, acc, &note.catalog_id, version)
                        .await?;
                return Ok(if output == "pdf" {
                    let embed = if req.query("einvoice") == Some("false") {
                        crate::documents::Embed::Nothing
                    } else {
                        crate::documents::Embed::EInvoice
                    };
                    Answer::Document {
                        content_type: "application/pdf",
                        bytes: crate::documents::note_pdf_of(config, acc, note, embed)?,
                    }
                } else {
                    Answer::Document {
                        content_type: "application/xml",
                        bytes: crate::documents::note_xml(config, acc, note)?.into_bytes(),
                    }
                });
            }
            Ok(Answer::Json(json!({
                "account": account,
                "period": period.id(),
                "notes": notes,
            })))
        }
        ("GET", _) => {
            let account = req
                .query("account")
                .ok_or_else(|| bad("account", "GET needs ?account= and ?period="))?;
            // The request's own parameters first (see `/notes`).
            let period = parse_period(req.query("period"))?
                .ok_or_else(|| bad("period", "GET needs ?account= and ?period="))?;
            let how = Pricing::interim(req.query("as_of"), period, config.now_s())?;
            let access = DocAccess::check(caller, config, Action::ReadInvoice, account)?;
            // A former tenant reads only a final invoice it issued: nothing is priced for it.
            let inv = match access.former {
                true => access
                    .read(
                        store
                            .final_invoice(account, &period.id())
                            .await
                            .map_err(RaterError::from),
                    )?
                    .ok_or_else(|| caller.refusal(Action::ReadInvoice))?,
                false => invoice_as(store, config, account, period, how).await?,
            };
            access.document(config, account, &inv.bill.catalog_id)?;
            let output = req.query("output").map(str::to_ascii_lowercase);
            match output.as_deref() {
                // The invoice as a document: a PDF (with its EN 16931 e-invoice unless
                // `einvoice=false`), or the e-invoice's XML alone.
                Some("pdf") => {
                    let acc = config.known_account(account)?;
                    let version = inv.accounts_version.as_deref();
                    let catalog = &inv.bill.catalog_id;
                    let acc =
                        &*crate::documents::as_issued(store, config, acc, catalog, version).await?;
                    // An interim invoice is no e-invoice (it has no number): its PDF comes alone.
                    let embed = if req.query("einvoice") == Some("false") || inv.number.is_none() {
                        crate::documents::Embed::Nothing
                    } else {
                        crate::documents::Embed::EInvoice
                    };
                    Ok(Answer::Document {
                        content_type: "application/pdf",
                        bytes: crate::documents::pdf_of(config, acc, &inv, embed)?,
                    })
                }
                Some("einvoice" | "xml") => {
                    let acc = config.known_account(account)?;
                    let version = inv.accounts_version.as_deref();
                    let catalog = &inv.bill.catalog_id;
                    let acc =
                        &*crate::documents::as_issued(store, config, acc, catalog, version).await?;
                    Ok(Answer::Document {
                        content_type: "application/xml",
                        bytes: crate::documents::einvoice_xml(config, acc, &inv)?.into_bytes(),
                    })
                }
                _ => Ok(Answer::Invoices(vec![inv])),
            }
        }
        ("POST", "/payments") => {
            caller.may(Action::RecordPayment)?;
            let p: month::PaymentInput = req.json_body()?;
            let outcome = month::record_payment(store, config, &p).await?;
            Ok(Answer::Json(json!({
                "account": p.account,
                "reference": p.reference,
                "recorded": outcome == PaymentOutcome::Recorded,
            })))
        }
        ("POST", "/close") => {
            caller.may(Action::Close)?;
            let ev: CloseEvent = req.json_body()?;
            let report = close_as(store, config, &ev, caller, log).await?;
            Ok(Answer::Json(
                serde_json::to_value(report).expect("reports serialize"),
            ))
        }
        ("POST", "/finalize") => {
            caller.may(Action::Finalize)?;
            let ev: FinalizeEvent = req.json_body()?;
            let period = parse_period(Some(&ev.period))?
                .ok_or_else(|| bad("period", "POST /finalize needs `period`"))?;
            let how = overriding(caller, ev.override_end, log)?;
            let inv = finalize_with(store, config, &ev.account, period, how).await?;
            Ok(Answer::Invoices(vec![inv]))
        }
        ("POST", "/rerate") => {
            caller.may(Action::Rerate)?;
            let ev: RerateEvent = req.json_body()?;
            let period = parse_period(Some(&ev.period))?
                .ok_or_else(|| bad("period", "POST /rerate needs `period`"))?;
            if ev.reason == pricing::NoteReason::LateUsage {
                return Err(bad(
                    "reason",
                    "late usage is corrected by its batch; a re-rate corrects a catalog or an account",
                ));
            }
            let note = crate::notes::correct(store, config, &ev.account, period, ev.reason).await?;
            Ok(Answer::Json(json!({
                "account": ev.account,
                "period": period.id(),
                "issued": note.is_some(),
                "note": note,
            })))
        }
        ("POST", "/") => {
            let (batch, _) = url_batch_request(req, config.payload_bytes_max)?;
            caller.may(match batch.mode {
                Mode::Interim => Action::RateInterim,
                Mode::Final => Action::RateFinal,
            })?;
            let resp = rate_batch(store, config, batch).await?;
            log.batch(&resp);
            Ok(Answer::Batch(Box::new(resp)))
        }
        (m, p) => Err(bad("path", format!("no route for {m} {p}"))),
    }
}

/// The export object `GET /exports?key=[&bucket=]` names: in the deployment's exports bucket
/// (`RATECARD_EXPORTS_BUCKET`), the only one it answers for.
fn export_loc(config: &RaterConfig, req: &FunctionUrlRequest) -> Result<ObjectLoc, RaterError> {
    let key = req
        .query("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("key", "GET /exports needs ?key= (the export's object key)"))?;
    let bucket =
        match (req.query("bucket"), config.exports_bucket.as_deref()) {
            (Some(asked), Some(ours)) if asked != ours => {
                return Err(bad(
                    "bucket",
                    format!("this deployment rates exports from bucket `{ours}` only"),
                ))
            }
            (_, Some(ours)) => ours,
            (Some(asked), None) => asked,
            (None, None) => return Err(bad(
                "bucket",
                "this deployment has no exports bucket (RATECARD_EXPORTS_BUCKET); give ?bucket=",
            )),
        };
    Ok(ObjectLoc {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: None,
    })
}

/// The finalizing rule for a request asking (or not) to override the period's end: only an
/// operator may, and the log line says it did.
fn overriding(
    caller: &Caller,
    override_end: bool,
    log: &mut RequestLog,
) -> Result<Finalizing, RaterError> {
    if override_end {
        caller.may(Action::OverridePeriodEnd)?;
        log.override_period_end = true;
    }
    Ok(Finalizing {
        before_period_end: override_end,
    })
}

/// Closes the period a close event names, as `caller`.
async fn close_as<S: Store>(
    store: &S,
    config: &RaterConfig,
    ev: &CloseEvent,
    caller: &Caller,
    log: &mut RequestLog,
) -> Result<month::CloseReport, RaterError> {
    let period = ev.period(config)?;
    let how = overriding(caller, ev.override_end, log)?;
    let report = month::close(store, config, period, how).await?;
    log.close = Some(CloseCounts {
        period: report.period.clone(),
        finalized: report.finalized,
        already_final: report.already_final,
        skipped: report.skipped,
        failed: report.failed,
    });
    Ok(report)
}

/// Dispatches one Lambda payload: a Function URL request answers a Function URL response
/// (errors included, as statuses); a direct invocation answers the rate response, or fails
/// with the error (so that Lambda retries it when retryable and dead-letters it otherwise).
///
/// A panic anywhere in the request becomes [`RaterError::Internal`] (a 500 answer for a
/// Function URL request), so the process lives on for the next request; a batch interrupted
/// by it is like a crashed one: its chunks are invisible until a retry commits it.
pub async fn handle_event<S: Store>(
    store: &S,
    config: &RaterConfig,
    payload: Value,
) -> Result<Value, RaterError> {
    handle_event_logged(store, config, payload, &mut RequestLog::default()).await
}

/// [`handle_event`], filling the request's log line.
pub async fn handle_event_logged<S: Store>(
    store: &S,
    config: &RaterConfig,
    payload: Value,
    log: &mut RequestLog,
) -> Result<Value, RaterError> {
    handle_event_objects(store, config, &NoObjects, payload, log).await
}

/// [`handle_event_logged`] with the exports bucket's objects: S3 event notifications and
/// `GET /exports` read them (the Lambda binary's entry point).
pub async fn handle_event_objects<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    payload: Value,
    log: &mut RequestLog,
) -> Result<Value, RaterError> {
    let started = std::time::Instant::now();
    if log.outcome.is_empty() {
        log.outcome = "ok";
    }
    let is_url = payload.get("requestContext").is_some();
    log.kind = if is_url { "url" } else { "direct" };
    let caught = CatchUnwind(Box::pin(dispatch(store, config, objects, payload, log))).await;
    let out = match caught {
        Ok(out) => out,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            let e = RaterError::Internal { message };
            log.error(&e);
            log.outcome = "panic";
            if is_url {
                let resp = error_response(&e);
                log.status = resp.status_code;
                Ok(serde_json::to_value(resp).expect("responses serialize"))
            } else {
                Err(e)
            }
        }
    };
    if let Err(e) = &out {
        log.error(e);
        log.status = e.http_status();
    } else if !is_url {
        log.status = 200;
    }
    log.duration_ms = started.elapsed().as_millis() as u64;
    out
}

async fn dispatch<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    payload: Value,
    log: &mut RequestLog,
) -> Result<Value, RaterError> {
    if payload.get("requestContext").is_some() {
        let req: FunctionUrlRequest = serde_json::from_value(payload)
            .map_err(|e| bad("event", format!("not a Function URL request: {e}")))?;
        let resp = handle_url_logged(store, config, objects, &req, log).await;
        return Ok(serde_json::to_value(resp).expect("responses serialize"));
    }
    if crate::exports::is_s3_event(&payload) {
        let ev: crate::exports::S3Event = serde_json::from_value(payload)
            .map_err(|e| bad("event", format!("not an S3 event notification: {e}")))?;
        log.kind = "s3";
        log.action = Some("exports".into());
        let outcomes = crate::shards::handle_s3_event(store, config, objects, ev).await?;
        log.rejected = Some(outcomes.iter().filter(|o| o.status == "rejected").count() as u64);
        log.exports = Some(outcomes.clone());
        return Ok(json!({ "exports": outcomes }));
    }
    if crate::shards::is_sqs_event(&payload) {
        log.kind = "sqs";
        log.action = Some("shards".into());
        let (answers, failures) =
            crate::shards::handle_sqs_event(store, config, objects, &payload).await;
        let failures: Vec<Value> = failures
            .into_iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        if !failures.is_empty() {
            log.outcome = "retry";
        }
        return Ok(json!({ "shards": answers, "batchItemFailures": failures }));
    }
    if let Some(close) = payload.get("close") {
        let ev: CloseEvent = serde_json::from_value(close.clone()).map_err(|e| {
            bad(
                "close",
                format!("expected {{period | time, kind, override}}: {e}"),
            )
        })?;
        log.action = Some("close".into());
        let report = close_as(store, config, &ev, &Caller::operator(), log).await?;
        // The schedule sees an error (and retries) while any account failed; an operator's
        // `POST /close` gets the report with its failures instead.
        if let Some(first) = report.failures.first() {
            return Err(RaterError::CloseIncomplete {
                period: report.period.clone(),
                finalized: report.finalized,
                failed: report.failed,
                first_account: first.account.clone(),
                first_message: first.message.clone(),
                retryable: report.failures.iter().any(|f| f.retryable),
            });
        }
        return Ok(serde_json::to_value(report).expect("reports serialize"));
    }
    let ev: DirectEvent = serde_json::from_value(payload).map_err(|e| {
        bad(
            "event",
            format!("expected {{batch_id, format, period, mode, account, export}}: {e}"),
        )
    })?;
    let resp = rate_batch(store, config, ev.into_request()?).await?;
    log.batch(&resp);
    Ok(serde_json::to_value(resp).expect("responses serialize"))
}

/// A future that turns a panic while it is polled into an error, so that one bad request
/// cannot take the process down with it. The future is boxed, so it is pinned without any
/// unsafe projection.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

/// One structured log line per request (JSON on stdout, where Lambda sends it to CloudWatch
/// Logs): what came in, what it did and how it ended. Internal details (the store's own
/// errors, a panic's message) are written here, never into answers.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RequestLog {
    pub request_id: String,
    /// `url` (a Function URL request), `s3` (an export dropped in the bucket) or `direct`
    /// (the schedule, a test harness).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The route (`/`, `/payments`, `/close`...) or the direct event (`close`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The caller's IAM principal, when the Function URL authenticated one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// An operator closed or finalized a period before it ended.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub override_period_end: bool,
    /// What a close did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseCounts>,
    /// What an S3 event did with each export (rated, replayed, rejected with its report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exports: Option<Vec<crate::exports::ExportOutcome>>,
    /// How many of an S3 event's exports were refused (each has its rejection report): the
    /// template's metric filter counts it, so a refused nightly export pages the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<u64>,
    pub status: u16,
    /// `ok`, `error` or `panic`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A close's counts, in its log line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CloseCounts {
    pub period: String,
    pub finalized: u64,
    pub already_final: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl RequestLog {
    pub fn new(request_id: &str) -> RequestLog {
        RequestLog {
            request_id: request_id.to_string(),
            outcome: "ok",
            ..RequestLog::default()
        }
    }

    fn batch(&mut self, r: &crate::batch::RateResponse) {
        self.batch_id = Some(r.batch_id.clone());
        self.records = Some(r.records);
        self.accounts = Some(r.accounts);
        self.replayed = Some(r.replayed);
    }

    fn error(&mut self, e: &RaterError) {
        if self.outcome != "panic" {
            self.outcome = "error";
        }
        self.code = Some(e.code());
        self.retryable = Some(e.retryable());
        self.error = Some(e.to_string());
    }
}

/// Who may read a document of an account, checked before it is read and again after.
///
/// Before: the account's tenant now (`RaterConfig::tenant_of`), or, for a reseller, any account
/// the book holds, since the book may have moved a customer away from the reseller that issued
/// its earlier documents, which still reads them (`former`). After: the document's own tenant
/// (`RaterConfig::document_tenant`), so the reseller a customer moved to does not read the
/// documents (retail prices) its former reseller issued. A former tenant learns nothing else:
/// any error while reading, or nothing of its own to read, answers it 403 as for an account it
/// never had.
struct DocAccess<'a> {
    caller: &'a Caller,
    action: Action,
    former: bool,
}

impl<'a> DocAccess<'a> {
    fn check(
        caller: &'a Caller,
        config: &RaterConfig,
        action: Action,
        account: &str,
    ) -> Result<Self, RaterError> {
        let former = match caller.may_read_account(action, config.tenant_of(account)) {
            Ok(()) => false,
            Err(_) if caller.reseller().is_some() && config.account(account).is_some() => true,
            Err(e) => return Err(e),
        };
        Ok(DocAccess {
            caller,
            action,
            former,
        })
    }

    /// What was read, or 403 in place of an error for a former tenant.
    fn read<T>(&self, read: Result<T, RaterError>) -> Result<T, RaterError> {
        match read {
            Err(_) if self.former => Err(self.caller.refusal(self.action)),
            r => r,
        }
    }

    /// Nothing was found to read: 403 for a former tenant (none of it is its own).
    fn nothing(&self) -> Result<(), RaterError> {
        match self.former {
            true => Err(self.caller.refusal(self.action)),
            false => Ok(()),
        }
    }

    /// Refuses a document priced with catalog `catalog_id` unless it is in the caller's tenant.
    fn document(
        &self,
        config: &RaterConfig,
        account: &str,
        catalog_id: &str,
    ) -> Result<(), RaterError> {
        let tenant = config.document_tenant(account, catalog_id);
        self.caller.may_read_account(self.action, tenant)
    }

    /// `documents` (an account's history) as the caller may read them: a reseller reads those
    /// in its own series (its customer's invoices and notes), or all of its own account's (the
    /// provider's statements to it); 403 for a former tenant left with none.
    fn own(
        &self,
        config: &RaterConfig,
        account: &str,
        documents: Vec<crate::model::DocRef>,
    ) -> Result<Vec<crate::model::DocRef>, RaterError> {
        let Some(r) = self.caller.reseller() else {
            return Ok(documents);
        };
        if config.billed_reseller(account) == Some(r) {
            return Ok(documents);
        }
        let own: Vec<_> = documents
            .into_iter()
            .filter(|d| crate::model::issued_by(&d.number, r))
            .collect();
        if own.is_empty() {
            self.nothing()?;
        }
        Ok(own)
    }
}

/// Refuses a reseller an account statement up to `to` of an account that another issuer
/// issued documents to by then (a customer the book moved to it from another reseller, or
/// from the provider): a statement is reconciled whole from the account's first document (its
/// opening balance carries all before the range), so it is not shown with another's cut
/// out. Its own account's statements (the provider's to it) are all its own.
async fn statement_in_tenant<S: Store>(
    store: &S,
    caller: &Caller,
    config: &RaterConfig,
    account: &str,
    to: chrono::NaiveDate,
) -> Result<(), RaterError> {
    let Some(r) = caller.reseller() else {
        return Ok(());
    };
    if config.billed_reseller(account) == Some(r) {
        return Ok(());
    }
    let end_ms = to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(i64::MAX, |t| t.and_utc().timestamp_millis());
    let others = month::history(store, config, account)
        .await?
        .iter()
        .any(|d| d.issued_at_ms < end_ms && !crate::model::issued_by(&d.number, r));
    match others {
        true => Err(caller.refusal(Action::ReadHistory)),
        false => Ok(()),
    }
}
