//! Usage importers: canonical CSV and JSON Lines, CloudStack listUsageRecords, OpenStack Ceilometer samples (pure: bytes in, records out).
