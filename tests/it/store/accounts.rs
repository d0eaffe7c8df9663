//! Accounts (upserted at login, personal data sealed) and department API tokens.

use onewindow::auth::identity::{AccountKind, EnterpriseRep, Identity, Role};
use onewindow::domain::ids::ResidentId;
use onewindow::store::{ApiToken, StoreError};
use uuid::Uuid;

use super::{DEPT, WANG_ID, at, at_micros, connect, open, open_sealed, sealer};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    an_account_round_trips_every_column_sealed,
    a_second_login_updates_the_same_account,
    tokens_are_found_by_hash_listed_newest_first_and_revoked_once,
);

fn identity(subject: &str) -> Identity {
    Identity {
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        kind: AccountKind::Enterprise,
        name: "王小明".into(),
        id_number: Some(ResidentId::parse(WANG_ID).expect("id")),
        phone: Some("13800000001".into()),
        email: Some("wang@example.cn".into()),
        assurance: 3,
        enterprise: Some(EnterpriseRep {
            uscc: "91150700MA0N000001".into(),
            name: "呼伦贝尔某某有限公司".into(),
            role: "legal_rep".into(),
        }),
        roles: vec![
            Role::EnterpriseUser {
                uscc: "91150700MA0N000001".into(),
            },
            Role::Clerk {
                hall: "hall-1".into(),
                departments: vec![DEPT.into()],
            },
        ],
    }
}

async fn an_account_round_trips_every_column_sealed(b: Backend) {
    let Some((res, s)) = open_sealed(b).await else {
        return;
    };
    let who = identity("sub-1");
    let when = at_micros(0, 123_456);
    let id = s.upsert_account(&who, when).await.expect("upsert");
    let a = s.account(id).await.expect("read").expect("present");
    assert_eq!(a.id, id);
    assert_eq!(a.issuer, who.issuer);
    assert_eq!(a.subject, "sub-1");
    assert_eq!(a.kind, AccountKind::Enterprise);
    assert_eq!(a.name, "王小明");
    assert_eq!(a.id_number.as_ref().map(|i| i.expose()), Some(WANG_ID));
    assert_eq!(a.phone.as_deref(), Some("13800000001"));
    assert_eq!(a.email.as_deref(), Some("wang@example.cn"));
    assert_eq!(a.assurance, 3);
    let e = a.enterprise.expect("enterprise");
    assert_eq!(
        (e.uscc.as_str(), e.name.as_str(), e.role.as_str()),
        ("91150700MA0N000001", "呼伦贝尔某某有限公司", "legal_rep")
    );
    assert_eq!(a.roles, who.roles);
    assert_eq!(a.created_at, when, "microseconds are kept");
    assert_eq!(a.last_login_at, when);
    assert!(s.account(Uuid::now_v7()).await.expect("read").is_none());

    // Sealed at rest: a store without the key refuses the row rather than show
    // ciphertext, and one with the key reads it.
    let keyless = connect(&res).await;
    assert!(matches!(
        keyless.account(id).await,
        Err(StoreError::Corrupt(_))
    ));
    keyless.set_sealer(sealer());
    assert_eq!(
        keyless
            .account(id)
            .await
            .expect("read")
            .expect("present")
            .phone
            .as_deref(),
        Some("13800000001")
    );

    // Without personal data, nothing to seal: the columns read back empty.
    let bare = Identity {
        id_number: None,
        phone: None,
        email: None,
        enterprise: None,
        kind: AccountKind::Person,
        roles: vec![Role::Citizen],
        assurance: 1,
        ..identity("sub-2")
    };
    let id2 = s.upsert_account(&bare, at(5)).await.expect("upsert");
    let a2 = s.account(id2).await.expect("read").expect("present");
    assert_eq!((a2.id_number, a2.phone, a2.email), (None, None, None));
    assert!(a2.enterprise.is_none());
    assert_eq!(a2.roles, [Role::Citizen]);
    keyless.close().await;
    s.close().await;
}

async fn a_second_login_updates_the_same_account(b: Backend) {
    let Some((_res, s)) = open_sealed(b).await else {
        return;
    };
    let first = s
        .upsert_account(&identity("sub-1"), at(0))
        .await
        .expect("first");
    let other = s
        .upsert_account(&identity("sub-9"), at(1))
        .await
        .expect("other");
    assert_ne!(first, other, "another subject is another account");
    let changed = Identity {
        name: "王晓明".into(),
        phone: Some("13900000002".into()),
        email: None,
        assurance: 2,
        roles: vec![Role::Operator],
        ..identity("sub-1")
    };
    let again = s
        .upsert_account(&changed, at(3600))
        .await
        .expect("second login");
    assert_eq!(again, first, "(issuer, subject) keeps its account");
    let a = s.account(first).await.expect("read").expect("present");
    assert_eq!(a.name, "王晓明");
    assert_eq!(
        a.phone.as_deref(),
        Some("13900000002"),
        "the new phone opens"
    );
    assert_eq!(a.email, None, "a claim no longer given is cleared");
    assert_eq!(a.assurance, 2);
    assert_eq!(a.roles, [Role::Operator]);
    assert_eq!(a.created_at, at(0), "first login stays");
    assert_eq!(a.last_login_at, at(3600));
    s.close().await;
}

fn token(name: &str, created: i64, expires: Option<i64>) -> ApiToken {
    ApiToken {
        id: Uuid::now_v7(),
        department: DEPT.into(),
        name: name.into(),
        scopes: vec!["cases:read".into(), "cases:write".into()],
        created_at: at_micros(created, 42),
        expires_at: expires.map(at),
        revoked_at: None,
    }
}

async fn tokens_are_found_by_hash_listed_newest_first_and_revoked_once(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let old = token("old", 0, Some(3600));
    let new = token("new", 60, None);
    s.insert_api_token(&old, "hash-old").await.expect("insert");
    s.insert_api_token(&new, "hash-new").await.expect("insert");

    let found = s
        .api_token_by_hash("hash-old")
        .await
        .expect("find")
        .expect("present");
    assert_eq!(found.id, old.id);
    assert_eq!(found.department, DEPT);
    assert_eq!(found.name, "old");
    assert_eq!(found.scopes, ["cases:read", "cases:write"]);
    assert_eq!(found.created_at, at_micros(0, 42));
    assert_eq!(found.expires_at, Some(at(3600)));
    assert_eq!(found.revoked_at, None);
    assert!(found.is_active(at(3599)));
    assert!(!found.is_active(at(3600)), "expired at its expiry");
    assert!(
        s.api_token_by_hash("hash-none")
            .await
            .expect("find")
            .is_none()
    );

    let names: Vec<String> = s
        .api_tokens()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["new", "old"]);

    assert!(s.revoke_api_token(new.id, at(120)).await.expect("revoke"));
    assert!(
        !s.revoke_api_token(new.id, at(180)).await.expect("again"),
        "a revoked token is not revoked twice"
    );
    assert!(
        !s.revoke_api_token(Uuid::now_v7(), at(180))
            .await
            .expect("unknown")
    );
    let revoked = s
        .api_token_by_hash("hash-new")
        .await
        .expect("find")
        .expect("present");
    assert_eq!(
        revoked.revoked_at,
        Some(at(120)),
        "the first revocation time stays"
    );
    assert!(!revoked.is_active(at(121)));

    // The same hash twice is refused.
    assert!(
        s.insert_api_token(&token("dup", 0, None), "hash-old")
            .await
            .is_err()
    );
    s.close().await;
}
