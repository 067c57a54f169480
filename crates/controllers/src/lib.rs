//! Pure reconcilers. Each takes a snapshot of what is desired and what is
//! observed, plus `now`, and returns actions and the state to persist. The
//! server does the IO and calls again on change or at `wake_at`.

pub mod gc;
pub mod service;
pub mod state;

#[cfg(test)]
mod service_tests;
