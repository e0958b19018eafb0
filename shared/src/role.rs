//! The well-known meanings of meters (running hours, storage, traffic...), by which the estimate builder and the importers find a product's meter.

use serde::{Deserialize, Serialize};

/// The well-known meanings of meters, shared by the estimate builder and the importers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterRole {
    /// Hours a VM ran (CloudStack RUNNING_VM, Ceilometer `instance:<flavor>`).
    Running,
    /// Hours a VM was allocated but stopped (CloudStack ALLOCATED_VM minus RUNNING_VM).
    Stopped,
    /// Volume size over time (GB-hours or GB-months).
    Storage,
    TrafficIn,
    TrafficOut,
    /// Hours an IP address was held.
    IpHours,
    /// Hours a network offering, rule or service was held.
    ServiceHours,
    ReadRequests,
    WriteRequests,
    /// Snapshot, template or ISO storage over time.
    SnapshotStorage,
}
