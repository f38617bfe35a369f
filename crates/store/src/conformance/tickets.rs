//! Conformance cases for tickets, views, triage and concurrency.

use serde_json::json;
use switchboard_domain::{input::*, *};

use super::*;
use crate::{Idempotency, NewAttachment, NewMessage, Store, StoreError, TicketQuery, View};

pub async fn tickets_get_type_contact_and_history(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let chat = store
        .create_channel(
            a,
            NewChannel {
                kind: ChannelKind::Chat,
                name: name("Site chat"),
                settings: Default::default(),
            },
            "k1".into(),
        )
        .await
        .unwrap();
    let mut input = new_ticket("Where is my order?");
    input.channel_id = Some(chat.id);
    input.contact = Some(ContactRef {
        email: Some(email("c@x.example")),
        phone: None,
        name: Some(name("Cleo")),
    });
    input.properties.insert("language".into(), json!("fr"));
    let t = store
        .create_ticket(a, input.clone(), None, by(&admin))
        .await
        .unwrap();
    assert!(t.created);
    let t = t.value;
    assert_eq!(
        (t.source, t.ticket_type, t.status, t.stage),
        (
            TicketSource::Chat,
            TicketType::Message,
            Status::Open,
            Stage::New
        )
    );
    assert_eq!(t.owner, Owner::default());
    assert_eq!(
        store.get_ticket(a, t.id).await.unwrap(),
        t,
        "what create returns is what is stored"
    );
    let again = store
        .create_ticket(a, input, None, by(&admin))
        .await
        .unwrap()
        .value;
    assert_eq!(
        again.contact_id, t.contact_id,
        "the contact is found by e-mail, not created twice"
    );
    let contact = store.get_contact(a, t.contact_id.unwrap()).await.unwrap();
    assert_eq!(contact.name.unwrap().as_str(), "Cleo");
    let api = ticket(store, a, &admin, "API").await;
    assert_eq!(
        (api.source, api.ticket_type),
        (TicketSource::Api, TicketType::EmailOther)
    );
    let history = store.history(a, t.id).await.unwrap();
    assert!(matches!(
        history[0].event,
        HistoryEvent::Created {
            source: TicketSource::Chat,
            ..
        }
    ));
    let mut unknown = new_ticket("x");
    unknown.channel_id = Some(ChannelId(424242));
    assert!(matches!(
        store.create_ticket(a, unknown, None, by(&admin)).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn idempotent_create_returns_the_original(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let key = |fp: &str| {
        Some(Idempotency {
            key: "k-1".into(),
            fingerprint: fp.into(),
        })
    };
    let first = store
        .create_ticket(a, new_ticket("Once"), key("f"), by(&admin))
        .await
        .unwrap();
    let retry = store
        .create_ticket(a, new_ticket("Once"), key("f"), by(&admin))
        .await
        .unwrap();
    assert!(first.created && !retry.created);
    assert_eq!(first.value.id, retry.value.id);
    assert!(matches!(
        store
            .create_ticket(a, new_ticket("Other"), key("g"), by(&admin))
            .await,
        Err(StoreError::Conflict {
            field: "Idempotency-Key",
            ..
        })
    ));
    // Keys are per account.
    let (b, admin_b) = account(store, "globex").await;
    assert!(
        store
            .create_ticket(b, new_ticket("Once"), key("f"), by(&admin_b))
            .await
            .unwrap()
            .created
    );
    let all = TicketQuery {
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tickets(a, admin.id, all)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

pub async fn views_select_the_right_tickets(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let team = empty_team(store, a, "Billing").await;
    let other_team = empty_team(store, a, "Tech").await;
    let mut input = new_user("Ana", "ana@acme.example", Role::Agent);
    input.main_team_id = Some(team.id);
    let ana = store.create_user(a, input).await.unwrap();
    let actor = by(&admin);
    let mk = |s: &'static str| async move {
        store
            .create_ticket(a, new_ticket(s), None, actor)
            .await
            .unwrap()
            .value
            .id
    };
    let (unassigned, mine, team_only, other, closed) = (
        mk("u").await,
        mk("m").await,
        mk("t").await,
        mk("o").await,
        mk("c").await,
    );
    let owner = |u: Option<UserId>, t: Option<TeamId>| Owner {
        user_id: u,
        team_id: t,
    };
    store
        .set_owner(a, mine, owner(Some(ana.id), None), by(&admin))
        .await
        .unwrap();
    store
        .set_owner(a, team_only, owner(None, Some(team.id)), by(&admin))
        .await
        .unwrap();
    store
        .set_owner(a, other, owner(None, Some(other_team.id)), by(&admin))
        .await
        .unwrap();
    store
        .update_ticket(
            a,
            closed,
            TicketPatch {
                status: Some(Status::Closed),
                ..Default::default()
            },
            by(&admin),
        )
        .await
        .unwrap();
    assert_eq!(
        view(store, a, &ana, View::Unassigned).await,
        vec![other, team_only, unassigned]
    );
    assert_eq!(view(store, a, &ana, View::Mine).await, vec![mine]);
    assert_eq!(
        view(store, a, &ana, View::TeamUnassigned).await,
        vec![team_only]
    );
    // Ana's ticket took her main team, so it is in her team's open view.
    assert_eq!(
        view(store, a, &ana, View::TeamOpen).await,
        vec![team_only, mine]
    );
    assert_eq!(view(store, a, &ana, View::Closed).await, vec![closed]);
    assert_eq!(
        view(store, a, &admin, View::Mine).await,
        Vec::<TicketId>::new()
    );
    let filtered = TicketQuery {
        team_id: Some(other_team.id),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        page_ids(&store.list_tickets(a, admin.id, filtered).await.unwrap()),
        vec![other]
    );
}

pub async fn pagination_walks_every_ticket_once(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            store
                .create_ticket(a, new_ticket(&format!("t{i}")), None, by(&admin))
                .await
                .unwrap()
                .value
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = TicketQuery {
            cursor,
            limit: 3,
            ..Default::default()
        };
        let page = store.list_tickets(a, admin.id, q).await.unwrap();
        seen.extend(page_ids(&page));
        match page.next_cursor {
            Some(c) => cursor = Some(c.parse().unwrap()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

pub async fn manual_assignment_is_recorded(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    let t = ticket(store, a, &admin, "x").await;
    let to = |u: &User| Owner {
        user_id: Some(u.id),
        team_id: None,
    };
    let assigned = store
        .set_owner(a, t.id, to(&ana), by(&admin))
        .await
        .unwrap();
    assert_eq!(assigned.owner.user_id, Some(ana.id));
    assert!(assigned.assigned_at.is_some());
    let reassigned = store
        .set_owner(a, t.id, to(&bob), by(&admin))
        .await
        .unwrap();
    assert_eq!(reassigned.owner.user_id, Some(bob.id));
    let unassigned = store
        .set_owner(a, t.id, Owner::default(), by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (unassigned.owner, unassigned.assigned_at),
        (Owner::default(), None)
    );
    let changes: Vec<_> = store
        .history(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::OwnerChanged { to, reason, .. } => Some((to.user_id, reason, h.actor)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (Some(ana.id), OwnerReason::Manual, by(&admin)),
            (Some(bob.id), OwnerReason::Manual, by(&admin)),
            (None, OwnerReason::Manual, by(&admin)),
        ]
    );
    assert!(matches!(
        store
            .set_owner(
                a,
                t.id,
                Owner {
                    user_id: Some(UserId(99999)),
                    team_id: None
                },
                by(&admin)
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn a_reply_assigns_an_ownerless_ticket(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    let t = ticket(store, a, &admin, "x").await;
    let msg = |kind, u: &User| NewMessage {
        kind,
        author: by(u),
        body: "hi".into(),
        external_id: None,
    };
    let (_, after_note) = store
        .add_message(a, t.id, msg(MessageKind::Note, &bob))
        .await
        .unwrap();
    assert_eq!(after_note.owner.user_id, None, "a note does not assign");
    let (m, after_reply) = store
        .add_message(a, t.id, msg(MessageKind::Reply, &ana))
        .await
        .unwrap();
    assert_eq!(after_reply.owner.user_id, Some(ana.id));
    assert_eq!(after_reply.stage, Stage::WaitingOnContact);
    assert!(after_reply.first_reply_at.is_some());
    let (_, after_second) = store
        .add_message(a, t.id, msg(MessageKind::Reply, &bob))
        .await
        .unwrap();
    assert_eq!(
        after_second.owner.user_id,
        Some(ana.id),
        "an owned ticket keeps its owner"
    );
    let messages = store.list_messages(a, t.id).await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1], m);
    let reasons: Vec<_> = store
        .history(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::OwnerChanged { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec![OwnerReason::Reply]);
}

pub async fn status_and_stage_move_together(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let t = ticket(store, a, &admin, "x").await;
    let close = TicketPatch {
        stage: Some(Stage::Closed),
        ..Default::default()
    };
    let closed = store
        .update_ticket(a, t.id, close, by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (closed.status, closed.stage),
        (Status::Closed, Stage::Closed)
    );
    assert!(closed.closed_at.is_some());
    let reopen = TicketPatch {
        status: Some(Status::Open),
        priority: Some(Priority::High),
        ..Default::default()
    };
    let reopened = store
        .update_ticket(a, t.id, reopen, by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (reopened.status, reopened.stage, reopened.closed_at),
        (Status::Open, Stage::WaitingOnUs, None)
    );
    assert_eq!(reopened.priority, Priority::High);
    let bad = TicketPatch {
        status: Some(Status::Open),
        stage: Some(Stage::Closed),
        ..Default::default()
    };
    assert!(matches!(
        store.update_ticket(a, t.id, bad, by(&admin)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.get_ticket(a, t.id).await.unwrap(),
        reopened,
        "a refused change writes nothing"
    );
}

pub async fn concurrent_creates_are_all_kept(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let store_tasks: Vec<_> = (0..200)
        .map(|i| {
            let actor = by(&admin);
            let subject = format!("t{i}");
            // Futures run concurrently on the runtime; the writer batches them.
            async move {
                store
                    .create_ticket(a, new_ticket(&subject), None, actor)
                    .await
            }
        })
        .collect();
    let results = futures_join_all(store_tasks).await;
    let mut ids: Vec<_> = results.into_iter().map(|r| r.unwrap().value.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let all = TicketQuery {
        limit: 200,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tickets(a, admin.id, all)
            .await
            .unwrap()
            .items
            .len(),
        200
    );
}

/// Polls futures together on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// A channel's external ids: a delivery seen before is refused (so a retried
/// webhook never makes a second message), ids find their ticket within the
/// account only, and attachments are kept with their message.
pub async fn external_ids_dedupe_thread_and_keep_attachments(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let (b, _) = account(store, "globex").await;
    let t = ticket(store, a, &admin, "x").await;
    let inbound = |id: &str| NewMessage {
        kind: MessageKind::Inbound,
        author: Actor::System,
        body: "hello".into(),
        external_id: Some(id.into()),
    };
    let (m, _) = store
        .add_message(a, t.id, inbound("<m1@customer.example>"))
        .await
        .unwrap();
    let again = store
        .add_message(a, t.id, inbound("<m1@customer.example>"))
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Duplicate {
                field: "external_id",
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(
        store.list_messages(a, t.id).await.unwrap().len(),
        1,
        "nothing half-written"
    );
    let ids = vec!["<unknown@x>".to_owned(), "<m1@customer.example>".to_owned()];
    assert_eq!(
        store.find_by_external_id(a, ids.clone()).await.unwrap(),
        Some((t.id, m.id))
    );
    assert_eq!(
        store.find_by_external_id(b, ids).await.unwrap(),
        None,
        "other accounts see nothing"
    );
    let channel = store
        .create_channel(
            a,
            NewChannel {
                kind: ChannelKind::Email,
                name: name("Inbox"),
                settings: Default::default(),
            },
            "key-acme".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.channel_by_key("key-acme".into()).await.unwrap(),
        (a, channel.clone())
    );
    assert_eq!(
        store.channels_of_kind(ChannelKind::Email).await.unwrap(),
        vec![(a, channel)]
    );
    assert!(
        store
            .channels_of_kind(ChannelKind::Calls)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.channel_by_key("nope".into()).await,
        Err(StoreError::NotFound(_))
    ));
    let files = vec![
        NewAttachment {
            filename: Some("invoice.pdf".into()),
            content_type: "application/pdf".into(),
            content: Some(vec![1, 2, 3]),
            provider_ref: None,
        },
        NewAttachment {
            filename: None,
            content_type: "image/jpeg".into(),
            content: None,
            provider_ref: Some("media-7".into()),
        },
    ];
    let stored = store.add_attachments(a, m.id, files.clone()).await.unwrap();
    assert_eq!(
        (stored[0].size, stored[1].provider_ref.as_deref()),
        (3, Some("media-7"))
    );
    assert_eq!(store.attachments(a, m.id).await.unwrap(), stored);
    assert!(matches!(
        store.add_attachments(b, m.id, files).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.attachments(b, m.id).await.unwrap().is_empty());
}
