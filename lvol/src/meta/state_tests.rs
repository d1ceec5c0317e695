//! Unit tests of [`MetaState::apply`]: every operation, and the refusals that keep a cluster
//! from being owned twice or an lvol from pointing at a free cluster.

use super::*;

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn rec(n: u128, name: &str, flags: u8, parent: Option<u128>, entries: Vec<u32>) -> LvolRecord {
    LvolRecord {
        uuid: uuid(n),
        name: name.into(),
        flags,
        clear: ClearMethod::Unmap,
        parent: parent.map(uuid),
        entries,
    }
}

fn entries(st: &MetaState, n: u128) -> Vec<u32> {
    st.lvol(&uuid(n)).unwrap().data.read().entries.clone()
}

fn state() -> MetaState {
    let mut st = MetaState::new(32, 2);
    st.apply(&Op::Create(rec(1, "thick", 0, None, vec![2, 3, 4])))
        .unwrap();
    st.apply(&Op::Create(rec(2, "thin", FLAG_THIN, None, vec![0; 4])))
        .unwrap();
    st
}

#[test]
fn create_checks_names_clusters_and_parents() {
    let mut st = state();
    assert_eq!(st.used_clusters(), 3);
    let dup_name = Op::Create(rec(3, "thin", FLAG_THIN, None, vec![0]));
    assert!(matches!(st.apply(&dup_name), Err(LvolError::Exists(_))));
    let dup_uuid = Op::Create(rec(1, "other", FLAG_THIN, None, vec![0]));
    assert!(matches!(st.apply(&dup_uuid), Err(LvolError::Exists(_))));
    let owned = Op::Create(rec(3, "x", 0, None, vec![4]));
    assert!(matches!(st.apply(&owned), Err(LvolError::Corrupt(_))));
    let twice = Op::Create(rec(3, "x", 0, None, vec![9, 9]));
    assert!(matches!(st.apply(&twice), Err(LvolError::Corrupt(_))));
    let metadata = Op::Create(rec(3, "x", 0, None, vec![1]));
    assert!(matches!(st.apply(&metadata), Err(LvolError::Corrupt(_))));
    let past_end = Op::Create(rec(3, "x", 0, None, vec![32]));
    assert!(matches!(st.apply(&past_end), Err(LvolError::Corrupt(_))));
    let orphan = Op::Create(rec(3, "x", FLAG_THIN, Some(77), vec![0]));
    assert!(matches!(st.apply(&orphan), Err(LvolError::NotFound(_))));
    assert_eq!(st.used_clusters(), 3, "failed creates change nothing");
    assert_eq!(st.lvol_count(), 2);
}

#[test]
fn map_release_resize() {
    let mut st = state();
    st.apply(&Op::Map {
        uuid: uuid(2),
        index: 1,
        cluster: 10,
    })
    .unwrap();
    assert!(st.is_used(10));
    assert!(
        st.apply(&Op::Map {
            uuid: uuid(2),
            index: 1,
            cluster: 11
        })
        .is_err(),
        "mapped twice"
    );
    assert!(
        st.apply(&Op::Map {
            uuid: uuid(2),
            index: 2,
            cluster: 3
        })
        .is_err(),
        "owned cluster"
    );
    assert!(
        st.apply(&Op::Map {
            uuid: uuid(2),
            index: 9,
            cluster: 11
        })
        .is_err(),
        "past the end"
    );
    let a = st
        .apply(&Op::Release {
            uuid: uuid(2),
            start: 0,
            count: 2,
            zero: true,
        })
        .unwrap();
    assert_eq!(a.freed, vec![10]);
    assert_eq!(entries(&st, 2), vec![ZERO, ZERO, 0, 0]);
    assert!(
        st.apply(&Op::Release {
            uuid: uuid(2),
            start: 3,
            count: 2,
            zero: false
        })
        .is_err()
    );
    // A zero marker can be mapped again (first write after write-zeroes in a clone).
    st.apply(&Op::Map {
        uuid: uuid(2),
        index: 0,
        cluster: 10,
    })
    .unwrap();
    let a = st
        .apply(&Op::Resize {
            uuid: uuid(1),
            clusters: 1,
            added: vec![],
        })
        .unwrap();
    assert_eq!(a.freed, vec![3, 4]);
    st.apply(&Op::Resize {
        uuid: uuid(1),
        clusters: 3,
        added: vec![3, 12],
    })
    .unwrap();
    assert_eq!(entries(&st, 1), vec![2, 3, 12]);
    let bad = Op::Resize {
        uuid: uuid(1),
        clusters: 5,
        added: vec![13],
    };
    assert!(
        matches!(st.apply(&bad), Err(LvolError::Corrupt(_))),
        "length mismatch"
    );
    let bad = Op::Resize {
        uuid: uuid(1),
        clusters: 4,
        added: vec![10],
    };
    assert!(
        matches!(st.apply(&bad), Err(LvolError::Corrupt(_))),
        "owned cluster"
    );
    assert_eq!(entries(&st, 1), vec![2, 3, 12]);
}

#[test]
fn rename_read_only_delete() {
    let mut st = state();
    assert!(matches!(
        st.apply(&Op::Rename {
            uuid: uuid(1),
            name: "thin".into()
        }),
        Err(LvolError::Exists(_))
    ));
    st.apply(&Op::Rename {
        uuid: uuid(1),
        name: "big".into(),
    })
    .unwrap();
    assert!(st.name_taken("big") && !st.name_taken("thick"));
    st.apply(&Op::SetReadOnly { uuid: uuid(1) }).unwrap();
    assert!(st.lvol(&uuid(1)).unwrap().data.read().is_read_only());
    let a = st.apply(&Op::Delete { uuid: uuid(1) }).unwrap();
    assert_eq!(a.freed.len(), 3);
    assert_eq!(st.used_clusters(), 0);
    assert!(matches!(
        st.apply(&Op::Delete { uuid: uuid(1) }),
        Err(LvolError::NotFound(_))
    ));
    assert!(!st.name_taken("big"));
}

#[test]
fn snapshot_clone_merge_detach() {
    let mut st = state();
    let a = st
        .apply(&Op::Snapshot {
            origin: uuid(1),
            snapshot: uuid(5),
            name: "s".into(),
        })
        .unwrap();
    assert!(a.created.is_some());
    assert_eq!(entries(&st, 5), vec![2, 3, 4]);
    assert_eq!(entries(&st, 1), vec![0, 0, 0]);
    {
        let d = st.lvol(&uuid(1)).unwrap().data.read().clone();
        assert_eq!(d.parent.as_ref().map(|p| p.uuid), Some(uuid(5)));
        assert!(d.is_thin());
    }
    let again = Op::Snapshot {
        origin: uuid(5),
        snapshot: uuid(6),
        name: "s2".into(),
    };
    assert!(matches!(
        st.apply(&again),
        Err(LvolError::InvalidArgument(_))
    ));
    st.apply(&Op::Create(rec(
        7,
        "clone",
        FLAG_THIN,
        Some(5),
        vec![0, 0, 0],
    )))
    .unwrap();
    assert!(matches!(
        st.apply(&Op::Delete { uuid: uuid(5) }),
        Err(LvolError::HasClones(2))
    ));
    assert!(matches!(
        st.apply(&Op::Merge {
            snapshot: uuid(5),
            clone: uuid(1)
        }),
        Err(LvolError::HasClones(2))
    ));
    st.apply(&Op::Map {
        uuid: uuid(7),
        index: 0,
        cluster: 20,
    })
    .unwrap();
    st.apply(&Op::Map {
        uuid: uuid(7),
        index: 1,
        cluster: 21,
    })
    .unwrap();
    st.apply(&Op::Map {
        uuid: uuid(7),
        index: 2,
        cluster: 22,
    })
    .unwrap();
    st.apply(&Op::Detach {
        uuid: uuid(7),
        thick: true,
    })
    .unwrap();
    // The origin writes cluster 1, then the snapshot merges into it.
    st.apply(&Op::Map {
        uuid: uuid(1),
        index: 1,
        cluster: 9,
    })
    .unwrap();
    let a = st
        .apply(&Op::Merge {
            snapshot: uuid(5),
            clone: uuid(1),
        })
        .unwrap();
    assert_eq!(a.freed, vec![3]);
    assert_eq!(entries(&st, 1), vec![2, 9, 4]);
    assert!(st.lvol(&uuid(5)).is_none());
    assert!(st.lvol(&uuid(1)).unwrap().data.read().parent.is_none());
    assert_eq!(st.used_clusters(), 6);
}

#[test]
fn detach_refuses_to_leave_parent_data_behind() {
    let mut st = state();
    st.apply(&Op::Snapshot {
        origin: uuid(1),
        snapshot: uuid(5),
        name: "s".into(),
    })
    .unwrap();
    assert!(matches!(
        st.apply(&Op::Detach {
            uuid: uuid(1),
            thick: false
        }),
        Err(LvolError::Corrupt(_))
    ));
    assert!(matches!(
        st.apply(&Op::Detach {
            uuid: uuid(2),
            thick: false
        }),
        Err(LvolError::InvalidArgument(_))
    ));
    // A thin lvol without a parent may turn thick once every cluster is mapped.
    assert!(
        st.apply(&Op::Detach {
            uuid: uuid(2),
            thick: true
        })
        .is_err()
    );
    for (i, c) in [10, 11, 12, 13].into_iter().enumerate() {
        st.apply(&Op::Map {
            uuid: uuid(2),
            index: u32::try_from(i).unwrap(),
            cluster: c,
        })
        .unwrap();
    }
    st.apply(&Op::Detach {
        uuid: uuid(2),
        thick: true,
    })
    .unwrap();
    assert!(!st.lvol(&uuid(2)).unwrap().data.read().is_thin());
}

#[test]
fn checkpoint_records_rebuild_the_same_state() {
    let mut st = state();
    st.apply(&Op::Snapshot {
        origin: uuid(1),
        snapshot: uuid(5),
        name: "s".into(),
    })
    .unwrap();
    st.apply(&Op::Create(rec(
        7,
        "clone",
        FLAG_THIN,
        Some(5),
        vec![0, ZERO, 0],
    )))
    .unwrap();
    let records = st.records();
    let back = MetaState::from_records(32, 2, &records).unwrap();
    let mut a = back.records();
    let mut b = records;
    a.sort_by_key(|r| r.uuid);
    b.sort_by_key(|r| r.uuid);
    assert_eq!(a, b);
    assert_eq!(back.used_clusters(), 3);
    assert_eq!(back.lvol(&uuid(5)).unwrap().data.read().children.len(), 2);
    // Damaged record sets are refused.
    let mut dup = b.clone();
    dup.push(b[0].clone());
    assert!(MetaState::from_records(32, 2, &dup).is_err());
    let mut cyc = b.clone();
    for r in &mut cyc {
        if r.uuid == uuid(5) {
            r.parent = Some(uuid(1));
        }
    }
    assert!(
        matches!(MetaState::from_records(32, 2, &cyc), Err(LvolError::Corrupt(m)) if m.contains("cycle"))
    );
}
