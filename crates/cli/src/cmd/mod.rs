//! One module per subcommand, each with its `Args` and `run`. What several of them share
//! (the runtime, flag groups, signals) is in `crate::common`, a leaf they all import.

pub mod anchor;
pub mod broker;
pub mod capability;
pub mod conformance;
pub mod control_plane;
pub mod demo;
pub mod import;
pub mod keygen;
pub mod prove;
pub mod reconcile;
pub mod serve;
pub mod tui;
pub mod verify;
