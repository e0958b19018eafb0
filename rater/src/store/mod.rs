//! Storage: the trait the protocol is written against ([`api`]) and its two implementations with the same semantics, DynamoDB and an embedded redb file.
//!
//! Every method is one atomic step of the protocol described in the crate docs; both
//! implementations give the same answers to the same calls, and the handler tests run against
//! the embedded one while the integration tests run the same scenarios against DynamoDB Local.

pub mod api;
pub mod dynamo;
pub mod embedded;
#[cfg(feature = "testing")]
pub mod fault;

pub use api::*;
pub use dynamo::DynamoStore;
pub use embedded::EmbeddedStore;
