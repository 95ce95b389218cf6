//! Short-term memory through the Rust API: every event operation,
//! pagination, branches, metadata filters, idempotency, expiry, restart and
//! bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{memory, open, said, texts, user_event};
use corral_memory::types::{
    Branch, BranchFilter, EventFilter, EventFilterOperator, EventMetadataFilter, LeftExpression,
    ListEventsInput, ListSessionsInput, MetadataValue, PageInput, PayloadItem, RightExpression,
    Role, SessionEventFilter, SessionFilter,
};
use corral_memory::{MemoryError, MemoryService, Timestamp, ValidationReason};

async fn list(
    service: &MemoryService,
    memory: &str,
    session: &str,
    input: ListEventsInput,
) -> Vec<String> {
    service
        .list_events(memory, "alice", session, input)
        .await
        .unwrap()
        .events
        .iter()
        .flat_map(texts)
        .collect()
}

fn branch_filter(name: &str, parents: bool) -> ListEventsInput {
    ListEventsInput {
        filter: Some(EventFilter {
            branch: Some(BranchFilter {
                name: name.into(),
                include_parent_branches: parents,
            }),
            event_metadata: None,
        }),
        ..Default::default()
    }
}

fn reason(error: &MemoryError) -> Option<ValidationReason> {
    match error {
        MemoryError::Validation { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn events_round_trip_in_order_with_agentcore_ids() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "chat", vec![]).await;
    let mut first = user_event("alice", "s-1", "hello");
    first.payload.push(said(Role::Assistant, "hi there"));
    first
        .payload
        .push(PayloadItem::Blob(serde_json::json!({"k": [1, 2]})));
    let e1 = service.create_event(&m.id, first).await.unwrap();
    let e2 = service
        .create_event(&m.id, user_event("alice", "s-1", "second"))
        .await
        .unwrap();
    let id = regex_lite_match(&e1.event_id);
    assert!(id, "event id {} is not <digits>#<hex>", e1.event_id);
    assert_eq!(
        service
            .get_event(&m.id, "alice", "s-1", &e1.event_id)
            .await
            .unwrap(),
        e1
    );
    assert_eq!(e1.payload.len(), 3);
    let listed = service
        .list_events(&m.id, "alice", "s-1", ListEventsInput::default())
        .await
        .unwrap();
    // Newest first, as AgentCore lists them.
    assert_eq!(listed.events, vec![e2.clone(), e1.clone()]);
    assert!(listed.next_token.is_none());

    let bare = service
        .list_events(
            &m.id,
            "alice",
            "s-1",
            ListEventsInput {
                include_payloads: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(bare.events.iter().all(|e| e.payload.is_empty()));

    assert_eq!(
        service
            .delete_event(&m.id, "alice", "s-1", &e1.event_id)
            .await
            .unwrap(),
        e1.event_id
    );
    let err = service
        .get_event(&m.id, "alice", "s-1", &e1.event_id)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ResourceNotFoundException");
    assert_eq!(
        list(&service, &m.id, "s-1", ListEventsInput::default()).await,
        vec!["second"]
    );
}

fn regex_lite_match(id: &str) -> bool {
    let Some((digits, hex)) = id.split_once('#') else {
        return false;
    };
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn list_events_pages_by_twenty_up_to_a_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "paged", vec![]).await;
    for i in 0..45 {
        service
            .create_event(&m.id, user_event("alice", "s", &format!("m{i}")))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = Vec::new();
    loop {
        let page = service
            .list_events(
                &m.id,
                "alice",
                "s",
                ListEventsInput {
                    next_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pages.push(page.events.len());
        seen.extend(page.events.iter().flat_map(texts));
        token = page.next_token;
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages, vec![20, 20, 5]);
    let expected: Vec<String> = (0..45).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected, "newest first across pages");

    let all = service
        .list_events(
            &m.id,
            "alice",
            "s",
            ListEventsInput {
                max_results: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.events.len(), 45);
    for bad in [0, 101] {
        let err = service
            .list_events(
                &m.id,
                "alice",
                "s",
                ListEventsInput {
                    max_results: Some(bad),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.error_name(), "ValidationException");
    }
    let err = service
        .list_events(
            &m.id,
            "alice",
            "s",
            ListEventsInput {
                next_token: Some("garbage".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ValidationException");
}

#[tokio::test]
async fn branches_fork_from_an_event_and_include_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "branches", vec![]).await;
    let create = |text: &str, branch: Option<Branch>| {
        let mut input = user_event("alice", "s", text);
        input.branch = branch;
        service.create_event(&m.id, input)
    };
    let _e1 = create("e1", None).await.unwrap();
    let e2 = create("e2", None).await.unwrap();
    let _e3 = create("e3", None).await.unwrap();
    let fork = |name: &str, root: Option<&str>| {
        Some(Branch {
            root_event_id: root.map(str::to_string),
            name: name.into(),
        })
    };
    let b1 = create("b1", fork("alt", Some(&e2.event_id))).await.unwrap();
    assert_eq!(
        b1.branch.as_ref().unwrap().root_event_id.as_deref(),
        Some(e2.event_id.as_str())
    );
    // Later events on the branch need only its name.
    create("b2", fork("alt", None)).await.unwrap();
    // A branch of the branch.
    create("c1", fork("deeper", Some(&b1.event_id)))
        .await
        .unwrap();

    assert_eq!(
        list(&service, &m.id, "s", branch_filter("alt", false)).await,
        vec!["b2", "b1"]
    );
    assert_eq!(
        list(&service, &m.id, "s", branch_filter("alt", true)).await,
        vec!["b2", "b1", "e2", "e1"]
    );
    assert_eq!(
        list(&service, &m.id, "s", branch_filter("deeper", true)).await,
        vec!["c1", "b1", "e2", "e1"]
    );
    assert_eq!(
        list(&service, &m.id, "s", branch_filter("main", false)).await,
        vec!["e3", "e2", "e1"]
    );
    assert_eq!(
        list(&service, &m.id, "s", ListEventsInput::default())
            .await
            .len(),
        6
    );

    // A new branch needs its root; a root must exist in this session.
    let err = create("x", fork("new", None)).await.unwrap_err();
    assert_eq!(err.error_name(), "ValidationException");
    let err = create("x", fork("new", Some("1#ff"))).await.unwrap_err();
    assert_eq!(err.error_name(), "ResourceNotFoundException");
    let other = service
        .create_event(&m.id, user_event("alice", "other", "elsewhere"))
        .await
        .unwrap();
    let err = create("x", fork("new", Some(&other.event_id)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(ValidationReason::EventInOtherSession));
    // An existing branch cannot be re-rooted.
    let err = create("x", fork("alt", Some(&other.event_id)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(ValidationReason::ResourceConflict));
}

#[tokio::test]
async fn metadata_filters_select_events() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "meta", vec![]).await;
    for (text, channel) in [("a", Some("web")), ("b", Some("phone")), ("c", None)] {
        let mut input = user_event("alice", "s", text);
        if let Some(c) = channel {
            input.metadata =
                BTreeMap::from([("channel".to_string(), MetadataValue::StringValue(c.into()))]);
        }
        service.create_event(&m.id, input).await.unwrap();
    }
    let filtered = |operator, value: Option<&str>| ListEventsInput {
        filter: Some(EventFilter {
            branch: None,
            event_metadata: Some(vec![EventMetadataFilter {
                left: LeftExpression::MetadataKey("channel".into()),
                operator,
                right: value
                    .map(|v| RightExpression::MetadataValue(MetadataValue::StringValue(v.into()))),
            }]),
        }),
        ..Default::default()
    };
    assert_eq!(
        list(
            &service,
            &m.id,
            "s",
            filtered(EventFilterOperator::EqualsTo, Some("web"))
        )
        .await,
        vec!["a"]
    );
    assert_eq!(
        list(
            &service,
            &m.id,
            "s",
            filtered(EventFilterOperator::Exists, None)
        )
        .await,
        vec!["b", "a"]
    );
    assert_eq!(
        list(
            &service,
            &m.id,
            "s",
            filtered(EventFilterOperator::NotExists, None)
        )
        .await,
        vec!["c"]
    );
    let err = service
        .list_events(
            &m.id,
            "alice",
            "s",
            filtered(EventFilterOperator::EqualsTo, None),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ValidationException");
}

#[tokio::test]
async fn client_tokens_make_create_event_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "idem", vec![]).await;
    let mut input = user_event("alice", "s", "once");
    input.client_token = Some("token-1".into());
    let a = service.create_event(&m.id, input.clone()).await.unwrap();
    let b = service.create_event(&m.id, input.clone()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        list(&service, &m.id, "s", ListEventsInput::default()).await,
        vec!["once"]
    );
    input.payload = vec![said(Role::User, "different")];
    let err = service.create_event(&m.id, input).await.unwrap_err();
    assert_eq!(
        reason(&err),
        Some(ValidationReason::IdempotentParameterMismatchException)
    );
}

#[tokio::test]
async fn sessions_and_actors_are_listed_with_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "listing", vec![]).await;
    for i in 0..25 {
        service
            .create_event(&m.id, user_event("alice", &format!("s{i:02}"), "hi"))
            .await
            .unwrap();
    }
    for actor in ["bob", "tenant/carol", "dave:1"] {
        service
            .create_event(&m.id, user_event(actor, "s", "hi"))
            .await
            .unwrap();
    }
    let first = service
        .list_sessions(&m.id, "alice", ListSessionsInput::default())
        .await
        .unwrap();
    assert_eq!(first.session_summaries.len(), 20);
    let second = service
        .list_sessions(
            &m.id,
            "alice",
            ListSessionsInput {
                next_token: first.next_token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.session_summaries.len(), 5);
    assert!(second.next_token.is_none());
    assert_eq!(second.session_summaries[4].session_id, "s24");
    assert!(
        first
            .session_summaries
            .iter()
            .all(|s| s.actor_id == "alice")
    );

    let actors = service
        .list_actors(
            &m.id,
            PageInput {
                max_results: Some(2),
                next_token: None,
            },
        )
        .await
        .unwrap();
    let rest = service
        .list_actors(
            &m.id,
            PageInput {
                max_results: Some(2),
                next_token: actors.next_token.clone(),
            },
        )
        .await
        .unwrap();
    let all: Vec<String> = actors
        .actor_summaries
        .iter()
        .chain(&rest.actor_summaries)
        .map(|a| a.actor_id.clone())
        .collect();
    assert_eq!(all, vec!["alice", "bob", "dave:1", "tenant/carol"]);
    assert!(rest.next_token.is_none());
}

#[tokio::test]
async fn expired_events_are_purged_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "expiry", vec![]).await;
    let kept = service
        .create_event(&m.id, user_event("alice", "s", "soon gone"))
        .await
        .unwrap();
    service
        .create_event(&m.id, user_event("alice", "t", "also gone"))
        .await
        .unwrap();
    assert_eq!(service.purge_expired(Timestamp::now()).await.unwrap(), 0);
    let later = Timestamp::now().plus_days(m.event_expiry_duration + 1);
    assert_eq!(service.purge_expired(later).await.unwrap(), 2);
    let err = service
        .get_event(&m.id, "alice", "s", &kept.event_id)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ResourceNotFoundException");
    assert!(
        list(&service, &m.id, "s", ListEventsInput::default())
            .await
            .is_empty()
    );
    let with_events = service
        .list_sessions(
            &m.id,
            "alice",
            ListSessionsInput {
                filter: Some(SessionFilter {
                    event_filter: Some(SessionEventFilter::HasEvents),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(with_events.session_summaries.is_empty());
    // The session itself is still known.
    let sessions = service
        .list_sessions(&m.id, "alice", ListSessionsInput::default())
        .await
        .unwrap();
    assert_eq!(sessions.session_summaries.len(), 2);
}

#[tokio::test]
async fn events_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (memory_id, event) = {
        let service = open(dir.path()).await;
        let m = memory(&service, "durable", vec![]).await;
        let e = service
            .create_event(&m.id, user_event("alice", "s", "kept"))
            .await
            .unwrap();
        (m.id, e)
    };
    let service = open(dir.path()).await;
    assert_eq!(service.get_memory(&memory_id).unwrap().name, "durable");
    assert_eq!(
        service
            .get_event(&memory_id, "alice", "s", &event.event_id)
            .await
            .unwrap(),
        event
    );
    // Ids stay unique and increasing across restarts.
    let next = service
        .create_event(&memory_id, user_event("alice", "s", "after"))
        .await
        .unwrap();
    assert_ne!(next.event_id, event.event_id);
    assert_eq!(
        list(&service, &memory_id, "s", ListEventsInput::default()).await,
        vec!["after", "kept"]
    );
}

#[tokio::test]
async fn bad_input_gets_the_api_error_names() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "strict", vec![]).await;
    let name = |r: Result<corral_memory::types::Event, MemoryError>| r.unwrap_err().error_name();

    assert_eq!(
        name(
            service
                .create_event("missing-0123456789", user_event("alice", "s", "x"))
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        name(
            service
                .create_event("bad id", user_event("alice", "s", "x"))
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        name(service.create_event(&m.id, user_event("", "s", "x")).await),
        "ValidationException"
    );
    assert_eq!(
        name(
            service
                .create_event(&m.id, user_event("alice", "bad session!", "x"))
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        name(
            service
                .create_event(&m.id, user_event("alice", "s", ""))
                .await
        ),
        "ValidationException"
    );

    let mut many = user_event("alice", "s", "x");
    many.payload = (0..101).map(|_| said(Role::User, "x")).collect();
    assert_eq!(
        name(service.create_event(&m.id, many).await),
        "ValidationException"
    );

    let mut huge = user_event("alice", "s", "x");
    huge.payload = vec![PayloadItem::Blob(serde_json::Value::String(
        "x".repeat(6 * 1024 * 1024),
    ))];
    let err = service.create_event(&m.id, huge).await.unwrap_err();
    assert_eq!(err.error_name(), "ValidationException");
    assert!(err.to_string().contains("payload"), "{err}");

    let err = service
        .get_event(&m.id, "alice", "s", "not-an-id")
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ValidationException");
    // Nothing was stored by the failed calls.
    assert!(
        list(&service, &m.id, "s", ListEventsInput::default())
            .await
            .is_empty()
    );
}
