//! Supervision (the sharing website's supervision side, 政务信息共享网站): what the city's
//! integration plan asks departments to report and operators to check, computed where
//! possible from the exchange's own records rather than from what is typed into forms.
//!
//! | file | what |
//! | --- | --- |
//! | `systems.rs` | the information-system registry (自查), self-inspection reports, zombie detection and decisions |
//! | `filings.rs` | project filings and O&M reviews (备案, 运维经费评估), monthly progress reports |
//! | `figures.rs` | assessment figures (考核评价), the ranking and its monthly trends |

pub mod figures;
pub mod filings;
pub mod systems;
