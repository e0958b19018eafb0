//! How exports map onto a catalog: the catalog's `mappings` (CloudStack usage-type rules and account field, Ceilometer's sampling, baseline and project settings), read by the importers.
//!
//! These are plain settings with their defaults; [`crate::import`] documents what each does,
//! and `Catalog::validate` checks them against the catalog they sit in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::role::MeterRole;

/// Settings of the importers that need them: a catalog's `mappings`, plus the batch's window
/// (`ImportOptions::for_batch` in [`crate::import`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    #[serde(default)]
    pub cloudstack: CloudStackMapping,
    #[serde(default)]
    pub ceilometer: CeilometerOptions,
}

impl ImportOptions {
    /// True for the defaults (a catalog without `mappings`).
    pub fn is_default(&self) -> bool {
        *self == ImportOptions::default()
    }
}

/// CloudStack's usage type numbers (seed 000's list; `listUsageTypes` on a live cloud).
pub mod usage_type {
    pub const RUNNING_VM: u32 = 1;
    pub const ALLOCATED_VM: u32 = 2;
    pub const IP_ADDRESS: u32 = 3;
    pub const NETWORK_BYTES_SENT: u32 = 4;
    pub const NETWORK_BYTES_RECEIVED: u32 = 5;
    pub const VOLUME: u32 = 6;
    pub const TEMPLATE: u32 = 7;
    pub const ISO: u32 = 8;
    pub const SNAPSHOT: u32 = 9;
    pub const SECURITY_GROUP: u32 = 10;
    pub const LOAD_BALANCER_POLICY: u32 = 11;
    pub const PORT_FORWARDING_RULE: u32 = 12;
    pub const NETWORK_OFFERING: u32 = 13;
    pub const VPN_USERS: u32 = 14;
    pub const VM_DISK_IO_READ: u32 = 21;
    pub const VM_DISK_IO_WRITE: u32 = 22;
    pub const VM_DISK_BYTES_READ: u32 = 23;
    pub const VM_DISK_BYTES_WRITE: u32 = 24;
    pub const VM_SNAPSHOT: u32 = 25;
}

/// Where the product of a usage type comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductSource {
    /// The record's `offeringid`, which must be a catalog product id or alias.
    Offering,
    /// The record's `offeringid` when it names a product priced for the rule's meter; this
    /// product (id or alias) when the record has no `offeringid` or names a product without that
    /// meter. CloudStack gives root volumes no disk offering, or the VM's service offering (a
    /// compute product with no storage price). An `offeringid` the catalog does not know is
    /// still an error: it is a missing price, not a root volume.
    OfferingOr(String),
    /// Always this product (id or alias): usage types without offerings, and resources
    /// priced alone (a vCPU, a GB of RAM).
    Product(String),
    /// The record's `templateid`, a catalog product id or alias: the VM's OS image, priced per
    /// hour it runs (seed 001 prices images apart from CPU and RAM).
    Template,
}

/// Which meter of the product a usage type is priced on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterSelector {
    /// The product's meter with this role.
    Role(MeterRole),
    /// This meter id, which the product must charge.
    Id(String),
}

/// How a record's quantity is computed from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityKind {
    /// `rawusage` hours.
    Hours,
    /// `rawusage` bytes (the pricing engine shows them as GB of 1024^3 bytes).
    Bytes,
    /// `rawusage` requests (priced per the meter's measurement unit, e.g. 1,000,000).
    Requests,
    /// `size` bytes x `rawusage` hours, as byte-hours (GB-hours once divided by 1024^3).
    SizeHours,
    /// `rawusage` allocated hours minus the RUNNING_VM hours of the same VM, offering and
    /// period: the hours the VM existed but was stopped.
    StoppedHours,
    /// `rawusage` hours x `cpunumber`: vCPU-hours (hours), for CPU priced per vCPU.
    CpuHours,
    /// `rawusage` hours x `memory` (MB) / 1024: GB-hours of RAM (gigabyte_hours), for RAM
    /// priced per GB.
    MemoryGbHours,
}

/// How one CloudStack usage type becomes a usage record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTypeRule {
    pub usage_type: u32,
    /// CloudStack's name of the type (`RUNNING_VM`); also accepted in place of the number.
    pub name: String,
    pub product: ProductSource,
    pub meter: MeterSelector,
    pub quantity: QuantityKind,
}

/// Which CloudStack field names the billed account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountField {
    /// `account`, the account name (`bu1user1`): what seed 000's invoice is addressed to.
    #[default]
    Account,
    AccountId,
    /// `domain`: one invoice per customer domain (seed 001's design).
    Domain,
    DomainId,
    /// `domain/account`: account names are unique only inside a domain.
    DomainAccount,
}

/// How a CloudStack export maps onto a catalog. The default matches
/// `examples/catalogs/cloudstack.json`; a deployment with other product ids changes the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudStackMapping {
    pub account: AccountField,
    pub rules: Vec<UsageTypeRule>,
}

impl CloudStackMapping {
    /// The first rule of a usage type.
    pub fn rule(&self, usage_type: u32) -> Option<&UsageTypeRule> {
        self.rules.iter().find(|r| r.usage_type == usage_type)
    }

    /// Every rule of a usage type, in the mapping's order: a type may make several records (a
    /// running VM priced by its vCPUs, its RAM and its image).
    pub fn rules_for(&self, usage_type: u32) -> Vec<&UsageTypeRule> {
        self.rules
            .iter()
            .filter(|r| r.usage_type == usage_type)
            .collect()
    }

    /// The usage type named `name` (`RUNNING_VM`), by its first rule.
    pub(crate) fn rule_named(&self, name: &str) -> Option<&UsageTypeRule> {
        self.rules
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn known_types(&self) -> String {
        let mut types: Vec<u32> = self.rules.iter().map(|r| r.usage_type).collect();
        types.sort_unstable();
        types.dedup();
        types
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for CloudStackMapping {
    fn default() -> Self {
        use usage_type::*;
        use MeterRole::*;
        use QuantityKind::*;
        let rule = |usage_type, name: &str, product, meter, quantity| UsageTypeRule {
            usage_type,
            name: name.to_string(),
            product,
            meter,
            quantity,
        };
        let offering = || ProductSource::Offering;
        let fixed = |p: &str| ProductSource::Product(p.to_string());
        let role = MeterSelector::Role;
        let id = |m: &str| MeterSelector::Id(m.to_string());
        // One rule per line, as in the table of the module documentation.
        #[rustfmt::skip]
        let rules = vec![
            rule(RUNNING_VM, "RUNNING_VM", offering(), role(Running), Hours),
            rule(ALLOCATED_VM, "ALLOCATED_VM", offering(), role(Stopped), StoppedHours),
            rule(IP_ADDRESS, "IP_ADDRESS", fixed("public-ip"), role(IpHours), Hours),
            rule(NETWORK_BYTES_SENT, "NETWORK_BYTES_SENT", fixed("network"), role(TrafficOut), Bytes),
            rule(NETWORK_BYTES_RECEIVED, "NETWORK_BYTES_RECEIVED", fixed("network"), role(TrafficIn), Bytes),
            rule(VOLUME, "VOLUME", ProductSource::OfferingOr("root".into()), role(Storage), SizeHours),
            rule(TEMPLATE, "TEMPLATE", fixed("templates"), role(SnapshotStorage), SizeHours),
            rule(ISO, "ISO", fixed("isos"), role(SnapshotStorage), SizeHours),
            rule(SNAPSHOT, "SNAPSHOT", fixed("snapshots"), role(SnapshotStorage), SizeHours),
            rule(SECURITY_GROUP, "SECURITY_GROUP", fixed("security-group"), role(ServiceHours), Hours),
            rule(LOAD_BALANCER_POLICY, "LOAD_BALANCER_POLICY", fixed("load-balancer"), role(ServiceHours), Hours),
            rule(PORT_FORWARDING_RULE, "PORT_FORWARDING_RULE", fixed("port-forwarding"), role(ServiceHours), Hours),
            rule(NETWORK_OFFERING, "NETWORK_OFFERING", offering(), role(ServiceHours), Hours),
            rule(VPN_USERS, "VPN_USERS", fixed("vpn"), id("vpn.users"), Hours),
            rule(VM_DISK_IO_READ, "VM_DISK_IO_READ", fixed("disk-io"), role(ReadRequests), Requests),
            rule(VM_DISK_IO_WRITE, "VM_DISK_IO_WRITE", fixed("disk-io"), role(WriteRequests), Requests),
            rule(VM_DISK_BYTES_READ, "VM_DISK_BYTES_READ", fixed("disk-io"), id("disk.read.bytes"), Bytes),
            rule(VM_DISK_BYTES_WRITE, "VM_DISK_BYTES_WRITE", fixed("disk-io"), id("disk.write.bytes"), Bytes),
            rule(VM_SNAPSHOT, "VM_SNAPSHOT", fixed("vm-snapshots"), role(SnapshotStorage), SizeHours),
        ];
        CloudStackMapping {
            account: AccountField::Account,
            rules,
        }
    }
}

/// Default time one gauge sample stands for when no later sample follows it: an hour, the
/// collection interval of Atomia's UsageDataScheduledEventHandler and of the hourly polling the
/// example exports use. Set it to the `interval` of your `polling.yaml`.
pub const GAUGE_SAMPLE_INTERVAL_S_DEFAULT: u32 = 3600;

/// Default longest gap between two gauge samples of one resource that still counts as
/// continuous use: two polling intervals, so that one lost or late poll does not lose an hour,
/// while a resource that vanished for longer (stopped, shelved, deleted and recreated with the
/// same id) is not billed for the gap.
pub const GAUGE_GAP_MAX_S_DEFAULT: u32 = 2 * GAUGE_SAMPLE_INTERVAL_S_DEFAULT;

/// Default polling jitter tolerated on top of the gap limit: a tenth of the interval (6 min for
/// hourly polls). Ceilometer's pollsters start each cycle when the previous one ends, so
/// timestamps drift by seconds to minutes; without a tolerance a lost poll followed by a poll one
/// second late (a 7,201 s gap) would bill an hour less than the same lost poll on time.
pub const GAUGE_JITTER_S_DEFAULT: u32 = GAUGE_SAMPLE_INTERVAL_S_DEFAULT / 10;

/// Longest gauge sample interval a mapping may set (31 days): a sample's span is cut at every
/// UTC midnight, so the interval bounds the records one sample makes.
pub const GAUGE_SAMPLE_INTERVAL_S_MAX: u32 = 31 * 86_400;

/// One reading of a cumulative counter: its value at an instant, and the end of the window
/// of the batch that read it (the start of the window it may be carried into).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub at: DateTime<Utc>,
    #[serde(with = "rust_decimal::serde::str")]
    pub volume: rust_decimal::Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The last readings of cumulative counter series, by series (`<counter> <unit> <resource>`),
/// oldest first: what one batch leaves for the next ([`merge_readings`]).
pub type Readings = BTreeMap<String, Vec<Reading>>;

/// Readings kept per series: the last reading of each of the latest exports, so that an
/// export rated late or retried (up to this many windows back) still finds the reading before
/// its first sample.
pub const READINGS_KEPT: usize = 4;

/// Adds `from`'s readings to `into`: per series, one reading per instant (the first written
/// wins: Ceilometer reports one value per sample, so two exports holding a sample agree), the
/// latest [`READINGS_KEPT`] kept. Idempotent, and order-free for agreeing readings, so
/// concurrent batches may merge in any order. Series whose latest reading is more than
/// [`READINGS_RETAINED_DAYS`] older than the latest reading merged are dropped: a reading is
/// only ever carried into the next window, so older ones are dead weight (resources deleted).
pub fn merge_readings(into: &mut Readings, from: &Readings) {
    merge_kept(into, from);
    let newest = from.values().flatten().map(|r| r.at).max();
    if let Some(newest) = newest {
        let horizon = newest - chrono::Duration::days(READINGS_RETAINED_DAYS);
        into.retain(|_, r| r.last().is_some_and(|l| l.at >= horizon));
    }
}

/// Days a series' readings are kept after its latest reading, measured from the newest
/// reading merged ([`merge_readings`]): long enough for a window's export rated a few days
/// late to find the reading of the window before it.
pub const READINGS_RETAINED_DAYS: i64 = 7;

fn merge_kept(into: &mut Readings, from: &Readings) {
    for (series, readings) in from {
        let kept = into.entry(series.clone()).or_default();
        for r in readings {
            if let Err(at) = kept.binary_search_by_key(&r.at, |k| k.at) {
                kept.insert(at, *r);
            }
        }
        if kept.len() > READINGS_KEPT {
            kept.drain(..kept.len() - READINGS_KEPT);
        }
    }
}

/// What the first sample of a cumulative counter in a document counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CumulativeStart {
    /// Nothing: it is the baseline later samples are measured from, unless a reading carried
    /// from an earlier batch precedes it (see `CeilometerOptions::carried`). Exports may
    /// overlap by one sample (include the previous window's last sample); without the overlap
    /// or a carried reading, usage between two documents is not billed rather than billed
    /// twice.
    #[default]
    Baseline,
    /// Its whole value: for resources created inside the window, whose counters started at 0.
    FromZero,
}

/// How Ceilometer samples become usage records: the catalog's `mappings.ceilometer` (every
/// field optional there, defaulting to the values below), plus the batch's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CeilometerOptions {
    /// Seconds a gauge sample stands for when no later sample of the resource follows it within
    /// `gauge_gap_max_s` (plus the jitter).
    pub gauge_sample_interval_s: u32,
    /// Longest gap, in seconds, between two gauge samples that is billed as continuous use.
    pub gauge_gap_max_s: u32,
    /// Seconds of polling jitter tolerated on top of `gauge_gap_max_s`: a gap of at most
    /// `gauge_gap_max_s + gauge_jitter_s` is continuous use.
    pub gauge_jitter_s: u32,
    /// The start of the export window (the billing period's start), set per batch, never by a
    /// catalog: the part of a gauge sample's time before it is not billed by this batch. It is
    /// the previous window's, billed by the previous export (exports overlap by one sample, so
    /// that sample's time is known on both sides of the boundary).
    #[serde(skip)]
    pub window_start: Option<DateTime<Utc>>,
    /// The end of the export window (the billing period's end): no gauge sample's time runs past
    /// it; the next export, which starts with this window's last sample, bills the rest.
    /// [`import_and_rate`](crate::import::import_and_rate) sets both ends to the period's when
    /// they are `None`.
    #[serde(skip)]
    pub window_end: Option<DateTime<Utc>>,
    /// Readings of cumulative counters from the batches rated before, set per batch by the
    /// rater, never by a catalog: a series whose first sample in the export has no earlier
    /// sample there is measured from the latest carried reading before it, so that a counter's
    /// first interval of every export is billed even when exports do not overlap.
    #[serde(skip)]
    pub carried: Option<std::sync::Arc<Readings>>,
    pub cumulative_start: CumulativeStart,
    /// Drop samples of counters the catalog does not price (`cpu`, `memory.usage`...) instead
    /// of refusing the batch. Off by default: an unknown counter is usually a missing price.
    pub skip_unknown_counters: bool,
    /// The billed account of a project id; a project without an entry is its own account.
    pub account_by_project: BTreeMap<String, String>,
    /// Region of every record (Ceilometer samples do not name one); the account's region when
    /// `None`.
    pub region: Option<String>,
    /// Counters beyond the built-in ones (or instead of them: a rule matching a sample wins),
    /// such as custom pollsters' meters or `volume.size` of one `volume_type` priced its own
    /// way. Tried in order; the first whose name and metadata filter match prices the sample.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<CounterRule>,
}

/// How one Ceilometer counter becomes usage records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterRule {
    /// The counter's name (`counter_name` or `meter`).
    pub name: String,
    /// Matches only samples whose metadata has these values (`{"volume_type": "ssd"}`; a
    /// dotted key reads a nested object, `flavor.name`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
    /// The counter's type, which samples must have: `gauge` (volume x time held),
    /// `cumulative` or `delta` (the counted quantity).
    pub kind: CounterKind,
    /// The product (id or alias) and its meter.
    pub product: String,
    pub meter: MeterSelector,
    /// The unit of the records: for a gauge `seconds` (a count x time) or `gigabyte_hours`
    /// (GB x time); for a counted counter the unit of its volume once scaled.
    pub unit: crate::unit::Unit,
    /// What the sample's volume is multiplied by first (`0.000000001` for bytes counted as GB).
    #[serde(
        default = "one",
        deserialize_with = "crate::shape::decimal",
        skip_serializing_if = "is_one"
    )]
    pub scale: rust_decimal::Decimal,
}

fn one() -> rust_decimal::Decimal {
    rust_decimal::Decimal::ONE
}

fn is_one(d: &rust_decimal::Decimal) -> bool {
    *d == rust_decimal::Decimal::ONE
}

/// A Ceilometer counter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterKind {
    Gauge,
    Cumulative,
    Delta,
}

impl Default for CeilometerOptions {
    fn default() -> Self {
        CeilometerOptions {
            gauge_sample_interval_s: GAUGE_SAMPLE_INTERVAL_S_DEFAULT,
            gauge_gap_max_s: GAUGE_GAP_MAX_S_DEFAULT,
            gauge_jitter_s: GAUGE_JITTER_S_DEFAULT,
            window_start: None,
            window_end: None,
            carried: None,
            cumulative_start: CumulativeStart::Baseline,
            skip_unknown_counters: false,
            account_by_project: BTreeMap::new(),
            region: None,
            counters: Vec::new(),
        }
    }
}
