//! Prefill (表单预填): what a service's form may be filled from and why, the applicant's
//! consent, the values with their sources, and the re-check on submit.
