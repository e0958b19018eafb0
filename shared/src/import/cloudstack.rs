//! CloudStack `listUsageRecords` importer: usage types mapped to catalog products and meters, stopped hours paired from ALLOCATED_VM and RUNNING_VM.
//!
//! See the module documentation of [`crate::import`] for the mapping table and the decisions
//! (account, resource, record id, stopped-hour pairing, root volumes).

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::document::{read_document, Items, ItemsSeed};
use super::format::{Format, ImportError};
use super::text::{
    check_quantity, parse_decimal, parse_export_time, raw_number_text, raw_text, record_error,
};
use crate::catalog::Catalog;
use crate::error::{RecordError, RecordRule, TimeFormat};
use crate::mapping::{
    usage_type, AccountField, CloudStackMapping, MeterSelector, ProductSource, QuantityKind,
    UsageTypeRule,
};
use crate::unit::Unit;
use crate::usage::UsageRecord;

/// The fields of a usage record the importer reads; CloudStack's others (`usage`,
/// `description`...) are ignored. Values are kept raw because
/// CloudStack writes ids and amounts as strings or numbers depending on the release.
#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    account: Option<&'a RawValue>,
    #[serde(borrow)]
    accountid: Option<&'a RawValue>,
    #[serde(borrow)]
    domain: Option<&'a RawValue>,
    #[serde(borrow)]
    domainid: Option<&'a RawValue>,
    #[serde(borrow)]
    project: Option<&'a RawValue>,
    #[serde(borrow)]
    projectid: Option<&'a RawValue>,
    #[serde(borrow)]
    zoneid: Option<&'a RawValue>,
    #[serde(borrow)]
    usageid: Option<&'a RawValue>,
    #[serde(borrow)]
    usagetype: Option<&'a RawValue>,
    #[serde(borrow)]
    rawusage: Option<&'a RawValue>,
    #[serde(borrow)]
    offeringid: Option<&'a RawValue>,
    #[serde(borrow)]
    virtualmachineid: Option<&'a RawValue>,
    #[serde(borrow)]
    size: Option<&'a RawValue>,
    #[serde(borrow)]
    cpunumber: Option<&'a RawValue>,
    #[serde(borrow)]
    memory: Option<&'a RawValue>,
    #[serde(borrow)]
    templateid: Option<&'a RawValue>,
    #[serde(borrow)]
    startdate: Option<&'a RawValue>,
    #[serde(borrow)]
    enddate: Option<&'a RawValue>,
    #[serde(borrow)]
    tags: Option<&'a RawValue>,
}

/// A CloudStack resource tag: `{"key": "Billing", "value": "noCPU", ...}` or a plain string.
/// Deserialized by hand: `#[serde(untagged)]` would buffer every tag in serde's `Content` first
/// (see `crate::shape`).
enum RawTag {
    Plain(String),
    Pair { key: String, value: Option<String> },
}

/// The object form of a [`RawTag`]; other fields (`resourceid`, `domainid`...) are ignored.
#[derive(Deserialize)]
struct TagPair {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

impl<'de> Deserialize<'de> for RawTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawTag, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawTag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a {\"key\", \"value\"} object")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTag, E> {
                Ok(RawTag::Plain(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawTag, A::Error> {
                let pair = TagPair::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawTag::Pair {
                    key: pair.key,
                    value: pair.value,
                })
            }
            // The untagged derive also took `["key", "value"]`, as serde reads any struct.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawTag, A::Error> {
                let pair = TagPair::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawTag::Pair {
                    key: pair.key,
                    value: pair.value,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The VM, offering and aggregation period that pair ALLOCATED_VM with RUNNING_VM records.
type VmPeriod = (String, String, DateTime<Utc>, DateTime<Utc>);

enum Parsed {
    Record(UsageRecord),
    /// A RUNNING_VM record with its raw hours (its first rule's record: the pairing counts
    /// each CloudStack record once, whatever its rules bill).
    Running(VmPeriod, Decimal, UsageRecord),
    Allocated(VmPeriod, Decimal, UsageRecord),
}

/// Reads a `listUsageRecords` response (or a bare array of usage records) from `reader` one
/// usage record at a time: each is converted as it is read and handed to `emit` (stopped hours,
/// which need every RUNNING_VM record of their VM, at the end), each bad one to `refuse`.
/// Memory grows with the VMs (running hours by VM period), the ALLOCATED_VM records (held until
/// the end) and the record ids (a record id seen twice is a page fetched twice), not with the
/// document's bytes. A document whose `count` differs from its records, that is an API error
/// response or that holds more than `max_records` records (`CLOUDSTACK_RECORDS_MAX`) is
/// refused at its end (past the limit, records are only counted); the caller has stored nothing yet, since a batch
/// is stored only once its import succeeded. Answers the usage records read and the records
/// left out (stopped hours of zero).
pub(super) fn stream<R: Read>(
    reader: R,
    catalog: &Catalog,
    mapping: &CloudStackMapping,
    max_records: usize,
    emit: &mut dyn FnMut(usize, UsageRecord),
    refuse: &mut dyn FnMut(RecordError),
) -> Result<(u64, u64), ImportError> {
    let mut conv = Converter {
        resolver: Resolver::new(catalog),
        mapping,
        running: HashMap::new(),
        allocated: Vec::new(),
        ids: HashMap::new(),
        items: 0,
        max_records: max_records as u64,
        skipped: 0,
        emit,
        refuse,
    };
    let top = read_document(reader, Format::CloudStack, TopSeed { conv: &mut conv })?;
    if conv.items > conv.max_records {
        return Err(ImportError::TooLarge {
            format: Format::CloudStack,
            what: "records per document",
            max: conv.max_records,
        });
    }
    let shape = |message: String| ImportError::Shape {
        format: Format::CloudStack,
        message,
    };
    if let Some(body) = top {
        let Some(body) = body else {
            return Err(shape(
                "no `listusagerecordsresponse` object at the top level".into(),
            ));
        };
        if body.errorcode.is_some() || body.errortext.is_some() {
            return Err(shape(format!(
                "the export is a CloudStack API error response ({}: {})",
                body.errorcode.as_deref().map_or("?", RawValue::get),
                body.errortext.as_deref().unwrap_or("no error text")
            )));
        }
        if let Some(count) = body.count {
            let count_ok = raw_text(Some(&count))
                .ok()
                .flatten()
                .and_then(|c| c.parse::<u64>().ok())
                == Some(conv.items);
            if !count_ok {
                // `count` is the number of records matching the query; fewer records means this
                // is one page of a paginated answer, and billing it would lose usage.
                return Err(shape(format!(
                    "`count` is {} but the response holds {} usage records: fetch every page (pagesize/page) into one document",
                    count.get(),
                    conv.items
                )));
            }
        }
    }
    conv.stopped_records();
    Ok((conv.items, conv.skipped))
}

/// The state of a CloudStack document read one usage record at a time.
struct Converter<'c, 'f> {
    resolver: Resolver<'c>,
    mapping: &'c CloudStackMapping,
    running: HashMap<VmPeriod, Decimal>,
    allocated: Vec<(usize, VmPeriod, Decimal, UsageRecord)>,
    /// Record id -> the first record (0-based position) that carried it.
    ids: HashMap<Box<str>, usize>,
    /// Usage records read (past `max_records`, only counted).
    items: u64,
    max_records: u64,
    skipped: u64,
    emit: &'f mut dyn FnMut(usize, UsageRecord),
    refuse: &'f mut dyn FnMut(RecordError),
}

impl Converter<'_, '_> {
    /// The next usage record of the document.
    fn item(&mut self, raw: &RawValue) {
        let index = self.items as usize;
        self.items += 1;
        let parsed = match parse_record(index, raw, &self.resolver, self.mapping) {
            Ok(p) => p,
            Err(e) => {
                (self.refuse)(e);
                return;
            }
        };
        for parsed in parsed {
            let record = match &parsed {
                Parsed::Record(r) | Parsed::Running(_, _, r) | Parsed::Allocated(_, _, r) => r,
            };
            if let Some(id) = &record.record_id {
                match self.ids.get(id.as_str()) {
                    // One CloudStack record may make several of ours under one id.
                    Some(&first) if first == index => {}
                    Some(&first) => {
                        // The same record twice is a page fetched twice: billing both
                        // double-charges.
                        let rule = RecordRule::DuplicateRecord { first };
                        (self.refuse)(record_error(index, Some(id), "usageid", id, rule));
                        break;
                    }
                    None => {
                        self.ids.insert(id.as_str().into(), index);
                    }
                }
            }
            match parsed {
                Parsed::Record(r) => (self.emit)(index, r),
                Parsed::Running(key, hours, r) => {
                    *self.running.entry(key).or_default() += hours;
                    (self.emit)(index, r);
                }
                Parsed::Allocated(key, hours, r) => self.allocated.push((index, key, hours, r)),
            }
        }
    }

    /// Stopped hours: each ALLOCATED_VM record less the RUNNING_VM hours of the same VM,
    /// offering and period; no record when the VM ran all the time it was allocated.
    fn stopped_records(&mut self) {
        for (index, key, allocated_hours, mut record) in std::mem::take(&mut self.allocated) {
            let running_hours = self.running.get(&key).copied().unwrap_or_default();
            let stopped = allocated_hours - running_hours;
            if stopped.is_sign_negative() && !stopped.is_zero() {
                (self.refuse)(record_error(
                    index,
                    record.record_id.as_deref(),
                    "rawusage",
                    &allocated_hours.to_string(),
                    RecordRule::AllocatedBelowRunning {
                        allocated: allocated_hours,
                        running: running_hours,
                    },
                ));
                continue;
            }
            if stopped.is_zero() {
                // The VM ran all the time it was allocated: no stopped line, rather than a 0 h
                // line.
                self.skipped += 1;
                continue;
            }
            record.quantity = stopped;
            (self.emit)(index, record);
        }
    }
}

/// The envelope's fields the importer checks once every usage record went by.
struct Tail {
    count: Option<Box<RawValue>>,
    errorcode: Option<Box<RawValue>>,
    errortext: Option<String>,
}

/// The document's top level: a bare array of usage records (`None`), or an object whose
/// `listusagerecordsresponse` is read (`Some(None)` when it has none).
struct TopSeed<'a, 'c, 'f> {
    conv: &'a mut Converter<'c, 'f>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = Option<Option<Tail>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = Option<Option<Tail>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a listUsageRecords response or an array of usage records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ItemsSeed {
            items: self.conv,
            expecting: RECORDS,
        }
        .visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut body = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "listusagerecordsresponse" && body.is_none() {
                body = map.next_value_seed(BodySeed {
                    conv: &mut *self.conv,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(body))
    }
}

/// The `listusagerecordsresponse` object (`None` when it is `null`).
struct BodySeed<'a, 'c, 'f> {
    conv: &'a mut Converter<'c, 'f>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_, '_> {
    type Value = Option<Tail>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_, '_> {
    type Value = Option<Tail>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a listusagerecordsresponse object")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tail = Tail {
            count: None,
            errorcode: None,
            errortext: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "count" => tail.count = map.next_value()?,
                "errorcode" => tail.errorcode = map.next_value()?,
                "errortext" => tail.errortext = map.next_value()?,
                "usagerecord" => {
                    map.next_value_seed(ItemsSeed {
                        items: &mut *self.conv,
                        expecting: RECORDS,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(tail))
    }
}

/// What a CloudStack document's items are; see [`ItemsSeed`].
const RECORDS: &str = "an array of usage records";

impl Items for Converter<'_, '_> {
    fn read(&self) -> u64 {
        self.items
    }
    fn limit(&self) -> u64 {
        self.max_records
    }
    fn take(&mut self, raw: &RawValue) {
        self.item(raw);
    }
    fn count(&mut self) {
        self.items += 1;
    }
}

/// Finds catalog products, meters and regions, remembering answers: an export names the same
/// few offerings thousands of times.
struct Resolver<'c> {
    catalog: &'c Catalog,
    regions: HashMap<&'c str, &'c str>,
}

impl<'c> Resolver<'c> {
    fn new(catalog: &'c Catalog) -> Resolver<'c> {
        let mut regions = HashMap::new();
        for r in &catalog.regions {
            regions.insert(r.id.as_str(), r.id.as_str());
            for a in &r.aliases {
                regions.insert(a.as_str(), r.id.as_str());
            }
        }
        Resolver { catalog, regions }
    }

    fn product(&self, key: &str) -> Option<&'c str> {
        self.catalog.resolve_product(key).map(|p| p.id.as_str())
    }

    fn meter(&self, product: &str, selector: &MeterSelector) -> Option<&'c str> {
        match selector {
            MeterSelector::Role(role) => self
                .catalog
                .meter_for_role(product, *role)
                .map(|m| m.id.as_str()),
            MeterSelector::Id(id) => self
                .catalog
                .product(product)?
                .charges
                .iter()
                .find(|c| c.meter == *id)
                .map(|c| c.meter.as_str()),
        }
    }
}

/// The records of one CloudStack usage record: one per rule of its usage type, the first with
/// the record's id, the next ones with `#<n>` appended (n = the rule's place among its type's).
fn parse_record(
    index: usize,
    raw: &RawValue,
    resolver: &Resolver<'_>,
    mapping: &CloudStackMapping,
) -> Result<Vec<Parsed>, RecordError> {
    let r: RawRecord<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        let rule = RecordRule::NotARecord {
            expected: "usage record object",
            message: e.to_string(),
        };
        record_error(index, None, "$", raw.get(), rule)
    })?;
    let field = |name: &'static str, v: Option<&RawValue>| text_field(index, name, v);
    let rules = usage_type_rules(index, &r, mapping)?;
    let first_rule = rules[0];
    let usage_id = field("usageid", r.usageid)?;
    let vm_id = field("virtualmachineid", r.virtualmachineid)?;
    let offering = field("offeringid", r.offeringid)?;
    let template = field("templateid", r.templateid)?;
    let start_text = field("startdate", r.startdate)?
        .ok_or_else(|| missing(index, "startdate", "the usage start"))?;
    let start = parse_export_time(&start_text)
        .ok_or_else(|| record_error(index, None, "startdate", &start_text, bad_time()))?;
    let base_id = record_id(
        first_rule,
        usage_id.as_deref().or(vm_id.as_deref()),
        start,
        offering.as_deref(),
    );
    let at = At {
        index,
        id: &base_id,
    };
    let end = end_date(&at, &r, start)?;
    let (account, project) = account_and_project(&at, &r, mapping.account)?;
    let is_vm = first_rule.usage_type == usage_type::RUNNING_VM
        || rules
            .iter()
            .any(|rule| rule.quantity == QuantityKind::StoppedHours);
    // VM records are about the VM even when `usageid` says otherwise.
    let resource = if is_vm {
        vm_id.clone().or(usage_id.clone())
    } else {
        usage_id.clone().or(vm_id.clone())
    }
    .ok_or_else(|| at.err("usageid", "", RecordRule::Empty))?;
    let region = region(&at, &r, resolver)?;
    let tags = tags(&at, &r)?;
    let pairing = || {
        (
            resource.clone(),
            offering.clone().unwrap_or_default(),
            start,
            end,
        )
    };
    let mut out = Vec::with_capacity(rules.len());
    for (n, rule) in rules.into_iter().enumerate() {
        let id = if n == 0 {
            base_id.clone()
        } else {
            format!("{base_id}#{n}")
        };
        let at = At { index, id: &id };
        let sources = Sources {
            offering: offering.as_deref(),
            template: template.as_deref(),
        };
        let (product, meter) = product_and_meter(&at, rule, resolver, sources)?;
        let (quantity, unit, raw_usage) = quantity(&at, &r, rule)?;
        let record = UsageRecord {
            record_id: Some(id.clone()),
            account: account.clone(),
            project: project.clone(),
            resource: resource.clone(),
            product: product.to_string(),
            meter: meter.to_string(),
            quantity,
            unit,
            start,
            end,
            tags: tags.clone(),
            region: region.clone(),
        };
        out.push(match rule.quantity {
            QuantityKind::StoppedHours => Parsed::Allocated(pairing(), raw_usage, record),
            _ if n == 0 && rule.usage_type == usage_type::RUNNING_VM => {
                Parsed::Running(pairing(), raw_usage, record)
            }
            _ => Parsed::Record(record),
        });
    }
    Ok(out)
}

/// Where a record's errors point once its id is known.
struct At<'a> {
    index: usize,
    id: &'a str,
}

impl At<'_> {
    fn err(&self, field: &'static str, value: &str, rule: RecordRule) -> RecordError {
        record_error(self.index, Some(self.id), field, value, rule)
    }
}

/// A field as text, empty as none. Its errors name the record by position only.
fn text_field(
    index: usize,
    name: &'static str,
    v: Option<&RawValue>,
) -> Result<Option<String>, RecordError> {
    raw_text(v)
        .map(|s| s.filter(|s| !s.is_empty()))
        .map_err(|rule| record_error(index, None, name, v.map_or("", |v| v.get()), rule))
}

fn missing(index: usize, name: &'static str, why: &str) -> RecordError {
    let rule = RecordRule::MissingField {
        why: Some(why.to_string()),
    };
    record_error(index, None, name, "", rule)
}

/// The mapping's rules for the record's `usagetype`, a number or a name (never empty).
fn usage_type_rules<'m>(
    index: usize,
    r: &RawRecord<'_>,
    mapping: &'m CloudStackMapping,
) -> Result<Vec<&'m UsageTypeRule>, RecordError> {
    let type_text = text_field(index, "usagetype", r.usagetype)?
        .ok_or_else(|| missing(index, "usagetype", "every usage record has a usage type"))?;
    let usage_type = match type_text.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => mapping.rule_named(&type_text).map(|r| r.usage_type),
    };
    let rules = usage_type.map(|t| mapping.rules_for(t)).unwrap_or_default();
    if rules.is_empty() {
        let rule = RecordRule::UnknownUsageType {
            known: mapping.known_types(),
        };
        return Err(record_error(index, None, "usagetype", &type_text, rule));
    }
    Ok(rules)
}

/// Stable id: the same usage re-exported (with `'T'` or plain ISO dates) gets the same id. The
/// offering is part of it because CloudStack splits a period into one record per offering when
/// a VM changes offering mid-period.
fn record_id(
    rule: &UsageTypeRule,
    resource_key: Option<&str>,
    start: DateTime<Utc>,
    offering: Option<&str>,
) -> String {
    format!(
        "cs:{}:{}:{}{}",
        rule.usage_type,
        resource_key.unwrap_or("-"),
        start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        offering.map(|o| format!(":{o}")).unwrap_or_default()
    )
}

fn end_date(
    at: &At<'_>,
    r: &RawRecord<'_>,
    start: DateTime<Utc>,
) -> Result<DateTime<Utc>, RecordError> {
    let end_text = text_field(at.index, "enddate", r.enddate)?.ok_or_else(|| {
        let why = Some("the usage end".into());
        at.err("enddate", "", RecordRule::MissingField { why })
    })?;
    let end =
        parse_export_time(&end_text).ok_or_else(|| at.err("enddate", &end_text, bad_time()))?;
    if end < start {
        return Err(at.err("enddate", &end_text, RecordRule::EndBeforeStart));
    }
    Ok(end)
}

/// The billed account (from the field the mapping names) and the project.
fn account_and_project(
    at: &At<'_>,
    r: &RawRecord<'_>,
    account_field: AccountField,
) -> Result<(String, Option<String>), RecordError> {
    let field = |name: &'static str, v: Option<&RawValue>| text_field(at.index, name, v);
    let (account_field, account) = match account_field {
        AccountField::Account => ("account", field("account", r.account)?),
        AccountField::AccountId => ("accountid", field("accountid", r.accountid)?),
        AccountField::Domain => ("domain", field("domain", r.domain)?),
        AccountField::DomainId => ("domainid", field("domainid", r.domainid)?),
        AccountField::DomainAccount => (
            "account",
            match (field("domain", r.domain)?, field("account", r.account)?) {
                (Some(d), Some(a)) => Some(format!("{d}/{a}")),
                _ => None,
            },
        ),
    };
    let account = account.ok_or_else(|| at.err(account_field, "", RecordRule::Empty))?;
    let project = match field("projectid", r.projectid)? {
        Some(p) => Some(p),
        None => field("project", r.project)?,
    };
    Ok((account, project))
}

/// The catalog region of the record's `zoneid`, through the regions' aliases.
fn region(
    at: &At<'_>,
    r: &RawRecord<'_>,
    resolver: &Resolver<'_>,
) -> Result<Option<String>, RecordError> {
    match text_field(at.index, "zoneid", r.zoneid)? {
        None => Ok(None),
        Some(z) => match resolver.regions.get(z.as_str()) {
            Some(id) => Ok(Some((*id).to_string())),
            None => Err(at.err("zoneid", &z, RecordRule::UnknownRegion)),
        },
    }
}

/// The catalog product the rule prices the record by (its offering, a default, or a fixed
/// product) and the product's meter the rule selects.
/// The fields a record's product may come from.
#[derive(Clone, Copy)]
struct Sources<'a> {
    offering: Option<&'a str>,
    template: Option<&'a str>,
}

fn product_and_meter<'c>(
    at: &At<'_>,
    rule: &UsageTypeRule,
    resolver: &Resolver<'c>,
    sources: Sources<'_>,
) -> Result<(&'c str, &'c str), RecordError> {
    let offering = sources.offering;
    let err = |field, value: &str| at.err(field, value, RecordRule::UnknownProduct);
    // The product a record field names (`offeringid`, `templateid`), which the rule requires.
    let by_field = |field: &'static str, value: Option<&str>, what: &str| {
        let v = value.ok_or_else(|| {
            let why = format!(
                "usage type {} ({}) is priced by its {what}",
                rule.usage_type, rule.name
            );
            at.err(field, "", RecordRule::MissingField { why: Some(why) })
        })?;
        let p = resolver.product(v).ok_or_else(|| err(field, v))?;
        Ok::<_, RecordError>((p, field, v.to_string()))
    };
    let (product, product_field, product_value) = match &rule.product {
        ProductSource::Offering => by_field("offeringid", offering, "offering")?,
        ProductSource::OfferingOr(default) => {
            let from_offering = match offering {
                None => None,
                Some(o) => {
                    let p = resolver.product(o).ok_or_else(|| err("offeringid", o))?;
                    resolver.meter(p, &rule.meter).is_some().then_some((p, o))
                }
            };
            match from_offering {
                Some((p, o)) => (p, "offeringid", o.to_string()),
                None => {
                    let value = format!("{} -> {default}", rule.usage_type);
                    let p = resolver
                        .product(default)
                        .ok_or_else(|| err("usagetype", &value))?;
                    (p, "usagetype", value)
                }
            }
        }
        ProductSource::Product(p) => {
            let value = format!("{} -> {p}", rule.usage_type);
            let p = resolver
                .product(p)
                .ok_or_else(|| err("usagetype", &value))?;
            (p, "usagetype", value)
        }
        ProductSource::Template => by_field("templateid", sources.template, "template")?,
    };
    let meter = resolver.meter(product, &rule.meter).ok_or_else(|| {
        let value = format!("{product_value} ({product})");
        at.err(product_field, &value, RecordRule::UnknownMeter)
    })?;
    Ok((product, meter))
}

/// The record's quantity and unit as the rule computes them, and its raw usage (hours, for
/// pairing stopped time).
fn quantity(
    at: &At<'_>,
    r: &RawRecord<'_>,
    rule: &UsageTypeRule,
) -> Result<(Decimal, Unit, Decimal), RecordError> {
    let number = |name: &'static str, v: Option<&RawValue>| -> Result<Decimal, RecordError> {
        let v = v.ok_or_else(|| {
            let why = format!("usage type {} ({}) needs it", rule.usage_type, rule.name);
            at.err(name, "", RecordRule::MissingField { why: Some(why) })
        })?;
        let text = raw_number_text(v).map_err(|rule| at.err(name, v.get(), rule))?;
        let q = parse_decimal(&text).map_err(|e| at.err(name, &text, e.rule()))?;
        check_quantity(q).map_err(|rule| at.err(name, &text, rule))
    };
    let raw_usage = number("rawusage", r.rawusage)?;
    // rawusage hours x a field of the record, divided by `per`, checked.
    let times = |name: &'static str, v: Option<&RawValue>, per: Decimal| {
        let factor = number(name, v)?;
        let q = factor
            .checked_mul(raw_usage)
            .ok_or_else(|| at.err(name, &factor.to_string(), too_large()))?
            / per;
        check_quantity(q).map_err(|rule| at.err(name, &factor.to_string(), rule))
    };
    let (quantity, unit) = match rule.quantity {
        QuantityKind::Hours | QuantityKind::StoppedHours => (raw_usage, Unit::Hours),
        QuantityKind::Bytes => (raw_usage, Unit::Bytes),
        QuantityKind::Requests => (raw_usage, Unit::Requests),
        QuantityKind::SizeHours => (times("size", r.size, Decimal::ONE)?, Unit::ByteHours),
        QuantityKind::CpuHours => (times("cpunumber", r.cpunumber, Decimal::ONE)?, Unit::Hours),
        // MB to GB: dividing by 1024 = 2^10 is exact in decimal.
        QuantityKind::MemoryGbHours => (
            times("memory", r.memory, Decimal::from(1024))?,
            Unit::GigabyteHours,
        ),
    };
    Ok((quantity, unit, raw_usage))
}

/// Tags as `key:value` (or the key alone when the value is empty) and plain strings.
fn tags(at: &At<'_>, r: &RawRecord<'_>) -> Result<Vec<String>, RecordError> {
    let Some(raw_tags) = r.tags else {
        return Ok(Vec::new());
    };
    let tags = serde_json::from_str::<Option<Vec<RawTag>>>(raw_tags.get()).map_err(|e| {
        let rule = RecordRule::BadTags {
            message: e.to_string(),
        };
        at.err("tags", raw_tags.get(), rule)
    })?;
    Ok(tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| match t {
            RawTag::Plain(s) => s,
            RawTag::Pair { key, value } => match value.filter(|v| !v.is_empty()) {
                Some(v) => format!("{key}:{v}"),
                None => key,
            },
        })
        .filter(|t| !t.is_empty())
        .collect())
}

/// The rule for a product of two valid numbers that overflows Decimal.
fn too_large() -> RecordRule {
    RecordRule::QuantityTooLarge {
        max: crate::usage::record_quantity_max().to_string(),
    }
}

fn bad_time() -> RecordRule {
    RecordRule::NotATime {
        format: TimeFormat::CloudStack,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn read(text: &[u8], max: usize) -> Result<(u64, Vec<usize>, usize), ImportError> {
        let catalog: Catalog =
            Catalog::from_json(include_str!("../../../examples/catalogs/cloudstack.json")).unwrap();
        let mapping = CloudStackMapping::default();
        let (mut records, mut bad) = (Vec::new(), 0usize);
        let (items, _) = stream(
            text,
            &catalog,
            &mapping,
            max,
            &mut |i, _| records.push(i),
            &mut |_| bad += 1,
        )?;
        Ok((items, records, bad))
    }

    #[test]
    fn past_the_record_limit_a_document_is_refused_and_the_excess_only_counted() {
        let items = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
        // At the limit: read (every `{}` is a bad record, none is dropped unseen).
        let (n, _, bad) = read(items(10).as_bytes(), 10).unwrap();
        assert_eq!((n, bad), (10, 10));
        let e = read(items(11).as_bytes(), 10).unwrap_err();
        assert!(
            matches!(
                e,
                ImportError::TooLarge {
                    what: "records per document",
                    max: 10,
                    ..
                }
            ),
            "{e}"
        );
        // Inside the envelope too, with the count checked only after the limit.
        let wrapped = format!(
            r#"{{"listusagerecordsresponse": {{"count": 11, "usagerecord": {}}}}}"#,
            items(11)
        );
        let e = read(wrapped.as_bytes(), 10).unwrap_err();
        assert!(matches!(e, ImportError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn a_reader_failing_half_way_is_a_read_error_not_a_syntax_error() {
        let catalog: Catalog =
            Catalog::from_json(include_str!("../../../examples/catalogs/cloudstack.json")).unwrap();
        // The reader fails after the first record and the comma that follows it.
        let doc = br#"{"listusagerecordsresponse": {"usagerecord": [{}, {}]}}"#;
        let cut = doc.iter().position(|&b| b == b',').unwrap() + 1;
        let e = stream(
            super::super::document::FailingReader(&doc[..cut]),
            &catalog,
            &CloudStackMapping::default(),
            10,
            &mut |_, _| {},
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, ImportError::Read { message } if message.contains("reset")),
            "{e}"
        );
    }
}
