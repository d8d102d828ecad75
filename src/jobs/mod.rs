//! Scheduled jobs: their definitions (TOML files in the jobs folder), one run of a job (lock,
//! download, import, record, notify), and the scheduler that decides when. The scheduler
//! only decides when; it calls the same import pipeline as the command line.

pub mod definition;
pub mod runner;
pub mod scheduler;

pub use definition::{DefinitionError, JobDefinition, JobKind, load_dir};
pub use runner::{JobRun, RunnerSettings, Trigger};
