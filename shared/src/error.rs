//! Error types of the pricing crate: closed enums named for the rule that failed, carrying what a
//! user needs to fix the input (path, record number, field, value).

use std::fmt;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::path::{QuotePath, Setting, SettingsOwner};
use crate::unit::Unit;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("unknown currency `{code}` (not an ISO 4217 code this engine knows)")]
    UnknownCurrency { code: String },
    #[error("no exchange rate from {from} to {to} in the catalog's fx_rates")]
    NoExchangeRate { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error("`{text}` is not a billing period (expected 2017-02, 2017-W07, 2017-02-14 or 2017-02-14T09)")]
    Invalid { text: String },
}

/// One problem in a catalog, at a JSON path such as `$.products[3].charges[0].price.unit_price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub path: String,
    pub rule: CatalogRule,
    pub message: String,
}

/// The rule a catalog broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogRule {
    /// Not JSON, or JSON of the wrong shape.
    Syntax,
    /// A decimal written as a JSON number with a fraction: it went through binary floating point.
    FloatNumber,
    UnsupportedSchemaVersion,
    UnknownCurrency,
    UnknownReference,
    DuplicateId,
    NegativePrice,
    InvalidTiers,
    InvalidValue,
    LimitExceeded,
    /// A price (or fee, exchange rate, markup) so large that a line within the largest
    /// quantity one line may hold would cost more than one line may (`usage::LINE_AMOUNT_MAX`):
    /// refused at load, so that no accepted usage can overflow when priced.
    AmountTooLarge,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a catalog (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl CatalogErrors {
    pub(crate) fn parse<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> CatalogErrors {
        let path = e.path().to_string();
        CatalogErrors(vec![CatalogError {
            path: if path == "." {
                "$".into()
            } else {
                format!("$.{path}")
            },
            rule: CatalogRule::Syntax,
            message: e.inner().to_string(),
        }])
    }
}

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid catalog ({} problem(s))", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Why a usage record was refused. Each variant is one rule; its text is what the batch's
/// error list prints after the record's number, field and value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordRule {
    #[error("field is empty")]
    Empty,
    /// A field the format requires is absent; `why` says what needs it, when that helps.
    #[error("missing field{}", .why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    MissingField { why: Option<String> },
    #[error("unknown product or offering (not an id or alias in the catalog)")]
    UnknownProduct,
    #[error("product has no price for this meter")]
    UnknownMeter,
    #[error("unit `{unit}` cannot be converted to the meter's unit `{expected}`")]
    UnitMismatch { unit: String, expected: String },
    #[error("unknown unit (expected hours, seconds, bytes, gigabytes, byte_hours, gigabyte_hours, gigabyte_months, requests, units or an alias such as h, GB, GB.h)")]
    UnknownUnit,
    #[error("not a decimal number (expected digits with an optional fraction and exponent; NaN and infinity are refused)")]
    NotADecimal,
    #[error("more than 28 digits after the decimal point: the value cannot be held exactly")]
    TooPrecise,
    /// A JSON value that must be a number is something else (`true`, an object).
    #[error("expected a number or a decimal string")]
    ExpectedNumber,
    /// A JSON value that must be text (an id) is something else.
    #[error("expected a string or a number")]
    ExpectedText,
    #[error("bad JSON string: {message}")]
    BadJsonString { message: String },
    #[error("quantity is negative")]
    NegativeQuantity,
    #[error("quantity is larger than the largest allowed ({max})")]
    QuantityTooLarge { max: String },
    #[error("{}", .format.refusal())]
    NotATime { format: TimeFormat },
    #[error("end is before start")]
    EndBeforeStart,
    #[error("record is outside the billing period {period}")]
    OutsidePeriod { period: String },
    #[error("unknown region")]
    UnknownRegion,
    #[error("product is not sold in this region")]
    NotInRegion,
    #[error("unknown account")]
    UnknownAccount,
    /// The record's account is a reseller's customer, and the reseller hides the product.
    #[error("reseller `{reseller}` does not sell this product to its customers")]
    NotSoldByReseller { reseller: String },
    /// The batch was sent for one account and holds another's record.
    #[error("the batch was sent for account `{account}` only")]
    OtherAccount { account: String },
    /// The record's id was counted before with other content: one id meaning two usages is a
    /// broken exporter, so the batch is refused rather than either copy guessed right.
    #[error("record id was already counted with different content ({first})")]
    RecordIdReused { first: String },
    /// A text field longer than [`crate::usage::TEXT_BYTES_MAX`] bytes, or more tags than
    /// [`crate::usage::TAGS_PER_RECORD_MAX`]: an exporter's bug, refused before it can reach
    /// a storage key or item.
    #[error("{len} {what}, more than the {max} allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Adding the record to the batch's total of the same usage would overflow a decimal.
    #[error("the batch's total of this usage would not fit in a decimal with this quantity added")]
    TotalOverflow,
    /// The batch's usage of one product's meter, for one account period, adds up to more than
    /// one batch may bring (so that no period's line can ever be too large to price).
    #[error("{0}")]
    LineQuantityTooLarge(Box<LineQuantity>),
    /// The item is not the JSON object the format holds (`expected`); `message` is serde's.
    #[error("not a {expected}: {message}")]
    NotARecord {
        expected: &'static str,
        message: String,
    },
    // Canonical CSV rows.
    #[error("unterminated quoted field (a field may not span lines)")]
    UnterminatedQuote,
    #[error("text after a closing quote")]
    TextAfterQuote,
    #[error("a quote inside an unquoted field (quote the whole field and double the quote)")]
    QuoteInUnquotedField,
    #[error("the row has {fields} fields, the header has {header}")]
    FieldCount { fields: usize, header: usize },
    #[error("not valid UTF-8")]
    NotUtf8,
    // CloudStack records.
    #[error("unknown CloudStack usage type (this mapping knows {known})")]
    UnknownUsageType { known: String },
    /// The same usage record twice in one document: a page fetched twice.
    #[error("duplicate of record {first} (same usage type, usage id, offering and start date)")]
    DuplicateRecord { first: usize },
    #[error("ALLOCATED_VM hours ({allocated}) are fewer than the RUNNING_VM hours ({running}) of the same VM, offering and period")]
    AllocatedBelowRunning {
        allocated: Decimal,
        running: Decimal,
    },
    #[error("expected a list of {{\"key\", \"value\"}} tags or strings: {message}")]
    BadTags { message: String },
    // Ceilometer samples.
    #[error("unknown Ceilometer counter (rated counters: {known})")]
    UnknownCounter { known: &'static str },
    #[error("counter `{counter}` must be {expected}")]
    WrongCounterType {
        counter: String,
        expected: &'static str,
    },
    #[error("unit not understood for counter `{counter}`")]
    UnknownCounterUnit { counter: String },
    #[error("an `instance` sample needs the flavor (`flavor.name` or `instance_type`)")]
    MissingFlavor,
    #[error("a `volume.size` sample needs `volume_type`")]
    MissingVolumeType,
}

/// The time formats the importers read, named in [`RecordRule::NotATime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// Canonical CSV and JSON Lines: RFC 3339 only.
    Rfc3339,
    /// CloudStack's `'T'`, ISO 8601 and `yyyy-MM-dd HH:mm:ss` spellings.
    CloudStack,
    /// Ceilometer's offset-less ISO 8601.
    Ceilometer,
}

impl TimeFormat {
    /// Why a text was refused, with an example of what is expected.
    pub fn refusal(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "not an RFC 3339 instant in years 0001-9999 (expected e.g. 2017-02-14T00:00:00Z)",
            TimeFormat::CloudStack => "not a date in years 0001-9999 (expected 2018-09-19'T'03:00:00+00:00, 2018-09-19T03:00:00Z or 2018-09-19 03:00:00)",
            TimeFormat::Ceilometer => "not a date in years 0001-9999 (expected e.g. 2026-11-01T00:00:00)",
        }
    }
}

/// What [`RecordRule::LineQuantityTooLarge`] names (boxed: the rule enum stays small on the
/// rating path).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the batch's usage of {product}/{meter} for this account and period adds up to {total} {unit}, more than one batch may bring ({max} {unit})")]
pub struct LineQuantity {
    pub product: String,
    pub meter: String,
    pub total: Decimal,
    pub max: Decimal,
    pub unit: &'static str,
}

/// One bad record: where it is, which field, what value, and the rule it broke. Values and
/// ids are shown cut to [`SHOWN_VALUE_CHARS_MAX`] characters: a refused megabyte must not
/// come back in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("record {index}{}: field `{field}` = `{}`: {rule}", .record_id.as_deref().map(|id| format!(" ({})", shown(id))).unwrap_or_default(), shown(.value))]
pub struct RecordError {
    /// Position of the record in its batch (0-based) or line number, as the importer reports it.
    pub index: usize,
    pub record_id: Option<String>,
    pub field: &'static str,
    pub value: String,
    pub rule: RecordRule,
}

/// Most characters of a bad value (or record id) an error shows; the rest is summarized.
pub const SHOWN_VALUE_CHARS_MAX: usize = 120;

/// `text` as an error shows it: whole when short, else its first
/// [`SHOWN_VALUE_CHARS_MAX`] characters and its length.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_VALUE_CHARS_MAX) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}... ({} bytes)", &text[..cut], text.len()))
        }
    }
}

/// Most record errors one rejection lists; the rest are counted. A batch of a million bad rows
/// must not produce a million-line error message.
pub const RECORD_ERRORS_SHOWN_MAX: usize = 50;

/// A batch refused as a whole: the first [`RECORD_ERRORS_SHOWN_MAX`] errors and the total count.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct BatchErrors {
    pub errors: Vec<RecordError>,
    pub total: usize,
}

impl BatchErrors {
    pub fn new() -> BatchErrors {
        BatchErrors {
            errors: Vec::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, e: RecordError) {
        self.total += 1;
        if self.errors.len() < RECORD_ERRORS_SHOWN_MAX {
            self.errors.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Default for BatchErrors {
    fn default() -> Self {
        BatchErrors::new()
    }
}

impl fmt::Display for BatchErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch rejected: {} bad record(s), nothing was rated",
            self.total
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        if self.total > self.errors.len() {
            write!(f, "\n  ... and {} more", self.total - self.errors.len())?;
        }
        Ok(())
    }
}

/// Something a priced line or subscription names that the catalog lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogItem {
    Product,
    Meter,
    Price,
}

impl fmt::Display for CatalogItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatalogItem::Product => "product",
            CatalogItem::Meter => "meter",
            CatalogItem::Price => "price",
        })
    }
}

/// Why an invoice, an estimate or a published catalog could not be made. Errors about a quote
/// carry a [`QuotePath`] (or the [`Setting`]) so that the storefront shows each beside its
/// field by matching on the variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PricingError {
    /// A report that cannot be made as asked (`report::ReportQuery`, `report::ReportBuilder`).
    #[error(transparent)]
    Report(ReportError),
    /// A quote or an account names a region, SLA tier, tax jurisdiction or term the catalog
    /// does not offer. (An unknown currency is a [`MoneyError`].)
    #[error("{} `{id}` is not in the catalog ({owner}.{})", .setting.what(), .setting.field())]
    UnknownSetting {
        setting: Setting,
        id: String,
        owner: SettingsOwner,
    },
    /// A quote component names a product that is neither an id nor an alias in the catalog.
    #[error("product `{id}` is not in the catalog ({path})")]
    UnknownProduct { id: String, path: QuotePath },
    /// Usage or a subscription names something the catalog lacks: it was rated or written
    /// against another catalog.
    #[error("{what} `{id}` is not in the catalog (catalog)")]
    NotInCatalog { what: CatalogItem, id: String },
    #[error("reseller `{id}` is not in the catalog (catalog.resellers)")]
    UnknownReseller { id: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("quote.tiers: {components} components, more than the limit of {max}")]
    TooManyComponents { components: usize, max: usize },
    /// The quote's region is a datacenter whose usage is not billed (`Region::billed`): nothing
    /// can be bought there.
    #[error("region `{region}` is not billed: nothing is sold there (quote.region)")]
    RegionNotBilled { region: String },
    /// A quote's coupon: not in the catalog, or not redeemable at the quote's instant.
    #[error("coupon `{code}` {reason} (quote.coupon)")]
    Coupon { code: String, reason: String },
    /// The same rule rating applies: a product the quote's region does not sell.
    #[error("{path}: product `{product}` is not sold in region `{region}`")]
    NotSoldInRegion {
        product: String,
        region: String,
        path: QuotePath,
    },
    /// The product has no charge for what the component needs (`running`, a meter id).
    #[error("{path}: product `{product}` has no price for {needed}")]
    NoPrice {
        product: String,
        needed: String,
        path: QuotePath,
    },
    #[error("{path}: quantities cannot be negative")]
    NegativeQuantity { path: QuotePath },
    #[error("{path}: meter `{meter}` is measured in {}, not {}", .expected.label(), .unit.label())]
    UnitMismatch {
        meter: String,
        unit: Unit,
        expected: Unit,
        path: QuotePath,
    },
    /// A service component names a product without subscription fees.
    #[error("{path}: product `{product}` is not a service or package")]
    NotAService { product: String, path: QuotePath },
    /// An account's subscription is to a product without subscription fees.
    #[error(
        "subscriptions[{subscription}].product: product `{product}` is not a service or package"
    )]
    SubscriptionNotAService {
        subscription: String,
        product: String,
    },
    /// Rated usage whose unit does not convert to its meter's (it was rated against another
    /// catalog).
    #[error("usage[{product}/{meter}]: unit {} does not convert to {}", .unit.label(), .expected.label())]
    UsageUnitMismatch {
        product: String,
        meter: String,
        unit: Unit,
        expected: Unit,
    },
    #[error("invoice would have {lines} lines, more than the limit of {max}")]
    TooManyLines { lines: usize, max: usize },
    /// A computation whose result does not fit in a decimal (about 7.9 x 10^28): named for what
    /// was computed (`what`) and where (`at`: a line, the account, the quote). Validated inputs
    /// never get here; it is the answer to input that skipped validation.
    #[error("{what} of {at} does not fit in a decimal (above 7.9 x 10^28)")]
    Overflow { what: &'static str, at: String },
    /// A quote quantity above the largest quantity one line may hold.
    #[error("{path}: {quantity} is more than one line may hold ({max} in the meter's unit)")]
    QuantityTooLarge {
        quantity: Decimal,
        max: Decimal,
        path: QuotePath,
    },
    /// The statement given to `invoice::invoice_with` breaks a rule (what the caller passes
    /// instead of the accounts book: an instant outside the period, a payment of another
    /// period, an adjustment that cannot be billed here).
    #[error("statement of account {account}: {rule}")]
    Statement {
        account: String,
        rule: StatementRule,
    },
    /// A credit or debit note cannot be computed between these invoices (`note::note`).
    #[error("note against invoice {invoice}: {rule}")]
    Correction {
        invoice: String,
        rule: CorrectionRule,
    },
    /// An invoice or note given as input shows a total that is not the sum of its parts: it
    /// was not made by this engine, or was changed since. Nothing is computed from it.
    #[error("{what} {id}: {error}")]
    BrokenTotals {
        what: &'static str,
        id: String,
        error: TotalsError,
    },
}

/// Why a statement (`invoice::Statement`) cannot price an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatementRule {
    /// An interim invoice "to date" runs from the period's start to an instant inside it.
    #[error("as_of {as_of} is outside the period {period}")]
    AsOfOutsidePeriod {
        as_of: chrono::DateTime<chrono::Utc>,
        period: String,
    },
    /// Payments are the period's: the caller filters them, and one of another period would be
    /// counted twice.
    #[error("payment of {date} ({reference}) is outside the period {period}")]
    PaymentOutsidePeriod {
        date: chrono::DateTime<chrono::Utc>,
        reference: String,
        period: String,
    },
    /// An adjustment is the difference of one of this account's earlier, closed periods.
    #[error("adjustment of account {other} cannot be billed to this account")]
    AdjustmentOfAnotherAccount { other: String },
    #[error("adjustment of period {adjusted} is not before the period {period}")]
    AdjustmentNotEarlier { adjusted: String, period: String },
    #[error("adjustment of period {adjusted} is in {currency}, this invoice in {expected}")]
    AdjustmentCurrency {
        adjusted: String,
        currency: String,
        expected: String,
    },
    /// An adjustment line's amount has more digits than the currency's minor units: it was
    /// not computed by this engine.
    #[error("adjustment line `{description}` of period {adjusted} is not in minor units")]
    AdjustmentNotInMinorUnits {
        adjusted: String,
        description: String,
    },
    /// A resold customer's wholesale line (a reseller's statement) not at its net in the
    /// currency's minor units: not priced by `wholesale::resold`.
    #[error(
        "wholesale line `{description}` of customer {customer} is not a net amount in minor units"
    )]
    ResoldNotNet {
        customer: String,
        description: String,
    },
}

/// A report parameter that cannot be used (`report::ReportQuery`), with the parameter's name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ReportError {
    pub field: &'static str,
    pub message: String,
}

/// Why a credit or debit note cannot be computed (`note::note`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CorrectionRule {
    /// Only a numbered final invoice is corrected by notes; an interim one is recomputed.
    #[error("it is not a numbered final invoice")]
    NotFinal,
    #[error("the corrected invoice is of account {other}")]
    OtherAccount { other: String },
    #[error("the corrected invoice is of period {other}")]
    OtherPeriod { other: String },
    /// A closed period is corrected by its whole invoice, never by one "to date".
    #[error("the corrected invoice is an interim invoice to date")]
    CorrectedToDate,
    /// A correction keeps the invoice's currency (a change of currency is a new invoice).
    #[error("the corrected invoice is in {other}, not {currency}")]
    OtherCurrency { other: String, currency: String },
    /// An earlier note given is not one of this invoice's: it names another invoice, account,
    /// period or currency (`differs`). `note` is its number (empty when unnumbered).
    #[error("earlier note `{note}` is of another {differs}")]
    NoteOfAnotherInvoice { note: String, differs: NoteField },
}

/// What of a note names something other than the invoice it is given with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteField {
    Invoice,
    Account,
    Period,
    Currency,
}

impl fmt::Display for NoteField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoteField::Invoice => "invoice",
            NoteField::Account => "account",
            NoteField::Period => "period",
            NoteField::Currency => "currency",
        })
    }
}

impl PricingError {
    /// The overflow of `what` at `at`, from a checked operation.
    pub fn overflow(e: crate::exact::Overflow, at: impl Into<String>) -> PricingError {
        PricingError::Overflow {
            what: e.what,
            at: at.into(),
        }
    }
}

/// A shown total that is not the sum of the amounts shown under it: a broken money rule (see
/// ARCHITECTURE.md). Found by `Bill::check_totals` and `Invoice::check_totals`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TotalsError {
    #[error("section {section} shows {shown} but its lines add up to {sum}")]
    Section {
        section: String,
        shown: Decimal,
        sum: Decimal,
    },
    #[error("subtotal {shown} != sum of sections {sum}")]
    Subtotal { shown: Decimal, sum: Decimal },
    #[error("net {net} != subtotal {subtotal} + adjustments {adjustments}")]
    Net {
        net: Decimal,
        subtotal: Decimal,
        adjustments: Decimal,
    },
    #[error("adjustments spread on lines {spread} != adjustments shown {shown}")]
    Spread { spread: Decimal, shown: Decimal },
    #[error("total {total} != net {net} + tax {tax}")]
    Total {
        total: Decimal,
        net: Decimal,
        tax: Decimal,
    },
    #[error("line taxes {line_tax} != tax lines {tax}")]
    LineTax { line_tax: Decimal, tax: Decimal },
    #[error("block {block} shows {shown} but its lines (or the blocks, the invoice's lines) add up to {sum}")]
    Block {
        block: String,
        shown: Decimal,
        sum: Decimal,
    },
    #[error("amount due != total - credits applied")]
    AmountDue,
    #[error("payments total != sum of payments")]
    PaymentsTotal,
    #[error("carried forward != brought forward - payments + amount due")]
    CarriedForward,
    /// Prepaid credit remaining must be the credit available less the credit applied, never
    /// negative, and shown together with the credit available.
    #[error(
        "prepaid remaining != prepaid available - credits applied (or negative, or shown alone)"
    )]
    PrepaidRemaining,
    /// An issued invoice shows its issue date and its due date, the due date not before it.
    #[error("due date missing, alone or before the issue date")]
    DueDate,
    /// A line billed for an earlier period already carries that period's discounts: none of
    /// this invoice's may be spread onto it.
    #[error("adjustment line `{description}` carries this invoice's discounts or credits")]
    AdjustmentDiscounted { description: String },
    /// A note's net is the sum of its section totals.
    #[error("note net {shown} != sum of sections {sum}")]
    NoteNet { shown: Decimal, sum: Decimal },
    /// Adding up the shown amounts does not fit in a decimal: they were not made by this
    /// engine (a check never panics on what it is given).
    #[error("the shown amounts do not add up inside a decimal ({what})")]
    Overflow { what: &'static str },
    /// A note is a credit note exactly when its total is negative.
    #[error("a note of total {total} is not a {kind} note")]
    NoteKind { kind: &'static str, total: Decimal },
}
