//! The conflict-detection pipeline of mtgs: stages that find pairs of tools an agent
//! would confuse, the indexes they search, and the orchestrator that runs them cheapest
//! first with short-circuits between them.
//!
//! **Invariant:** pure. No I/O, no async, no clock that any result depends on; values in,
//! values out. (A check reports how long each stage took, read from `Instant`, and that
//! is all the time it reads.) Embeddings and routing decisions (later stages) arrive
//! through traits implemented elsewhere.

pub mod behavioural;
pub mod lexical;
mod pipeline;
mod prepared;
pub mod probes;
pub mod recommend;
pub mod routing;
pub mod schema;
pub mod semantic;
pub mod simulation;
mod stage;
pub mod synth;
pub mod text;

pub use pipeline::{CheckResult, Detector, StageTimings};
pub use prepared::{ParamShape, PreparedTool};
pub use stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx, ToolTable};
