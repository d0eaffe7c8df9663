//! The benchmark's seeding fast path (`onewindow bench seed`, `src/bench_seed.rs`): the
//! rows it writes without the use cases read back through the store like any case,
//! sealed columns opened, history in place, listed for their applicant, and a persona's
//! login finds the account its cases were seeded for; the benchmark residents are in the
//! base library.

use std::collections::HashMap;

use onewindow::bench_seed::{SeedOptions, seed};
use onewindow::store::CaseFilter;
use onewindow::usecases::Actor;

use crate::backend_tests;
use crate::harness::{Backend, Resources};

backend_tests!(seeded_cases_read_back_through_the_store);

async fn seeded_cases_read_back_through_the_store(b: Backend) {
    let res = Resources::new(b).await;
    let settings = res.settings();
    let sample = res.tmp.path().join("sample.tsv");
    let issuer = "http://127.0.0.1:1/";
    let report = seed(
        &settings,
        &SeedOptions {
            cases: 50,
            applicants: 10,
            persona_issuer: Some(issuer.into()),
            persona_cases: Some(4),
            sample: Some(sample.clone()),
            sample_size: 50,
            bench_personas: 3,
        },
    )
    .await
    .expect("seed");
    assert_eq!(report.cases, 50);
    assert!(report.events >= 50);
    assert_eq!(report.accounts, 10);

    // Every case is in the sample (50 ≤ sample size): case_no, query code, department,
    // status, applicant account.
    let text = std::fs::read_to_string(&sample).expect("sample");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 50, "{text}");

    let state = onewindow::app::Application::build_state(settings)
        .await
        .expect("state");
    let row = &rows[rows.len() - 1];
    let case = state
        .store
        .case_by_no(row[0])
        .await
        .expect("read")
        .expect("the seeded case is there");
    assert_eq!(case.query_code, row[1]);
    assert_eq!(case.department, row[2]);
    assert_eq!(case.status, row[3]);
    assert_eq!(
        case.applicant.account_id.map(|a| a.to_string()).as_deref(),
        Some(row[4])
    );
    let id = case
        .applicant
        .id_number
        .as_ref()
        .expect("the sealed ID number opens");
    assert_eq!(
        case.form["applicant_id_number"].as_str(),
        Some(id.expose()),
        "the sealed form opens"
    );
    assert!(
        case.applicant
            .phone
            .as_deref()
            .is_some_and(|p| p.len() == 11)
    );
    let events = state.store.case_events(case.id).await.expect("events");
    assert_eq!(events[0].action.as_deref(), Some("submit"));
    assert_eq!(events.last().expect("event").to_status, case.status);

    // An applicant's cases, newest first, as "my cases" lists them.
    let mut per_applicant: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *per_applicant.entry(r[4]).or_default() += 1;
    }
    let (account, n) = per_applicant
        .iter()
        .max_by_key(|(_, n)| **n)
        .expect("applicants");
    let (list, total) = state
        .store
        .list_cases(&CaseFilter {
            applicant: Some(account.parse().expect("uuid")),
            limit: 100,
            ..CaseFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(total as usize, *n);
    assert_eq!(list.len(), *n);
    assert!(list.windows(2).all(|w| w[0].created_at >= w[1].created_at));

    // The persona's login (the same upsert) finds the account its cases were seeded for.
    let actor = onewindow::demo_seed::persona_actor(&state, issuer, "citizen-wang")
        .await
        .expect("login");
    let Actor::Applicant { account, .. } = actor else {
        panic!("an applicant")
    };
    let (_, mine) = state
        .store
        .list_cases(&CaseFilter {
            applicant: Some(account),
            limit: 100,
            ..CaseFilter::default()
        })
        .await
        .expect("list");
    assert!(mine >= 1, "citizen-wang has seeded cases");

    // The benchmark residents are in the base library, as the demo personas are: the
    // population record their form prefills from and the ID card e-licence that stands in
    // for the upload, both under the ID number the development provider gives them.
    let (name, id, _) = onewindow::devidp::personas::bench_identity(2);
    let person = state
        .providers
        .base
        .records("person", &id)
        .await
        .expect("person");
    assert_eq!(person.len(), 1);
    assert_eq!(person[0].data["name"], name.as_str());
    let licences = state
        .providers
        .base
        .records("elicence", &id)
        .await
        .expect("licence");
    assert_eq!(licences.len(), 1);
    assert_eq!(licences[0].data["holder_name"], name.as_str());
    let beyond = onewindow::devidp::personas::bench_identity(3).1;
    let none = state.providers.base.records("person", &beyond).await;
    assert!(none.expect("read").is_empty(), "only the first three");
}
