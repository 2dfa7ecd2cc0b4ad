//! The fake registry of the tests is the library's in-memory registry (`vouch::demo::registry`).
#[allow(unused_imports)]
pub use vouch::demo::registry::{MemoryRegistry as FakeRegistry, State};
