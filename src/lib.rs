//! earmark: a double-entry ledger for earmarked public funds (专项资金), following China's education
//! subsidies from the province's, city's and county's budget shares down to each person's bank account.
//!
//! Data flows one way: input (file, CLI) → domain command → ledger entry → store → reports.
//! The domain modules (`money`, `calendar`, `id_number`, `region`, `ledger`) know nothing of SQL.

pub mod api;
pub mod calendar;
pub mod deadline;
pub mod demo;
pub mod flow;
pub mod id_number;
pub mod input;
pub mod inspect;
pub mod ledger;
pub mod money;
mod parallel;
pub mod program;
pub mod reference;
pub mod region;
pub mod report;
pub mod roster;
pub mod service;
pub mod store;

pub use money::Fen;
