//! Store behaviour, run once against SQLite and once against a fresh PostgreSQL database.

use audiolab_domain::clip::{Clip, ClipPatch, ClipStatus, NewClip};
use audiolab_domain::job::{ImportPayload, ImportResult, Job, JobKind, JobPayload, JobResult, JobStatus};
use audiolab_domain::loop_region::{LoopRegion, LoopRegionPatch, NewLoopRegion};
use audiolab_domain::project::{NewProject, Project, ProjectPatch};
use audiolab_domain::recording::{RecordingSession, RecordingStatus, Take};
use audiolab_domain::track::{NewTrack, TrackPatch};
use audiolab_domain::user::LOCAL_USER_ID;
use audiolab_domain::*;
use audiolab_store::{Page, Store, StoreError};
use audiolab_testkit::TestDatabase;

/// Declares each test twice: `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = audiolab_testkit::TestDatabase::sqlite();
                super::$name(super::prepare(&db).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running for store tests");
                super::$name(super::prepare(&db).await).await;
            })*
        }
    };
}

on_both_backends!(
    projects_round_trip_every_field,
    projects_are_listed_by_owner_in_pages,
    deleting_a_project_removes_its_tracks_and_clips,
    track_indexes_are_unique_and_at_most_thirty_two,
    tracks_for_a_missing_project_are_refused,
    mixer_changes_persist,
    concurrent_edits_are_not_lost,
    clips_round_trip_and_invalid_edits_change_nothing,
    loop_regions_crud,
    a_project_has_at_most_one_enabled_loop,
    recording_sessions_move_between_states_once,
    takes_are_unique_per_pass,
    a_recordings_takes_are_stored_and_finished_all_or_nothing,
    jobs_finish_once,
    identical_mixdowns_requested_at_once_share_one_job,
    migrations_are_idempotent,
    projects_go_to_the_least_loaded_live_node_and_move_when_it_goes_quiet,
    device_offsets_belong_to_a_project_default_to_zero_and_stay_within_a_second,
    client_latencies_belong_to_a_user_and_a_device_and_say_how_they_were_found,
    a_full_node_loses_a_project_to_a_node_with_room,
    the_takes_of_a_dead_node_are_claimed_once_by_a_live_one,
    usernames_are_unique_and_found_by_name,
    tokens_are_found_by_hash_listed_by_kind_and_revoked_by_their_owner,
    members_have_one_role_each_and_one_owner_per_project,
    a_change_commits_its_rows_entry_and_outbox_together_or_nothing,
    outbox_rows_are_leased_retried_and_removed_once_delivered,
    a_tracks_comp_is_stored_changed_in_history_and_undone,
);

/// A track's comp (§14) is a field of the track: stored whole, changed by a commit (a stale
/// one refused), listed in the history entry's fields, and put back by its reverse.
async fn a_tracks_comp_is_stored_changed_in_history_and_undone(store: Store) {
    use audiolab_domain::comp::{Comp, Segment};
    use audiolab_domain::history::{Change, ChangeKind, Row, RowChange};
    let p = project(&store, "Comped").await;
    let vox = store.create_track(p.id, named("Vox")).await.unwrap();
    assert_eq!(vox.comp, Comp::default(), "a new track has no comp");
    let (a, b) = (audiolab_domain::TakeId::new(), audiolab_domain::TakeId::new());
    let mut comped = vox.clone();
    comped.comp.select(a, Frames(48_000), Frames(96_000));
    comped.comp.select(b, Frames(60_000), Frames(70_000));
    comped.comp.crossfade_ms = 25;
    let change = Change::new(
        ChangeKind::CompChanged,
        "comp",
        vec![RowChange::updated(Row::Track(vox.clone()), Row::Track(comped.clone()))],
    );
    let (entry, _) = store.commit(p.id, None, &change).await.unwrap();
    let stored = store.get_track(vox.id).await.unwrap().unwrap();
    assert_eq!(stored.comp, comped.comp);
    assert_eq!(
        stored.comp.segments,
        [
            Segment { start: Frames(48_000), end: Frames(60_000), take_id: a },
            Segment { start: Frames(60_000), end: Frames(70_000), take_id: b },
            Segment { start: Frames(70_000), end: Frames(96_000), take_id: a },
        ]
    );
    let listed = store.history(p.id, 10, None).await.unwrap();
    assert_eq!(listed[0].revision, entry.revision);
    assert_eq!(listed[0].rows[0].fields().map(|f| f.into_iter().collect::<Vec<_>>()), Some(vec!["comp".to_owned()]));
    // Made from the track before the comp: stale.
    assert!(matches!(store.commit(p.id, None, &change).await, Err(StoreError::Stale(_))));
    let undo =
        Change::new(ChangeKind::Undo, "undo", vec![RowChange::updated(Row::Track(stored), Row::Track(vox.clone()))]);
    store.commit(p.id, None, &undo).await.unwrap();
    assert_eq!(store.get_track(vox.id).await.unwrap().unwrap().comp, Comp::default());
}

/// A commit whose second row breaks a rule leaves nothing behind: not the first row, not a
/// revision, not an entry, not an outbox row. A commit made from a row that changed since is
/// refused as stale, and a good one writes all of it.
async fn a_change_commits_its_rows_entry_and_outbox_together_or_nothing(store: Store) {
    use audiolab_domain::history::{Change, ChangeKind, Row, RowChange};
    let p = project(&store, "Atomic").await;
    let bass = store.create_track(p.id, named("Bass")).await.unwrap();
    let mut louder = bass.clone();
    louder.volume = Volume::new(0.5).unwrap();
    // Index 0 is Bass's: the second row cannot be written.
    let clash = audiolab_domain::track::Track::create(
        p.id,
        NewTrack { track_index: Some(0), ..named("Clash") },
        bass.index,
        now(),
    )
    .unwrap();
    let rows = vec![
        RowChange::updated(Row::Track(bass.clone()), Row::Track(louder.clone())),
        RowChange::created(Row::Track(clash)),
    ];
    let change = Change::new(ChangeKind::TrackUpdated, "two rows", rows);
    assert!(matches!(store.commit(p.id, None, &change).await, Err(StoreError::Stale(_))), "the slot is taken");
    assert_eq!(store.get_track(bass.id).await.unwrap().unwrap().volume.get(), 1.0, "the first row rolled back");
    assert_eq!(store.project_revision(p.id).await.unwrap(), 0);
    assert!(store.history(p.id, 10, None).await.unwrap().is_empty());
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);

    let good = Change::new(
        ChangeKind::TrackUpdated,
        "louder",
        vec![RowChange::updated(Row::Track(bass.clone()), Row::Track(louder.clone()))],
    );
    let (entry, outgoing) = store.commit(p.id, None, &good).await.unwrap();
    assert_eq!((entry.revision, outgoing.len()), (1, 1));
    assert_eq!(store.get_track(bass.id).await.unwrap().unwrap().volume.get(), 0.5);
    assert_eq!(store.history(p.id, 10, None).await.unwrap()[0].rows, good.rows);
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);
    // The same change again was made from a row that is no longer there.
    assert!(matches!(store.commit(p.id, None, &good).await, Err(StoreError::Stale(_))));
    assert_eq!(store.project_revision(p.id).await.unwrap(), 1);
}

/// A committed change's outbox rows wait out the committer's grace period, then one
/// dispatcher at a time takes them; a failed one comes back when its retry is due.
async fn outbox_rows_are_leased_retried_and_removed_once_delivered(store: Store) {
    use audiolab_domain::history::Outgoing;
    use std::time::Duration;
    let p = project(&store, "Outbox").await;
    let job = JobId::new();
    store.enqueue(Some(p.id), &[Outgoing::PushJob { job_id: job }], false).await.unwrap();
    let taken = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].message, Outgoing::PushJob { job_id: job });
    assert!(store.claim_outbox(10, Duration::from_secs(30)).await.unwrap().is_empty(), "leased to the first");
    store.outbox_failed(taken[0].id, chrono::Utc::now() - chrono::Duration::seconds(1), "redis down").await.unwrap();
    let again = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2), "due again after the failure");
    store.outbox_delivered(again[0].id).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
}

fn user(name: &str) -> audiolab_domain::user::User {
    audiolab_domain::user::User {
        id: UserId::new(),
        username: name.into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: now(),
    }
}

async fn usernames_are_unique_and_found_by_name(store: Store) {
    let ada = user("ada");
    store.insert_user(&ada).await.unwrap();
    assert_eq!(store.user_by_name("ada").await.unwrap(), Some(ada.clone()));
    assert_eq!(store.get_user(ada.id).await.unwrap().map(|u| u.username), Some("ada".into()));
    assert!(store.user_by_name("bob").await.unwrap().is_none());
    assert!(matches!(store.insert_user(&user("ada")).await, Err(StoreError::Conflict(_))));
}

async fn tokens_are_found_by_hash_listed_by_kind_and_revoked_by_their_owner(store: Store) {
    use audiolab_domain::user::{ApiToken, TokenKind};
    let (ada, bob) = (user("ada"), user("bob"));
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    let token = |owner: UserId, kind, hash: &str, expires_in: i64| ApiToken {
        id: TokenId::new(),
        user_id: owner,
        kind,
        name: format!("{hash} token"),
        secret_hash: hash.into(),
        created_at: now(),
        expires_at: now() + chrono::Duration::seconds(expires_in),
        last_used_at: None,
        address: Some("10.0.0.1".into()),
        user_agent: Some("curl/8".into()),
    };
    let login = token(ada.id, TokenKind::Session, "h-login", 3600);
    let key = token(ada.id, TokenKind::ApiKey, "h-key", 3600);
    let stale = token(ada.id, TokenKind::ApiKey, "h-stale", -3600);
    for t in [&login, &key, &stale] {
        store.insert_token(t).await.unwrap();
    }
    let (found, owner) = store.token_by_hash("h-key").await.unwrap().unwrap();
    assert_eq!((found.id, found.kind, owner.username.as_str()), (key.id, TokenKind::ApiKey, "ada"));
    assert_eq!(found.expires_at.timestamp_micros(), key.expires_at.timestamp_micros());
    assert!(store.token_by_hash("h-unknown").await.unwrap().is_none());
    let keys = store.list_tokens(ada.id, TokenKind::ApiKey).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), [key.id, stale.id]);
    // Only its owner revokes a token.
    assert!(!store.delete_token(bob.id, key.id).await.unwrap());
    assert!(store.delete_token(ada.id, key.id).await.unwrap());
    assert!(store.token_by_hash("h-key").await.unwrap().is_none());
    assert_eq!(store.delete_expired_tokens(now()).await.unwrap(), 1);
    assert!(store.token_by_hash("h-stale").await.unwrap().is_none());
    assert!(store.token_by_hash("h-login").await.unwrap().is_some());

    // A session remembers where it was last used; only live tokens count as live.
    store.touch_token(login.id, "10.0.0.2", now()).await.unwrap();
    let (touched, _) = store.token_by_hash("h-login").await.unwrap().unwrap();
    assert_eq!((touched.address.as_deref(), touched.user_agent.as_deref()), (Some("10.0.0.2"), Some("curl/8")));
    assert!(touched.last_used_at.is_some());
    assert!(store.token_is_live(login.id, now()).await.unwrap());
    assert!(!store.token_is_live(key.id, now()).await.unwrap(), "revoked");
    // Revoking by kind touches only that kind; a new password keeps one token and revokes the rest.
    let second = token(ada.id, TokenKind::Session, "h-second", 3600);
    let script = token(ada.id, TokenKind::ApiKey, "h-script", 3600);
    let bobs = token(bob.id, TokenKind::Session, "h-bob", 3600);
    for t in [&second, &script, &bobs] {
        store.insert_token(t).await.unwrap();
    }
    assert!(!store.delete_token_of_kind(ada.id, script.id, TokenKind::Session).await.unwrap());
    let mut ended = store.delete_tokens_of_kind(ada.id, TokenKind::Session).await.unwrap();
    ended.sort();
    let mut sessions = vec![login.id, second.id];
    sessions.sort();
    assert_eq!(ended, sessions);
    assert!(store.token_is_live(script.id, now()).await.unwrap(), "API keys stay");
    let third = token(ada.id, TokenKind::Session, "h-third", 3600);
    store.insert_token(&third).await.unwrap();
    let revoked = store.set_password(ada.id, "$argon2id$new", Some(third.id)).await.unwrap();
    assert_eq!(revoked, vec![script.id]);
    assert!(store.token_is_live(third.id, now()).await.unwrap());
    assert!(store.token_is_live(bobs.id, now()).await.unwrap(), "another user's tokens stay");
    let changed = store.get_user(ada.id).await.unwrap().unwrap();
    assert_eq!(changed.password_hash.as_deref(), Some("$argon2id$new"));
}

async fn members_have_one_role_each_and_one_owner_per_project(store: Store) {
    use audiolab_domain::user::Role;
    let p = project(&store, "Shared").await;
    let (ada, bob) = (user("ada"), user("bob"));
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    // The creator is the owner member; others join in a role.
    assert_eq!(store.member_role(p.id, LOCAL_USER_ID).await.unwrap(), Some(Role::Owner));
    assert_eq!(store.member_role(p.id, ada.id).await.unwrap(), None);
    store.insert_member(p.id, ada.id, Role::Viewer, now()).await.unwrap();
    assert!(matches!(store.insert_member(p.id, ada.id, Role::Editor, now()).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.insert_member(p.id, bob.id, Role::Owner, now()).await, Err(StoreError::Conflict(_))));
    assert!(store.update_member(p.id, ada.id, Role::Editor).await.unwrap());
    assert!(!store.update_member(p.id, bob.id, Role::Editor).await.unwrap());
    let members = store.list_members(p.id).await.unwrap();
    let roles: Vec<_> = members.iter().map(|m| (m.username.as_str(), m.role)).collect();
    assert_eq!(roles, [("local", Role::Owner), ("ada", Role::Editor)]);
    // A member sees the project in their list; removing them takes it away.
    assert_eq!(store.list_projects(ada.id, Page::default(), None).await.unwrap().total, 1);
    assert!(store.delete_member(p.id, ada.id).await.unwrap());
    assert_eq!(store.list_projects(ada.id, Page::default(), None).await.unwrap().total, 0);
    // Deleting the project removes its members.
    store.insert_member(p.id, bob.id, Role::Viewer, now()).await.unwrap();
    store.delete_project(p.id).await.unwrap();
    assert_eq!(store.member_role(p.id, bob.id).await.unwrap(), None);
}

async fn a_full_node_loses_a_project_to_a_node_with_room(store: Store) {
    use audiolab_store::NodeLoad;
    let fresh = std::time::Duration::from_secs(60);
    let (full, roomy) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let p = project(&store, "Moving").await;
    store.heartbeat_node(full, "http://full:1", NodeLoad { engines: 2, max_engines: 2 }).await.unwrap();
    assert_eq!(store.node_for_project(p.id, fresh).await.unwrap().unwrap().id, full, "the only node");
    assert_eq!(store.move_project(p.id, full, fresh).await.unwrap(), None, "no node has room");
    store.heartbeat_node(roomy, "http://roomy:1", NodeLoad { engines: 0, max_engines: 2 }).await.unwrap();
    let q = project(&store, "New").await;
    assert_eq!(
        store.node_for_project(q.id, fresh).await.unwrap().unwrap().id,
        roomy,
        "new projects go where there is room"
    );
    let moved = store.move_project(p.id, full, fresh).await.unwrap().unwrap();
    assert_eq!(moved.id, roomy);
    assert_eq!(store.live_host_of(p.id, fresh).await.unwrap(), Some(roomy));
    // A second move from the old node changes nothing: the project is no longer there.
    assert_eq!(store.move_project(p.id, full, fresh).await.unwrap().unwrap().id, roomy);
}

async fn the_takes_of_a_dead_node_are_claimed_once_by_a_live_one(store: Store) {
    use audiolab_store::NodeLoad;
    let (dead, alive, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let p = project(&store, "Orphans").await;
    let track = store.create_track(p.id, named("Vox")).await.unwrap();
    store.heartbeat_node(dead, "http://dead:1", NodeLoad::default()).await.unwrap();
    let orphan = session(&p, track.id);
    store.insert_recording_session_on(&orphan, Some(dead)).await.unwrap();
    let serve_take = session(&p, track.id);
    store.insert_recording_session(&serve_take).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    store.heartbeat_node(alive, "http://alive:1", NodeLoad::default()).await.unwrap();
    store.heartbeat_node(other, "http://other:1", NodeLoad::default()).await.unwrap();
    let stale = std::time::Duration::from_secs(1);
    let mine = store.claim_orphaned_recordings(alive, stale).await.unwrap();
    assert_eq!(mine, vec![orphan.id], "the dead node's take, not the one without a node");
    assert!(store.claim_orphaned_recordings(other, stale).await.unwrap().is_empty(), "claimed once");
    assert!(store.claim_orphaned_recordings(alive, stale).await.unwrap().is_empty(), "its own takes are not orphans");
}

async fn device_offsets_belong_to_a_project_default_to_zero_and_stay_within_a_second(store: Store) {
    let (mine, theirs) = (project(&store, "Mine").await, project(&store, "Theirs").await);
    assert_eq!(store.device_offset_us(mine.id, "mock_0").await.unwrap(), 0);
    store.set_device_offset_us(mine.id, "mock_0", -2_500).await.unwrap();
    store.set_device_offset_us(mine.id, "mock_0", 1_250).await.unwrap();
    assert_eq!(store.device_offset_us(mine.id, "mock_0").await.unwrap(), 1_250);
    assert_eq!(store.device_offset_us(theirs.id, "mock_0").await.unwrap(), 0, "another project is not moved");
    assert_eq!(store.device_offset_us(mine.id, "mock_1").await.unwrap(), 0);
    assert!(store.set_device_offset_us(mine.id, "mock_1", 2_000_000).await.is_err(), "more than a second is refused");
    assert_eq!(store.device_offsets(mine.id).await.unwrap(), [("mock_0".to_owned(), 1_250)].into_iter().collect());
    assert!(store.set_device_offset_us(ProjectId::new(), "mock_0", 1).await.is_err(), "no such project");
    store.delete_project(mine.id).await.unwrap();
    assert!(store.device_offsets(mine.id).await.unwrap().is_empty(), "gone with the project");
}

async fn client_latencies_belong_to_a_user_and_a_device_and_say_how_they_were_found(store: Store) {
    use audiolab_domain::device::LatencySource;
    let ada = user("ada");
    store.insert_user(&ada).await.unwrap();
    assert_eq!(store.client_latency(ada.id, "client:laptop").await.unwrap(), None);
    store.set_client_latency(ada.id, "client:laptop", 52_000, LatencySource::Estimated, Some(-4_000)).await.unwrap();
    let set = store.set_client_latency(ada.id, "client:laptop", 43_438, LatencySource::Measured, None).await.unwrap();
    let stored = store.client_latency(ada.id, "client:laptop").await.unwrap().unwrap();
    assert_eq!(stored, set);
    assert_eq!((stored.latency_us, stored.source, stored.frames(48_000)), (43_438, LatencySource::Measured, 2_085));
    assert_eq!(stored.offset_us, -4_000, "the offset stays when a new round trip is stored without one");
    // Another user's device of the same name, and another device, are their own.
    assert_eq!(store.client_latency(LOCAL_USER_ID, "client:laptop").await.unwrap(), None);
    assert_eq!(store.client_latency(ada.id, "client:phone").await.unwrap(), None);
    assert!(store.set_client_latency(ada.id, "client:phone", 1_500_000, LatencySource::Manual, None).await.is_err());
    assert!(store.set_client_latency(ada.id, "client:phone", -1, LatencySource::Manual, None).await.is_err());
    assert!(store.set_client_latency(ada.id, "client:phone", 1, LatencySource::Manual, Some(1_000_001)).await.is_err());
}

async fn prepare(db: &TestDatabase) -> Store {
    let store = db.open().await.expect("open test database");
    store.ensure_local_user().await.expect("local user");
    store
}

async fn project(store: &Store, name: &str) -> Project {
    let new = NewProject { name: name.into(), sample_rate: Some(44_100), tempo: Some(97.5), ..Default::default() };
    let project = Project::create(LOCAL_USER_ID, new, audiolab_domain::now()).unwrap();
    store.insert_project(&project).await.unwrap();
    project
}

fn named(name: &str) -> NewTrack {
    NewTrack { name: name.into(), ..Default::default() }
}

async fn clip(store: &Store, project: &Project, track: TrackId, start: i64, length: i64) -> Clip {
    let new = NewClip {
        project_id: project.id,
        track_id: track,
        take_id: None,
        name: "Take".into(),
        start: Frames(start),
        length: Frames(length),
        source_sample_rate: 44_100,
        channels: 2,
    };
    let clip = Clip::create(new, audiolab_domain::now()).unwrap();
    store.insert_clip(&clip).await.unwrap();
    clip
}

async fn projects_round_trip_every_field(store: Store) {
    let created = project(&store, "Round trip").await;
    let loaded = store.get_project(created.id).await.unwrap().expect("project exists");
    assert_eq!(loaded.name, "Round trip");
    assert_eq!(loaded.sample_rate.hz(), 44_100);
    assert_eq!(loaded.tempo.bpm(), 97.5);
    assert_eq!(loaded.time_signature.to_string(), "4/4");
    assert_eq!(loaded.owner_id, LOCAL_USER_ID);
    // Timestamps survive to the microsecond on both engines.
    assert_eq!(loaded.created_at.timestamp_micros(), created.created_at.timestamp_micros());
    assert!(store.get_project(ProjectId::new()).await.unwrap().is_none());
}

async fn projects_are_listed_by_owner_in_pages(store: Store) {
    for i in 0..5 {
        project(&store, &format!("P{i}")).await;
    }
    let page = store.list_projects(LOCAL_USER_ID, Page { limit: 2, offset: 1 }, None).await.unwrap();
    assert_eq!(page.total, 5);
    let names: Vec<_> = page.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["P1", "P2"]);
    // Keyset: the page after the last one seen, whatever came before.
    let next = store.list_projects(LOCAL_USER_ID, Page { limit: 2, offset: 0 }, Some(page.items[1].id)).await.unwrap();
    let names: Vec<_> = next.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["P3", "P4"]);
    let end = store.list_projects(LOCAL_USER_ID, Page { limit: 2, offset: 0 }, Some(next.items[1].id)).await.unwrap();
    assert!(end.items.is_empty());
    let nobody = store.list_projects(UserId::new(), Page::default(), None).await.unwrap();
    assert_eq!((nobody.items.len(), nobody.total), (0, 0));
}

async fn deleting_a_project_removes_its_tracks_and_clips(store: Store) {
    let p = project(&store, "Doomed").await;
    let track = store.create_track(p.id, named("Drums")).await.unwrap();
    let c = clip(&store, &p, track.id, 0, 100).await;
    assert!(store.delete_project(p.id).await.unwrap());
    assert!(store.get_track(track.id).await.unwrap().is_none());
    assert!(store.get_clip(c.id).await.unwrap().is_none());
    assert!(!store.delete_project(p.id).await.unwrap(), "second delete finds nothing");
}

async fn track_indexes_are_unique_and_at_most_thirty_two(store: Store) {
    let p = project(&store, "Full").await;
    let explicit = NewTrack { track_index: Some(5), ..named("Five") };
    assert_eq!(store.create_track(p.id, explicit.clone()).await.unwrap().index.get(), 5);
    match store.create_track(p.id, explicit).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("track_index 5"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Automatic indexes fill the gaps around 5.
    let first = store.create_track(p.id, named("Auto")).await.unwrap();
    assert_eq!(first.index.get(), 0);
    for i in 0..30 {
        store.create_track(p.id, named(&format!("T{i}"))).await.unwrap();
    }
    assert_eq!(store.count_tracks(p.id).await.unwrap(), 32);
    match store.create_track(p.id, named("Thirty-third")).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("32"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let listed = store.list_tracks(p.id, Page { limit: 100, offset: 0 }).await.unwrap();
    let indexes: Vec<_> = listed.items.iter().map(|t| t.index.get()).collect();
    assert_eq!(indexes, (0..32).collect::<Vec<u8>>());
    // Out-of-range indexes never reach the database.
    let bad = NewTrack { track_index: Some(32), ..named("Bad") };
    assert!(matches!(store.create_track(p.id, bad).await, Err(StoreError::Invalid(e)) if e.field == "track_index"));
}

async fn tracks_for_a_missing_project_are_refused(store: Store) {
    let result = store.create_track(ProjectId::new(), NewTrack { track_index: Some(0), ..named("Orphan") }).await;
    assert!(matches!(result, Err(StoreError::MissingParent("project"))), "{result:?}");
}

async fn mixer_changes_persist(store: Store) {
    let p = project(&store, "Mix").await;
    let track = store.create_track(p.id, named("Keys")).await.unwrap();
    let patch =
        TrackPatch { volume: Some(0.8), pan: Some(-0.5), muted: Some(true), soloed: Some(true), ..Default::default() };
    store.update_track(track.id, |t| t.apply(&patch, audiolab_domain::now())).await.unwrap();
    let loaded = store.get_track(track.id).await.unwrap().unwrap();
    assert_eq!((loaded.volume.get(), loaded.pan.get(), loaded.muted, loaded.soloed), (0.8, -0.5, true, true));
    // A rejected edit leaves the stored track as it was.
    let bad = TrackPatch { volume: Some(3.0), ..Default::default() };
    assert!(matches!(
        store.update_track(track.id, |t| t.apply(&bad, audiolab_domain::now())).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.get_track(track.id).await.unwrap().unwrap().volume.get(), 0.8);
    // Moving onto a taken index is a conflict.
    store.create_track(p.id, NewTrack { track_index: Some(7), ..named("Seven") }).await.unwrap();
    let onto_seven = TrackPatch { track_index: Some(7), ..Default::default() };
    assert!(matches!(
        store.update_track(track.id, |t| t.apply(&onto_seven, audiolab_domain::now())).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(store.update_track(TrackId::new(), |_| Ok(())).await, Err(StoreError::NotFound("track"))));
}

async fn concurrent_edits_are_not_lost(store: Store) {
    let p = project(&store, "Busy").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let bump = |project: &mut Project| {
                        let tempo = project.tempo.bpm() + 1.0;
                        project
                            .apply(&ProjectPatch { tempo: Some(tempo), ..Default::default() }, audiolab_domain::now())
                    };
                    match store.update_project(p.id, bump).await {
                        Err(StoreError::Conflict(_)) => continue,
                        other => break other.unwrap(),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.get_project(p.id).await.unwrap().unwrap().tempo.bpm(), 97.5 + 8.0);
}

async fn clips_round_trip_and_invalid_edits_change_nothing(store: Store) {
    let p = project(&store, "Clips").await;
    let track = store.create_track(p.id, named("Gtr")).await.unwrap();
    let later = clip(&store, &p, track.id, 88_200, 44_100).await;
    let earlier = clip(&store, &p, track.id, 0, 44_100).await;
    let listed = store.list_clips(track.id, Page::default()).await.unwrap();
    assert_eq!(listed.items.iter().map(|c| c.id).collect::<Vec<_>>(), [earlier.id, later.id]);
    assert_eq!(listed.total, 2);

    let rate = p.sample_rate;
    let edit = ClipPatch { start: Some(1.0), gain_db: Some(-6.0), fade_in: Some(0.1), ..Default::default() };
    let edited = store.update_clip(later.id, |c| c.apply(&edit, rate, audiolab_domain::now())).await.unwrap();
    assert_eq!((edited.start, edited.fade_in), (Frames(44_100), Frames(4_410)));
    let loaded = store.get_clip(later.id).await.unwrap().unwrap();
    assert_eq!(loaded, edited);
    assert_eq!(loaded.status, ClipStatus::Processing);

    let too_long = ClipPatch { length: Some(5.0), ..Default::default() };
    assert!(matches!(
        store.update_clip(later.id, |c| c.apply(&too_long, rate, audiolab_domain::now())).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.get_clip(later.id).await.unwrap().unwrap(), edited);
    assert_eq!(store.project_clips(p.id).await.unwrap().len(), 2);
    assert!(store.delete_clip(earlier.id).await.unwrap());
    assert!(store.get_clip(earlier.id).await.unwrap().is_none());
}

async fn loop_regions_crud(store: Store) {
    let p = project(&store, "Loops").await;
    let new = NewLoopRegion { start: 1.0, end: 2.0, repeat_count: Some(3), ..Default::default() };
    let region = LoopRegion::create(p.id, p.sample_rate, new, audiolab_domain::now()).unwrap();
    store.insert_loop_region(&region).await.unwrap();
    assert_eq!(store.get_loop_region(region.id).await.unwrap().unwrap(), region);
    let endless = LoopRegionPatch { repeat_count: Some(None), enabled: Some(true), ..Default::default() };
    let updated = store
        .update_loop_region(region.id, |r| r.apply(&endless, p.sample_rate, audiolab_domain::now()))
        .await
        .unwrap();
    assert_eq!((updated.repeat_count, updated.enabled), (None, true));
    assert_eq!(store.list_loop_regions(p.id, audiolab_store::Page::ALL).await.unwrap(), vec![updated]);
    assert!(store.delete_loop_region(region.id).await.unwrap());
    assert!(store.list_loop_regions(p.id, audiolab_store::Page::ALL).await.unwrap().is_empty());
}

async fn a_project_has_at_most_one_enabled_loop(store: Store) {
    let p = project(&store, "Loops").await;
    let region = |start: f64, enabled: bool| {
        let new = NewLoopRegion { start, end: start + 1.0, enabled: Some(enabled), ..Default::default() };
        LoopRegion::create(p.id, p.sample_rate, new, audiolab_domain::now()).unwrap()
    };
    let enabled = |store: Store| async move {
        let regions = store.list_loop_regions(p.id, audiolab_store::Page::ALL).await.unwrap();
        regions.into_iter().filter(|r| r.enabled).map(|r| r.id).collect::<Vec<_>>()
    };
    let (first, second) = (region(1.0, true), region(3.0, false));
    store.insert_loop_region(&first).await.unwrap();
    store.insert_loop_region(&second).await.unwrap();
    // Enabling another region, by the transport or by an edit, disables the first.
    assert_eq!(store.enable_loop_region(p.id, Some(second.id)).await.unwrap().map(|r| r.id), Some(second.id));
    assert_eq!(enabled(store.clone()).await, vec![second.id]);
    let on = LoopRegionPatch { enabled: Some(true), ..Default::default() };
    store.update_loop_region(first.id, |r| r.apply(&on, p.sample_rate, audiolab_domain::now())).await.unwrap();
    assert_eq!(enabled(store.clone()).await, vec![first.id]);
    let third = region(5.0, true);
    store.insert_loop_region(&third).await.unwrap();
    assert_eq!(enabled(store.clone()).await, vec![third.id]);
    // Disabling leaves none; an unknown region changes nothing.
    assert_eq!(store.enable_loop_region(p.id, None).await.unwrap(), None);
    assert!(enabled(store.clone()).await.is_empty());
    store.enable_loop_region(p.id, Some(first.id)).await.unwrap();
    let unknown = audiolab_domain::LoopRegionId::new();
    assert!(matches!(store.enable_loop_region(p.id, Some(unknown)).await, Err(StoreError::NotFound(_))));
    assert_eq!(enabled(store.clone()).await, vec![first.id], "a refused enable rolls back");
}

fn session(project: &Project, track: TrackId) -> RecordingSession {
    let now = audiolab_domain::now();
    let id = RecordingSessionId::new();
    RecordingSession {
        id,
        project_id: project.id,
        track_id: track,
        device_id: "mock_0".into(),
        status: RecordingStatus::Recording,
        start: Frames(48_000),
        applied_offset: Frames(-256),
        capture_key: format!("captures/{id}"),
        error: None,
        created_at: now,
        updated_at: now,
    }
}

async fn recording_sessions_move_between_states_once(store: Store) {
    let p = project(&store, "Rec").await;
    let track = store.create_track(p.id, named("Vox")).await.unwrap();
    let s = session(&p, track.id);
    store.insert_recording_session(&s).await.unwrap();
    assert_eq!(store.get_recording_session(s.id).await.unwrap().unwrap(), s);
    assert_eq!(store.recording_sessions_with_status(RecordingStatus::Recording).await.unwrap().len(), 1);
    assert!(
        store
            .transition_recording_session(s.id, RecordingStatus::Recording, RecordingStatus::Stopped, None)
            .await
            .unwrap()
    );
    // A second stop finds it no longer recording.
    assert!(
        !store
            .transition_recording_session(s.id, RecordingStatus::Recording, RecordingStatus::Stopped, None)
            .await
            .unwrap()
    );
    assert!(store.recording_sessions_with_status(RecordingStatus::Recording).await.unwrap().is_empty());
    assert_eq!(store.get_recording_session(s.id).await.unwrap().unwrap().status, RecordingStatus::Stopped);

    // Stopping records the take's placement, once.
    let other = session(&p, track.id);
    store.insert_recording_session(&other).await.unwrap();
    assert!(store.stop_recording_session(other.id, Frames(48_123), Frames(-256)).await.unwrap());
    assert!(!store.stop_recording_session(other.id, Frames(1), Frames(1)).await.unwrap());
    let stopped = store.get_recording_session(other.id).await.unwrap().unwrap();
    assert_eq!(
        (stopped.status, stopped.start, stopped.applied_offset),
        (RecordingStatus::Stopped, Frames(48_123), Frames(-256))
    );
}

async fn takes_are_unique_per_pass(store: Store) {
    let p = project(&store, "Takes").await;
    let track = store.create_track(p.id, named("Bass")).await.unwrap();
    let s = session(&p, track.id);
    store.insert_recording_session(&s).await.unwrap();
    let take = |pass| Take {
        id: TakeId::new(),
        session_id: s.id,
        track_id: track.id,
        clip_id: ClipId::new(),
        pass_index: pass,
        capture_offset: Frames(i64::from(pass) * 96_000),
        length: Frames(96_000),
        created_at: audiolab_domain::now(),
    };
    let (first, second) = (take(0), take(1));
    store.insert_take(&first).await.unwrap();
    store.insert_take(&second).await.unwrap();
    assert!(matches!(store.insert_take(&take(1)).await, Err(StoreError::Conflict(_))));
    assert_eq!(
        store.list_takes(track.id, audiolab_store::Page::ALL).await.unwrap(),
        vec![second, first],
        "newest first"
    );
}

async fn a_recordings_takes_are_stored_and_finished_all_or_nothing(store: Store) {
    let p = project(&store, "Atomic").await;
    let track = store.create_track(p.id, named("Vox")).await.unwrap();
    let s = session(&p, track.id);
    store.insert_recording_session(&s).await.unwrap();
    let piece = |pass: u32| {
        let new = NewClip {
            project_id: p.id,
            track_id: track.id,
            take_id: None,
            name: format!("Take {pass}"),
            start: Frames(0),
            length: Frames(48_000),
            source_sample_rate: 48_000,
            channels: 1,
        };
        let clip = Clip::create(new, audiolab_domain::now()).unwrap();
        let take = Take {
            id: TakeId::new(),
            session_id: s.id,
            track_id: track.id,
            clip_id: clip.id,
            pass_index: pass,
            capture_offset: Frames(i64::from(pass) * 48_000),
            length: Frames(48_000),
            created_at: audiolab_domain::now(),
        };
        (take, clip)
    };
    let first = piece(0);
    store.insert_takes(std::slice::from_ref(&first)).await.unwrap();
    // A batch whose second take repeats a pass is refused whole: its first clip is not kept.
    let (fresh, repeated) = (piece(1), piece(0));
    assert!(matches!(store.insert_takes(&[fresh.clone(), repeated]).await, Err(StoreError::Conflict(_))));
    assert!(store.get_clip(fresh.1.id).await.unwrap().is_none());
    assert_eq!(store.list_takes(track.id, audiolab_store::Page::ALL).await.unwrap(), vec![first.0.clone()]);

    let ready = vec![audiolab_store::ReadyClip {
        clip_id: first.1.id,
        audio_key: "projects/p/takes/s.wav".into(),
        source_offset: Frames(0),
        length: Frames(40_000),
        source_length: Frames(40_000),
        peaks_key: "projects/p/peaks/s".into(),
        loudness_lufs: Some(-20.0),
    }];
    // Not finalizing yet: nothing changes.
    assert!(!store.finish_capture(s.id, RecordingStatus::Saved, &ready).await.unwrap());
    assert_eq!(store.get_clip(first.1.id).await.unwrap().unwrap().status, ClipStatus::Processing);
    store.stop_recording_session(s.id, Frames(0), Frames(0)).await.unwrap();
    assert!(
        store
            .transition_recording_session(s.id, RecordingStatus::Stopped, RecordingStatus::Finalizing, None)
            .await
            .unwrap()
    );
    assert!(store.finish_capture(s.id, RecordingStatus::Saved, &ready).await.unwrap());
    let clip = store.get_clip(first.1.id).await.unwrap().unwrap();
    assert_eq!(
        (clip.status, clip.length, clip.audio_key.as_deref()),
        (ClipStatus::Ready, Frames(40_000), Some("projects/p/takes/s.wav"))
    );
    assert_eq!(store.get_recording_session(s.id).await.unwrap().unwrap().status, RecordingStatus::Saved);
}

/// A mixdown job's payload at the default settings, told apart by its fingerprint.
fn mixdown_payload(fingerprint: &str) -> JobPayload {
    let options =
        audiolab_domain::mixdown::MixdownOptions::from_request(&Default::default(), SampleRate::DEFAULT).unwrap();
    JobPayload::Mixdown(audiolab_domain::mixdown::MixdownPayload { options, fingerprint: fingerprint.into() })
}

async fn identical_mixdowns_requested_at_once_share_one_job(store: Store) {
    let p = project(&store, "Mixes").await;
    let request = || Job::queued(Some(p.id), mixdown_payload("abc"), audiolab_domain::now());
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (store, job) = (store.clone(), request());
            tokio::spawn(async move { store.insert_mixdown_job(&job, "abc").await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let created: Vec<_> = outcomes.iter().filter(|(_, created)| created.is_some()).map(|(job, _)| job.id).collect();
    assert_eq!(created.len(), 1, "one request renders, the others reuse it");
    assert!(outcomes.iter().all(|(job, _)| job.id == created[0]));
    assert_eq!(store.project_jobs(p.id, JobKind::Mixdown, audiolab_store::Page::ALL).await.unwrap().len(), 1);
    // Once it failed, the same request renders again; another fingerprint is another job.
    assert!(store.finish_job(created[0], JobStatus::Failed, None, Some("disk full")).await.unwrap());
    let (again, fresh) = store.insert_mixdown_job(&request(), "abc").await.unwrap();
    assert!(fresh.is_some() && again.id != created[0]);
    assert!(store.insert_mixdown_job(&request(), "other").await.unwrap().1.is_some());
}

async fn jobs_finish_once(store: Store) {
    let p = project(&store, "Jobs").await;
    let job = Job::queued(Some(p.id), mixdown_payload("wav"), audiolab_domain::now());
    store.insert_job(&job).await.unwrap();
    let import = ImportPayload { clip_id: ClipId::new(), upload_key: "uploads/x/source".into(), extension: None };
    let other = Job::queued(Some(p.id), JobPayload::Import(import), audiolab_domain::now());
    store.insert_job(&other).await.unwrap();
    assert_eq!(store.unfinished_jobs(JobKind::Mixdown).await.unwrap(), [job.clone()]);
    assert!(store.set_job_progress(job.id, 0.5).await.unwrap());
    assert_eq!(store.unfinished_jobs(JobKind::Mixdown).await.unwrap().len(), 1, "running is unfinished");
    let running = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!((running.status, running.progress), (JobStatus::Running, 0.5));
    assert_eq!(running.payload, mixdown_payload("wav"));
    let import = ImportResult {
        clip_id: ClipId::new(),
        frames: 10,
        source_sample_rate: 44_100,
        channels: 2,
        loudness_lufs: Some(-14.0),
    };
    let result = JobResult::Import(import);
    assert!(store.finish_job(job.id, JobStatus::Succeeded, Some(&result), None).await.unwrap());
    assert!(!store.finish_job(job.id, JobStatus::Failed, None, Some("late retry")).await.unwrap());
    assert!(!store.set_job_progress(job.id, 0.1).await.unwrap());
    let done = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.progress, done.result, done.error), (JobStatus::Succeeded, 1.0, Some(result), None));
    assert!(store.unfinished_jobs(JobKind::Mixdown).await.unwrap().is_empty());
    let later = Job::queued(Some(p.id), mixdown_payload("later"), audiolab_domain::now());
    store.insert_job(&later).await.unwrap();
    let mixdowns: Vec<_> = store
        .project_jobs(p.id, JobKind::Mixdown, audiolab_store::Page::ALL)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(mixdowns, [later.id, job.id], "the project's mixdowns, newest first");
}

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.ensure_local_user().await.unwrap(), LOCAL_USER_ID);
    store.ping().await.unwrap();
}

async fn projects_go_to_the_least_loaded_live_node_and_move_when_it_goes_quiet(store: Store) {
    use std::time::Duration;
    let fresh = Duration::from_secs(60);
    let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let p1 = project(&store, "One").await;
    let p2 = project(&store, "Two").await;
    assert_eq!(store.node_for_project(p1.id, fresh).await.unwrap(), None, "no node alive");
    store.heartbeat_node(a, "http://a:1", Default::default()).await.unwrap();
    store.heartbeat_node(b, "http://b:1", Default::default()).await.unwrap();
    let first = store.node_for_project(p1.id, fresh).await.unwrap().unwrap();
    let second = store.node_for_project(p2.id, fresh).await.unwrap().unwrap();
    assert_ne!(first.id, second.id, "the second project goes to the idle node");
    assert_eq!(store.node_for_project(p1.id, fresh).await.unwrap().unwrap().id, first.id, "assignments stick");
    assert_eq!(store.live_host_of(p1.id, fresh).await.unwrap(), Some(first.id));
    // The first node goes quiet: only the other one heartbeats from now on.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store.heartbeat_node(second.id, &second.url, Default::default()).await.unwrap();
    assert_eq!(store.live_host_of(p1.id, Duration::from_secs(1)).await.unwrap(), None, "its host went quiet");
    let moved = store.node_for_project(p1.id, Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(moved.id, second.id);
    store.remove_node(second.id).await.unwrap();
    assert_eq!(
        store.node_for_project(p2.id, fresh).await.unwrap().unwrap().id,
        first.id,
        "a removed node's projects move"
    );
}
