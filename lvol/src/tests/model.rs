//! Model-based property test: random sequences of create, write, read, deallocate, snapshot,
//! clone, inflate, decouple, resize, delete and reload, checked against a naive in-memory model
//! of what every lvol must read back (and of which calls must fail). `PROPTEST_CASES` scales
//! it (default 24 cases of up to 60 operations).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::support::*;
use crate::{LvolError, LvolStore, OpenMode, Progress, Registry};

const BLOCK: u64 = 512;
const CLUSTER_BLOCKS: u32 = 2048; // 1 MiB clusters
const MAX_LVOLS: usize = 8;

#[derive(Debug, Clone)]
enum Step {
    Create {
        thin: bool,
        clusters: u8,
    },
    Write {
        lvol: u8,
        block: u32,
        blocks: u8,
        seed: u8,
        fua: bool,
    },
    Read {
        lvol: u8,
        block: u32,
        blocks: u8,
    },
    Zero {
        lvol: u8,
        block: u32,
        blocks: u16,
        whole: bool,
    },
    Snapshot {
        lvol: u8,
    },
    Clone {
        lvol: u8,
    },
    Inflate {
        lvol: u8,
    },
    Decouple {
        lvol: u8,
    },
    Resize {
        lvol: u8,
        clusters: u8,
    },
    Delete {
        lvol: u8,
    },
    Reload,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (any::<bool>(), 1u8..=3).prop_map(|(thin, clusters)| Step::Create { thin, clusters }),
        6 => (any::<u8>(), 0u32..3 * CLUSTER_BLOCKS, 1u8..=16, any::<u8>(), any::<bool>())
            .prop_map(|(lvol, block, blocks, seed, fua)| Step::Write { lvol, block, blocks, seed, fua }),
        3 => (any::<u8>(), 0u32..3 * CLUSTER_BLOCKS, 1u8..=16)
            .prop_map(|(lvol, block, blocks)| Step::Read { lvol, block, blocks }),
        2 => (any::<u8>(), 0u32..3 * CLUSTER_BLOCKS, 1u16..=2048, any::<bool>())
            .prop_map(|(lvol, block, blocks, whole)| Step::Zero { lvol, block, blocks, whole }),
        2 => any::<u8>().prop_map(|lvol| Step::Snapshot { lvol }),
        2 => any::<u8>().prop_map(|lvol| Step::Clone { lvol }),
        1 => any::<u8>().prop_map(|lvol| Step::Inflate { lvol }),
        1 => any::<u8>().prop_map(|lvol| Step::Decouple { lvol }),
        1 => (any::<u8>(), 1u8..=4).prop_map(|(lvol, clusters)| Step::Resize { lvol, clusters }),
        2 => any::<u8>().prop_map(|lvol| Step::Delete { lvol }),
        1 => Just(Step::Reload),
    ]
}

/// What one lvol must contain.
#[derive(Debug, Clone)]
struct ModelLvol {
    data: Vec<u8>,
    read_only: bool,
    snapshot: bool,
    parent: Option<String>,
}

struct Harness {
    reg: Registry,
    store: LvolStore,
    device: crate::device::RamDevice,
    model: BTreeMap<String, ModelLvol>,
    next: u32,
}

impl Harness {
    fn pick(&self, i: u8) -> Option<String> {
        let n = self.model.len();
        (n > 0)
            .then(|| self.model.keys().nth(usize::from(i) % n).cloned())
            .flatten()
    }

    fn children(&self, name: &str) -> Vec<String> {
        self.model
            .iter()
            .filter(|(_, l)| l.parent.as_deref() == Some(name))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    async fn run(&mut self, s: &Step) {
        match s {
            Step::Create { thin: t, clusters } => self.create(*t, *clusters).await,
            Step::Write {
                lvol,
                block,
                blocks,
                seed,
                fua,
            } => {
                self.write(*lvol, *block, *blocks, *seed, *fua).await;
            }
            Step::Read {
                lvol,
                block,
                blocks,
            } => self.read(*lvol, *block, u32::from(*blocks)).await,
            Step::Zero {
                lvol,
                block,
                blocks,
                whole,
            } => self.zero(*lvol, *block, *blocks, *whole).await,
            Step::Snapshot { lvol } => self.snapshot(*lvol).await,
            Step::Clone { lvol } => self.clone_of(*lvol).await,
            Step::Inflate { lvol } => self.copy_up(*lvol, true).await,
            Step::Decouple { lvol } => self.copy_up(*lvol, false).await,
            Step::Resize { lvol, clusters } => self.resize(*lvol, *clusters).await,
            Step::Delete { lvol } => self.delete(*lvol).await,
            Step::Reload => self.reload().await,
        }
    }

    async fn create(&mut self, thin_lvol: bool, clusters: u8) {
        if self.model.len() >= MAX_LVOLS {
            return;
        }
        let name = self.fresh("v");
        let opts = if thin_lvol { thin() } else { thick() };
        self.store
            .create_lvol(&name, u64::from(clusters) * MIB, &opts)
            .await
            .unwrap();
        let data = vec![0; usize::from(clusters) * MIB as usize];
        self.model.insert(
            name,
            ModelLvol {
                data,
                read_only: false,
                snapshot: false,
                parent: None,
            },
        );
    }

    fn range(&self, name: &str, block: u32, blocks: u32) -> Option<(u64, u64)> {
        let size = self.model.get(name)?.data.len() as u64;
        let off = (u64::from(block) * BLOCK) % size;
        let len = (u64::from(blocks) * BLOCK).min(size - off);
        Some((off, len))
    }

    async fn write(&mut self, i: u8, block: u32, blocks: u8, seed: u8, fua: bool) {
        let Some(name) = self.pick(i) else { return };
        let Some((off, len)) = self.range(&name, block, u32::from(blocks)) else {
            return;
        };
        let data = pattern(u64::from(seed) << 32 | u64::from(block), len as usize);
        let d = self
            .store
            .lvol(&name)
            .unwrap()
            .open(OpenMode::Shared)
            .unwrap();
        // As the target does: at once when the lvol can, else the asynchronous write.
        let r = match (fua, d.write_now(off, &data)) {
            (false, Some(r)) => r,
            _ => d.write(off, data.clone(), fua).await,
        };
        let m = self.model.get_mut(&name).unwrap();
        if m.read_only {
            assert!(matches!(r, Err(LvolError::ReadOnly)), "{r:?}");
        } else {
            r.unwrap();
            m.data[off as usize..(off + len) as usize].copy_from_slice(&data);
        }
    }

    async fn read(&mut self, i: u8, block: u32, blocks: u32) {
        let Some(name) = self.pick(i) else { return };
        let Some((off, len)) = self.range(&name, block, blocks) else {
            return;
        };
        let d = self
            .store
            .lvol(&name)
            .unwrap()
            .open(OpenMode::Shared)
            .unwrap();
        let got = read(&d, off, len as usize).await;
        let want = &self.model[&name].data[off as usize..(off + len) as usize];
        assert!(got == want, "{name} differs at {off}+{len}");
        let mut now = bytes::BytesMut::new();
        if let Some(r) = d.read_now(off, len as usize, &mut now) {
            r.unwrap();
            assert!(
                now[..] == *want,
                "{name} differs at {off}+{len} read at once"
            );
        }
    }

    async fn zero(&mut self, i: u8, block: u32, blocks: u16, whole: bool) {
        let Some(name) = self.pick(i) else { return };
        let (block, blocks) = if whole {
            (block / CLUSTER_BLOCKS * CLUSTER_BLOCKS, CLUSTER_BLOCKS)
        } else {
            (block, u32::from(blocks))
        };
        let Some((off, len)) = self.range(&name, block, blocks) else {
            return;
        };
        let d = self
            .store
            .lvol(&name)
            .unwrap()
            .open(OpenMode::Shared)
            .unwrap();
        let r = d.deallocate(off, len).await;
        let m = self.model.get_mut(&name).unwrap();
        if m.read_only {
            assert!(matches!(r, Err(LvolError::ReadOnly)));
        } else {
            r.unwrap();
            m.data[off as usize..(off + len) as usize].fill(0);
        }
    }

    async fn snapshot(&mut self, i: u8) {
        let Some(name) = self.pick(i) else { return };
        if self.model.len() >= MAX_LVOLS {
            return;
        }
        let snap = self.fresh("s");
        let r = self.store.lvol(&name).unwrap().snapshot(&snap).await;
        let m = self.model[&name].clone();
        if m.snapshot {
            assert!(matches!(r, Err(LvolError::InvalidArgument(_))));
            return;
        }
        r.unwrap();
        let s = ModelLvol {
            data: m.data.clone(),
            read_only: true,
            snapshot: true,
            parent: m.parent.clone(),
        };
        self.model.insert(snap.clone(), s);
        self.model.get_mut(&name).unwrap().parent = Some(snap);
    }

    async fn clone_of(&mut self, i: u8) {
        let Some(name) = self.pick(i) else { return };
        if self.model.len() >= MAX_LVOLS {
            return;
        }
        let c = self.fresh("c");
        let r = self.store.lvol(&name).unwrap().create_clone(&c).await;
        let m = self.model[&name].clone();
        if !m.read_only {
            assert!(matches!(r, Err(LvolError::InvalidArgument(_))));
            return;
        }
        r.unwrap();
        let clone = ModelLvol {
            data: m.data,
            read_only: false,
            snapshot: false,
            parent: Some(name),
        };
        self.model.insert(c, clone);
    }

    async fn copy_up(&mut self, i: u8, inflate: bool) {
        let Some(name) = self.pick(i) else { return };
        let l = self.store.lvol(&name).unwrap();
        let r = if inflate {
            l.inflate(&Progress::new()).await
        } else {
            l.decouple_parent(&Progress::new()).await
        };
        let m = self.model.get_mut(&name).unwrap();
        if m.read_only {
            assert!(matches!(r, Err(LvolError::ReadOnly)), "{r:?}");
        } else if !inflate && m.parent.is_none() {
            assert!(matches!(r, Err(LvolError::InvalidArgument(_))), "{r:?}");
        } else {
            r.unwrap();
            m.parent = None;
        }
    }

    async fn resize(&mut self, i: u8, clusters: u8) {
        let Some(name) = self.pick(i) else { return };
        let r = self
            .store
            .lvol(&name)
            .unwrap()
            .resize(u64::from(clusters) * MIB)
            .await;
        let m = self.model.get_mut(&name).unwrap();
        if m.read_only {
            assert!(matches!(r, Err(LvolError::ReadOnly)));
        } else {
            r.unwrap();
            m.data.resize(usize::from(clusters) * MIB as usize, 0);
        }
    }

    async fn delete(&mut self, i: u8) {
        let Some(name) = self.pick(i) else { return };
        let r = self
            .store
            .lvol(&name)
            .unwrap()
            .delete(&Progress::new())
            .await;
        let kids = self.children(&name);
        if kids.len() > 1 {
            assert!(
                matches!(r, Err(LvolError::HasClones(n)) if n == kids.len()),
                "{r:?}"
            );
            return;
        }
        r.unwrap();
        let gone = self.model.remove(&name).unwrap();
        if let Some(k) = kids.first() {
            self.model.get_mut(k).unwrap().parent = gone.parent;
        }
    }

    async fn reload(&mut self) {
        self.reg.unload_lvstore(&self.store).await.unwrap();
        self.store = self
            .reg
            .load_lvstore(self.device.clone().into(), "ram0")
            .await
            .unwrap();
    }

    async fn check_all(&self) {
        let infos = self.store.list_lvols();
        assert_eq!(infos.len(), self.model.len());
        for info in infos {
            let m = &self.model[&info.name];
            assert_eq!(info.is_snapshot, m.snapshot, "{}", info.name);
            assert_eq!(info.parent.map(|p| p.name), m.parent, "{}", info.name);
            let d = self
                .store
                .lvol(&info.name)
                .unwrap()
                .open(OpenMode::Shared)
                .unwrap();
            let got = read(&d, 0, m.data.len()).await;
            assert!(got == m.data, "{} differs from the model", info.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn lvols_match_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (reg, store, device) = ram_store(96).await;
            let mut h = Harness { reg, store, device, model: BTreeMap::new(), next: 0 };
            h.create(true, 2).await;
            for s in &steps {
                h.run(s).await;
            }
            h.check_all().await;
            h.reload().await;
            h.check_all().await;
        });
    }
}
