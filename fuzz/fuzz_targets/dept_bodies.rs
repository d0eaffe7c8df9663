//! Department request bodies: any bytes as the body of a transition or an endpoint
//! change are refused or read without a panic, and a refusal renders as a problem.
#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use onewindow::exchange::worker::endpoint_allowed;
use onewindow::http::dept::{DeptTransition, EndpointBody, transition_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<DeptTransition>(data) {
        if let Err(e) = transition_request(&body) {
            let resp = e.into_response();
            assert!(resp.status().is_client_error(), "{}", resp.status());
        }
    }
    if let Ok(body) = serde_json::from_slice::<EndpointBody>(data) {
        if let Some(url) = body.endpoint() {
            let _ = endpoint_allowed(url, false);
            let _ = endpoint_allowed(url, true);
        }
    }
});
