//! The HTTP edge of the control plane: AWS JSON 1.1 framing, SigV4
//! authentication, and the ECS operation handlers. This is the only crate
//! that knows HTTP.

pub mod admin;
pub mod agent_api;
pub mod config;
pub mod controller;
pub mod db;
pub mod domain;
pub mod ecs;
pub mod error;
pub mod heartbeat;
pub mod history;
pub mod http;
pub mod identity;
pub mod live_tasks;
pub mod logs;
mod operation;
pub mod state;

pub use config::ServerConfig;
pub use http::{serve, Server};
