//! The HTTP edge of the control plane: the service table (per-protocol
//! framing, SigV4 authentication, routing) and the operation handlers. This is the only crate
//! that knows HTTP.

pub mod admin;
pub mod agent_api;
mod cloudwatch;
pub mod config;
pub mod controller;
pub mod db;
pub mod domain;
pub mod ecs;
mod edge;
pub mod error;
pub mod heartbeat;
pub mod history;
pub mod http;
pub mod identity;
pub mod live_tasks;
pub mod logs;
mod operation;
pub mod state;
mod sts;

pub use config::ServerConfig;
pub use http::{serve, Server};
