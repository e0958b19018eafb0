//! Usage and cost reports: each invoice line spread over the usage behind it (its resources' days and projects), then grouped and summed, so that a report of an account's period adds up to that invoice's net to the cent.
//!
//! A report is a view of invoices, not a second pricing: tiers, allowances, minimums and
//! discounts are the invoice's, priced once for the account's whole period. Each line's net
//! (its amount plus the share of discounts and credits spread onto it) is split over the usage
//! shares behind it (one resource on one day) in proportion to their quantities, rounded at
//! the currency's minor unit with the largest remainder, so that a line's parts add up to it
//! exactly ([`crate::allocate`]). Lines with no usage behind them (subscriptions, the SLA
//! uplift, a reseller's customers on its statement, adjustments of earlier periods) are one
//! part dated the period's first day. Grouping then only adds parts: a report of one account
//! over one whole period adds up to the invoice's `net`.
//!
//! Quantities are summed in the meter's unit; a row that mixes meters (a project's vCPU-hours
//! and its GiB-months) has an amount but no quantity.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::bill::{usage_groups, ADJUSTMENTS_SECTION};
use crate::catalog::{cost_code_of, Catalog, Category};
pub use crate::error::ReportError;
use crate::error::{shown, PricingError};
use crate::exact::{self, Overflow};
use crate::invoice::{Account, Invoice};
use crate::settings::Settings;
use crate::usage::Usage;
use crate::wholesale::{paired, Resold};

/// Longest range a report covers: 13 calendar months (a year compared with the month before
/// it). Longer ranges are refused rather than read for minutes.
pub const REPORT_MONTHS_MAX: u32 = 13;

/// Most rows one grouping of a report may have: under a spreadsheet's 1,048,576 rows a sheet,
/// and a bound on what one request holds in memory. A report past it is refused with what to
/// narrow.
pub const REPORT_ROWS_MAX: usize = 1_000_000;

/// Years a report's range may lie in.
pub const REPORT_YEAR_MIN: i32 = 2000;
pub const REPORT_YEAR_MAX: i32 = 2199;

/// Most billing periods of one account a report reads: a year of daily periods, with room
/// (13 months of an hourly account would be 9,500 invoices).
pub const REPORT_PERIODS_MAX: usize = 400;

/// What a report groups by (and filters on). Written as its [`Dimension::name`] (`cost_code`,
/// `tag:env`) in queries, files and JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Account,
    /// The account's domain (a CloudStack domain, a customer organisation): `Account::domain`.
    Domain,
    Project,
    /// A resource: a VM, volume, IP address, a subscription.
    Resource,
    Product,
    Meter,
    Category,
    Region,
    /// The usage's cost code ([`crate::catalog::cost_code_of`]), empty when it has none.
    CostCode,
    /// The value of the usage's tag with this key (`tag:env` groups by the `env:...` tag's
    /// value), empty when the usage has no such tag (or the tag no value). Tags are the
    /// records' (`UsageKey::tags`); charges without usage behind them have none.
    Tag(String),
}

impl Serialize for Dimension {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Dimension {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dimension, D::Error> {
        let text = String::deserialize(d)?;
        Dimension::parse("dimension", &text).map_err(serde::de::Error::custom)
    }
}

impl Dimension {
    pub const ALL: [Dimension; 9] = [
        Dimension::Account,
        Dimension::Domain,
        Dimension::Project,
        Dimension::Resource,
        Dimension::Product,
        Dimension::Meter,
        Dimension::Category,
        Dimension::Region,
        Dimension::CostCode,
    ];

    /// The name used in queries, files and column headers (`cost_code`, `tag:env`).
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(match self {
            Dimension::Account => "account",
            Dimension::Domain => "domain",
            Dimension::Project => "project",
            Dimension::Resource => "resource",
            Dimension::Product => "product",
            Dimension::Meter => "meter",
            Dimension::Category => "category",
            Dimension::Region => "region",
            Dimension::CostCode => "cost_code",
            Dimension::Tag(key) => return std::borrow::Cow::Owned(format!("{TAG_PREFIX}{key}")),
        })
    }

    /// The dimension named `text` (`cost-code` and `cost_code` alike; `tag:KEY` for a tag,
    /// its key as written), or an error naming `field` and listing the dimensions there are.
    ///
    /// # Errors
    /// [`ReportError`] for a name that is no dimension.
    pub fn parse(field: &'static str, text: &str) -> Result<Dimension, ReportError> {
        let trimmed = text.trim();
        if let Some(key) = trimmed
            .get(..TAG_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(TAG_PREFIX))
            .map(|_| trimmed[TAG_PREFIX.len()..].trim())
        {
            if key.is_empty() || key.contains(',') || key.len() > crate::usage::TEXT_BYTES_MAX {
                return Err(ReportError {
                    field,
                    message: format!(
                        "`{}` names no tag key: write tag:KEY (tag:env groups by the env tag's values)",
                        shown(text)
                    ),
                });
            }
            return Ok(Dimension::Tag(key.to_string()));
        }
        let t = trimmed.to_ascii_lowercase().replace('-', "_");
        Dimension::ALL
            .into_iter()
            .find(|d| d.name() == t.as_str())
            .ok_or_else(|| ReportError {
                field,
                message: format!(
                    "`{}` is not a grouping: one of {}, or tag:KEY",
                    shown(text),
                    Dimension::ALL.map(|d| d.name().into_owned()).join(", ")
                ),
            })
    }
}

/// How a tag dimension is named: `tag:` and the tag's key.
pub const TAG_PREFIX: &str = "tag:";

/// The value of the tag with `key` among `tags` (`env:prod` has key `env`, value `prod`; a tag
/// without `:` is a key with an empty value); empty when there is no such tag.
pub fn tag_value<'t>(tags: &'t [String], key: &str) -> &'t str {
    tags.iter()
        .find_map(|t| match t.strip_prefix(key) {
            Some("") => Some(""),
            Some(rest) => rest.strip_prefix(':'),
            None => None,
        })
        .unwrap_or("")
}

/// The time buckets of a report's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Day,
    /// ISO weeks, Monday to Sunday, each dated its Monday.
    Week,
    /// Calendar months, each dated its first day.
    Month,
}

impl Granularity {
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// # Errors
    /// [`ReportError`] naming `by` for anything but `day`, `week` or `month`.
    pub fn parse(text: &str) -> Result<Granularity, ReportError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            "month" => Ok(Granularity::Month),
            _ => Err(ReportError {
                field: "by",
                message: format!("`{}` is not day, week or month", shown(text)),
            }),
        }
    }

    /// The first day of the bucket holding `day`.
    pub fn bucket(self, day: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => day,
            Granularity::Week => {
                day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))
            }
            Granularity::Month => day.with_day(1).unwrap_or(day),
        }
    }
}

/// Keep only the parts whose `dimension` is one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub dimension: Dimension,
    pub values: Vec<String>,
}

/// What a report covers and how it groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    /// First day covered.
    pub from: NaiveDate,
    /// Last day covered (inclusive).
    pub to: NaiveDate,
    pub group_by: Vec<Dimension>,
    pub by: Granularity,
    pub filters: Vec<Filter>,
}

impl ReportQuery {
    /// A query from its text parameters: `from` and `to` as dates (`2017-02-01`) or `to` as a
    /// month (`2017-02`, its last day) and `from` as a month (its first day); `group_by` a
    /// comma-separated list of dimensions (none: one row per bucket); `by` day, week or month;
    /// `filters` (dimension, comma-separated values) pairs.
    ///
    /// # Errors
    /// [`ReportError`] naming the parameter: a date that is none, a range that ends before it
    /// starts or spans more than [`REPORT_MONTHS_MAX`] months, an unknown dimension, a
    /// dimension grouped twice, an empty filter.
    pub fn parse(
        from: &str,
        to: &str,
        group_by: &str,
        by: &str,
        filters: &[(&str, &str)],
    ) -> Result<ReportQuery, ReportError> {
        let from = day_of("from", from, false)?;
        let to = day_of("to", to, true)?;
        let mut dims = Vec::new();
        for name in group_by.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let d = Dimension::parse("group_by", name)?;
            if dims.contains(&d) {
                return Err(ReportError {
                    field: "group_by",
                    message: format!("`{}` is grouped by twice", d.name()),
                });
            }
            dims.push(d);
        }
        let mut fs = Vec::new();
        for (name, values) in filters {
            let dimension = Dimension::parse("filter", name)?;
            let values: Vec<String> = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            if values.is_empty() {
                return Err(ReportError {
                    field: "filter",
                    message: format!("`{}` filters on no value", dimension.name()),
                });
            }
            // The same dimension twice keeps either's values (`--filter project=a
            // --filter project=b` is `project=a,b`).
            match fs
                .iter_mut()
                .find(|f: &&mut Filter| f.dimension == dimension)
            {
                Some(f) => f.values.extend(values),
                None => fs.push(Filter { dimension, values }),
            }
        }
        let q = ReportQuery {
            from,
            to,
            group_by: dims,
            by: Granularity::parse(by)?,
            filters: fs,
        };
        q.check()?;
        Ok(q)
    }

    /// The range rules: `from` ≤ `to`, and at most [`REPORT_MONTHS_MAX`] months.
    ///
    /// # Errors
    /// [`ReportError`] naming `to`.
    pub fn check(&self) -> Result<(), ReportError> {
        if self.to < self.from {
            return Err(ReportError {
                field: "to",
                message: format!("{} is before `from` {}", self.to, self.from),
            });
        }
        let limit = self.from.checked_add_months(Months::new(REPORT_MONTHS_MAX));
        if limit.is_none_or(|l| self.to >= l) {
            return Err(ReportError {
                field: "to",
                message: format!(
                    "{} to {} is longer than {REPORT_MONTHS_MAX} months: report a shorter range",
                    self.from, self.to
                ),
            });
        }
        Ok(())
    }

    /// Whether a report of this query reads `day` at all.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// Whether an account passes the account and domain filters (so that the caller need not
    /// read the periods of accounts the report would drop).
    pub fn wants_account(&self, account: &Account) -> bool {
        self.filters.iter().all(|f| match &f.dimension {
            Dimension::Account => f.values.contains(&account.id),
            Dimension::Domain => f
                .values
                .iter()
                .any(|v| Some(v.as_str()) == account.domain.as_deref()),
            _ => true,
        })
    }
}

/// `2017-02-01`, or a month `2017-02` (its first day, or its last when `last`), within the
/// years [`REPORT_YEAR_MIN`] to [`REPORT_YEAR_MAX`].
///
/// # Errors
/// [`ReportError`] naming `field`.
pub fn day_of(field: &'static str, text: &str, last: bool) -> Result<NaiveDate, ReportError> {
    let d = parse_day(field, text, last)?;
    // Reports read stored periods: a year outside these is a typo, and far dates would only
    // price empty interim periods (or reach the calendar's ends).
    if !(REPORT_YEAR_MIN..=REPORT_YEAR_MAX).contains(&d.year()) {
        return Err(ReportError {
            field,
            message: format!(
                "{d} is outside the years {REPORT_YEAR_MIN} to {REPORT_YEAR_MAX} a report covers"
            ),
        });
    }
    Ok(d)
}

fn parse_day(field: &'static str, text: &str, last: bool) -> Result<NaiveDate, ReportError> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d);
    }
    let first =
        NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d").map_err(|_| ReportError {
            field,
            message: format!(
                "`{}` is not a date (2017-02-01) or a month (2017-02)",
                shown(text)
            ),
        })?;
    if !last {
        return Ok(first);
    }
    first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .ok_or_else(|| ReportError {
            field,
            message: format!("`{}` is out of range", shown(text)),
        })
}

/// One part of an invoice line: the finest grain a report groups (borrowed, so that spreading
/// a month of a large account allocates nothing per resource-day).
#[derive(Debug, Clone, PartialEq)]
pub struct Part<'a> {
    pub account: &'a str,
    pub domain: &'a str,
    pub project: &'a str,
    pub resource: &'a str,
    pub product: &'a str,
    pub meter: &'a str,
    pub category: Category,
    pub region: &'a str,
    pub cost_code: &'a str,
    /// The usage's tags (none for a line without usage behind it).
    pub tags: &'a [String],
    pub day: NaiveDate,
    /// The meter's unit (the line's, for a line without usage behind it).
    pub unit: &'a str,
    pub quantity: Decimal,
    pub currency: &'a str,
    /// The part of the line's net.
    pub amount: Decimal,
    /// The part of the wholesale cost of the line, for a reseller's customer.
    pub wholesale: Option<Decimal>,
}

impl Part<'_> {
    fn key(&self, d: &Dimension) -> &str {
        match d {
            Dimension::Account => self.account,
            Dimension::Domain => self.domain,
            Dimension::Project => self.project,
            Dimension::Resource => self.resource,
            Dimension::Product => self.product,
            Dimension::Meter => self.meter,
            Dimension::Category => category_name(self.category),
            Dimension::Region => self.region,
            Dimension::CostCode => self.cost_code,
            Dimension::Tag(key) => tag_value(self.tags, key),
        }
    }
}

/// A category as written in catalogs (`network_service`).
pub fn category_name(c: Category) -> &'static str {
    match c {
        Category::Compute => "compute",
        Category::Cpu => "cpu",
        Category::Memory => "memory",
        Category::Storage => "storage",
        Category::Snapshot => "snapshot",
        Category::Image => "image",
        Category::Network => "network",
        Category::Ip => "ip",
        Category::NetworkService => "network_service",
        Category::Service => "service",
        Category::Package => "package",
        Category::Support => "support",
        Category::Other => "other",
    }
}

/// Spreads `invoice` (the account's invoice of a period, final or interim, priced with
/// `catalog`) over `usage` (that period's usage of the account) and hands each part to `each`.
/// `wholesale`: a reseller's customer's lines on its reseller's statement, whose amounts are
/// spread the same way (and a wholesale line without a retail twin is a part of its own).
///
/// The parts of a line add up to its net, so all parts add up to `invoice.bill.net`.
///
/// # Errors
/// [`PricingError`] when the usage names a meter the catalog does not have, or a sum
/// overflows.
pub fn spread<'a>(
    catalog: &Catalog,
    account: &'a Account,
    invoice: &'a Invoice,
    usage: &'a Usage,
    wholesale: Option<&'a Resold>,
    mut each: impl FnMut(Part<'_>),
) -> Result<(), PricingError> {
    let at = |e: Overflow| PricingError::overflow(e, format!("report of account {}", account.id));
    let settings = Settings::resolve(
        catalog,
        &account.settings_input(),
        &crate::path::SettingsOwner::Account(account.id.clone()),
    )?;
    let mut groups = usage_groups(catalog, usage, &account.id, settings.default_region())?;
    let scale = crate::money::minor_units(&invoice.bill.currency).unwrap_or(2);
    let (costs, unpaired) = match wholesale {
        Some(r) => {
            let (c, u) = paired(invoice, r);
            (Some(c), u)
        }
        None => (None, Vec::new()),
    };
    let domain = account.domain.as_deref().unwrap_or_default();
    let first_day = invoice.period.start.date_naive();
    let currency = invoice.bill.currency.as_str();
    let mut i = 0usize;
    for section in &invoice.bill.sections {
        for line in &section.lines {
            let cost = costs.as_ref().map(|c| {
                c.get(i)
                    .copied()
                    .flatten()
                    .map_or(Decimal::ZERO, |l| l.amount)
            });
            i += 1;
            let net = exact::add(line.amount, line.adjustments, "line net").map_err(at)?;
            let meter = line.meter.as_deref().unwrap_or_default();
            // A reseller's statement bills its customers' usage, not its own: those lines are
            // whole parts, never spread over the reseller's own usage.
            let resold = account.resells.is_some()
                && section
                    .name
                    .starts_with(crate::resold::RESOLD_SECTION_PREFIX);
            let shares = if section.name == ADJUSTMENTS_SECTION || meter.is_empty() || resold {
                None
            } else {
                groups.remove(&(line.product.as_str(), meter, line.region.as_str()))
            };
            let whole = Part {
                account: &account.id,
                domain,
                project: "",
                resource: "",
                product: &line.product,
                meter,
                category: line.category,
                region: &line.region,
                cost_code: cost_code_of(
                    &account.cost_codes,
                    &catalog.cost_codes,
                    "",
                    "",
                    &line.product,
                )
                .map_or("", |c| c.code.as_str()),
                tags: &[],
                day: first_day,
                unit: &line.unit,
                quantity: line.quantity,
                currency,
                amount: net,
                wholesale: cost,
            };
            let Some(shares) = shares.filter(|s| !s.is_empty()) else {
                each(whole);
                continue;
            };
            let weights: Vec<Decimal> = shares.iter().map(|s| s.quantity).collect();
            let amounts = allocate(net, &weights, scale);
            let costs = cost.map(|c| allocate(c, &weights, scale));
            for (k, s) in shares.iter().enumerate() {
                each(Part {
                    project: s.project,
                    resource: s.resource,
                    cost_code: cost_code_of(
                        &account.cost_codes,
                        &catalog.cost_codes,
                        s.resource,
                        s.project,
                        &line.product,
                    )
                    .map_or("", |c| c.code.as_str()),
                    tags: s.tags,
                    day: s.day,
                    quantity: s.quantity,
                    amount: amounts[k],
                    wholesale: costs.as_ref().map(|c| c[k]),
                    ..whole.clone()
                });
            }
        }
    }
    for l in unpaired {
        each(Part {
            account: &account.id,
            domain,
            project: "",
            resource: "",
            product: &l.product,
            meter: l.meter.as_deref().unwrap_or_default(),
            category: l.category,
            region: &l.region,
            cost_code: "",
            tags: &[],
            day: first_day,
            unit: &l.unit,
            quantity: l.quantity,
            currency,
            amount: Decimal::ZERO,
            wholesale: Some(l.amount),
        });
    }
    Ok(())
}

/// One row of a report: a bucket, a currency and the grouping's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The bucket's first day (the range's first day for a bucket that begins before it).
    pub period: NaiveDate,
    pub currency: String,
    /// The values of the grouping's dimensions, in its order (empty: the part has none, such
    /// as usage without a project).
    pub keys: Vec<String>,
    /// The meter's unit, when the row holds one meter's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Summed in `unit`; none when the row mixes meters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    pub amount: Decimal,
    /// The wholesale cost, when every part of the row is a reseller's customer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wholesale: Option<Decimal>,
    /// `amount - wholesale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<Decimal>,
}

/// A currency's total over all rows of a grouping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportTotal {
    pub currency: String,
    pub amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wholesale: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<Decimal>,
}

/// The rows of one grouping, with totals per currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grouping {
    pub group_by: Vec<Dimension>,
    pub rows: Vec<ReportRow>,
    pub totals: Vec<ReportTotal>,
}

/// A finished report: the query's grouping, and (when it groups by several dimensions) each
/// dimension alone, the sheets of a workbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Granularity,
    pub filters: Vec<Filter>,
    #[serde(flatten)]
    pub main: Grouping,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_dimension: Vec<Grouping>,
    /// Invoices the report was spread from (final and interim).
    pub invoices: u64,
}

#[derive(Debug, Default)]
struct Acc {
    /// The single meter and unit of the row; `mixed` once a second one joins.
    meter: Option<(String, String)>,
    mixed: bool,
    quantity: Decimal,
    amount: Decimal,
    wholesale: Decimal,
    /// Parts without a wholesale cost (a direct customer's).
    direct: bool,
}

type RowKey = (NaiveDate, String, Vec<String>);

/// `amount - wholesale`, when there is a wholesale cost.
fn margin(amount: Decimal, wholesale: Option<Decimal>) -> Result<Option<Decimal>, Overflow> {
    wholesale
        .map(|w| exact::sub(amount, w, "report margin"))
        .transpose()
}

/// Accumulates parts into a report's groupings.
#[derive(Debug)]
pub struct ReportBuilder {
    query: ReportQuery,
    groupings: Vec<(Vec<Dimension>, BTreeMap<RowKey, Acc>)>,
    invoices: u64,
}

impl ReportBuilder {
    pub fn new(query: ReportQuery) -> ReportBuilder {
        let mut groupings = vec![(query.group_by.clone(), BTreeMap::new())];
        if query.group_by.len() > 1 {
            groupings.extend(
                query
                    .group_by
                    .iter()
                    .map(|d| (vec![d.clone()], BTreeMap::new())),
            );
        }
        ReportBuilder {
            query,
            groupings,
            invoices: 0,
        }
    }

    pub fn query(&self) -> &ReportQuery {
        &self.query
    }

    /// Counts one invoice spread into the report.
    pub fn invoice(&mut self) {
        self.invoices += 1;
    }

    /// Adds one part (dropped when outside the range or the filters).
    ///
    /// # Errors
    /// [`PricingError::Overflow`] for sums too large for a decimal; [`PricingError::Report`]
    /// past [`REPORT_ROWS_MAX`] rows.
    pub fn add(&mut self, p: &Part<'_>) -> Result<(), PricingError> {
        if !self.query.covers(p.day)
            || !self
                .query
                .filters
                .iter()
                .all(|f| f.values.iter().any(|v| v == p.key(&f.dimension)))
        {
            return Ok(());
        }
        let at = |e: Overflow| PricingError::overflow(e, format!("report row of {}", p.account));
        // A bucket that begins before the range (the week of its first day) is dated the
        // range's first day: a row never shows a day the report does not cover.
        let bucket = self.query.by.bucket(p.day).max(self.query.from);
        for (dims, rows) in &mut self.groupings {
            let key = (
                bucket,
                p.currency.to_string(),
                dims.iter().map(|d| p.key(d).to_string()).collect(),
            );
            if rows.len() >= REPORT_ROWS_MAX && !rows.contains_key(&key) {
                return Err(PricingError::Report(ReportError {
                    field: "group_by",
                    message: format!(
                        "more than {REPORT_ROWS_MAX} rows: report a shorter range, a coarser granularity or fewer groupings"
                    ),
                }));
            }
            let acc = rows.entry(key).or_default();
            match &acc.meter {
                None if !acc.mixed => acc.meter = Some((p.meter.to_string(), p.unit.to_string())),
                Some((m, u)) if m != p.meter || u != p.unit => {
                    acc.meter = None;
                    acc.mixed = true;
                }
                _ => {}
            }
            acc.quantity = exact::add(acc.quantity, p.quantity, "report quantity").map_err(at)?;
            acc.amount = exact::add(acc.amount, p.amount, "report amount").map_err(at)?;
            match p.wholesale {
                Some(w) => {
                    acc.wholesale = exact::add(acc.wholesale, w, "report wholesale").map_err(at)?;
                }
                None => acc.direct = true,
            }
        }
        Ok(())
    }

    /// The report, rows in (bucket, currency, keys) order.
    ///
    /// # Errors
    /// [`PricingError::Overflow`] for totals too large for a decimal.
    pub fn finish(self) -> Result<Report, PricingError> {
        let at = |e: Overflow| PricingError::overflow(e, "report totals");
        let mut groupings = Vec::with_capacity(self.groupings.len());
        for (group_by, rows) in self.groupings {
            let mut totals: BTreeMap<String, (Decimal, Decimal, bool)> = BTreeMap::new();
            let mut out = Vec::with_capacity(rows.len());
            for ((period, currency, keys), acc) in rows {
                let t = totals.entry(currency.clone()).or_default();
                t.0 = exact::add(t.0, acc.amount, "report total").map_err(at)?;
                t.1 = exact::add(t.1, acc.wholesale, "report wholesale total").map_err(at)?;
                t.2 |= acc.direct;
                let wholesale = (!acc.direct).then_some(acc.wholesale);
                out.push(ReportRow {
                    period,
                    currency,
                    keys,
                    quantity: acc.meter.as_ref().map(|_| acc.quantity),
                    unit: acc.meter.map(|(_, u)| u),
                    amount: acc.amount,
                    margin: margin(acc.amount, wholesale).map_err(at)?,
                    wholesale,
                });
            }
            let mut ts = Vec::with_capacity(totals.len());
            for (currency, (amount, wholesale, direct)) in totals {
                let wholesale = (!direct).then_some(wholesale);
                ts.push(ReportTotal {
                    currency,
                    amount,
                    margin: margin(amount, wholesale).map_err(at)?,
                    wholesale,
                });
            }
            groupings.push(Grouping {
                group_by,
                rows: out,
                totals: ts,
            });
        }
        let mut it = groupings.into_iter();
        let main = it.next().unwrap_or(Grouping {
            group_by: Vec::new(),
            rows: Vec::new(),
            totals: Vec::new(),
        });
        Ok(Report {
            from: self.query.from,
            to: self.query.to,
            by: self.query.by,
            filters: self.query.filters,
            main,
            by_dimension: it.collect(),
            invoices: self.invoices,
        })
    }
}
