//! The private clusters of the tests that stop and restart their database stop with the
//! value that owns them, so that a failed test leaves no server running for the suite.

mod common;

use annuaire::store::embedded::EmbeddedCluster;
use common::cluster::PrivateCluster;

#[tokio::test]
async fn a_private_cluster_stops_when_dropped() {
    let cluster = PrivateCluster::start("dropped").await;
    let home = cluster.home().to_owned();
    assert!(EmbeddedCluster::status(&home).unwrap().running(), "started");
    drop(cluster);
    assert!(
        !EmbeddedCluster::status(&home).unwrap().running(),
        "stopped by the drop"
    );
    let _ = std::fs::remove_dir_all(&home);
}
