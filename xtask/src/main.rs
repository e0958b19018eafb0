//! Ratecard developer tasks.
fn main() {}
