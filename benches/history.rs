//! What a revisioned change costs (§13): one transaction that takes the project's revision,
//! checks and writes the row, appends the history entry and the outbox row, then delivers the
//! outbox row — against the plain optimistic update of the same row the store had before, in
//! the same process, on SQLite and (when it runs) PostgreSQL. Also an undo.
//!
//! `cargo bench --bench history [-- --changes 500]`

use audiolab_app::Changes;
use audiolab_app::outbox::Courier;
use audiolab_domain::Volume;
use audiolab_domain::project::{NewProject, Project};
use audiolab_domain::track::{NewTrack, TrackPatch};
use audiolab_domain::user::Actor;
use audiolab_store::Store;
use audiolab_testkit::TestDatabase;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let changes: usize = args.iter().position(|a| a == "--changes").map_or(500, |i| args[i + 1].parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let sqlite = TestDatabase::sqlite();
        measure("SQLite", &sqlite, changes).await;
        match TestDatabase::postgres().await {
            Ok(postgres) => measure("PostgreSQL", &postgres, changes).await,
            Err(error) => println!("PostgreSQL: skipped ({error})"),
        }
    });
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at].as_secs_f64() * 1e3
}

async fn measure(name: &str, database: &TestDatabase, changes: usize) {
    let store: Store = database.open().await.unwrap();
    store.ensure_local_user().await.unwrap();
    let actor = Actor::local();
    let project =
        Project::create(actor.id, NewProject { name: "Bench".into(), ..Default::default() }, audiolab_domain::now())
            .unwrap();
    store.insert_project(&project).await.unwrap();
    let courier = Courier::new(store.clone(), Arc::new(audiolab_api::NoAudio), None);
    let changes_of = Changes::new(&courier, Some(&actor));
    let track = changes_of
        .create_track(project.id, NewTrack { name: "Bass".into(), ..Default::default() })
        .await
        .unwrap()
        .value;

    // The reference: the store's plain optimistic update of the same row.
    let mut plain = Vec::with_capacity(changes);
    for i in 0..changes {
        let volume = Volume::new((i % 200) as f64 / 100.0).unwrap();
        let started = Instant::now();
        store
            .update_track(track.id, |t| {
                t.volume = volume;
                Ok(())
            })
            .await
            .unwrap();
        plain.push(started.elapsed());
    }
    // The same changes as revisioned commands.
    let mut revisioned = Vec::with_capacity(changes);
    for i in 0..changes {
        let patch = TrackPatch { volume: Some(((i + 1) % 200) as f64 / 100.0 + 0.005), ..Default::default() };
        let started = Instant::now();
        changes_of.update_track(&track, &patch).await.unwrap();
        revisioned.push(started.elapsed());
    }
    let mut undos = Vec::with_capacity(changes / 5);
    for _ in 0..changes / 5 {
        let started = Instant::now();
        changes_of.undo(project.id).await.unwrap();
        undos.push(started.elapsed());
    }
    let (plain50, plain99) = (percentile(&mut plain, 0.5), percentile(&mut plain, 0.99));
    let (rev50, rev99) = (percentile(&mut revisioned, 0.5), percentile(&mut revisioned, 0.99));
    let (undo50, undo99) = (percentile(&mut undos, 0.5), percentile(&mut undos, 0.99));
    println!(
        "{name}: {changes} mixer changes — plain update p50 {plain50:.2} ms p99 {plain99:.2} ms; \
         revisioned command p50 {rev50:.2} ms p99 {rev99:.2} ms ({:.1}× the plain update at p50); \
         undo p50 {undo50:.2} ms p99 {undo99:.2} ms; outbox left {}",
        rev50 / plain50,
        store.outbox_backlog().await.unwrap(),
    );
}
