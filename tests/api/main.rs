//! Black-box API tests: each test starts the real `dxstack` binary on its own temp dir
//! (see [`harness`]) and drives it over HTTP as partners, providers, operators and admin.

mod harness;

mod bad_input;
mod durability;
mod eligibility;
mod idempotency;
mod lifecycle;
mod network;
mod ops;
mod routing;
mod service;
mod sla;
mod tenancy;
mod webhooks;
