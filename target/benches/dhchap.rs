//! CPU cost of one DH-HMAC-CHAP transaction on the controller, per DH group: the ephemeral key
//! pair made at Negotiate and the shared secret computed at the Reply (the two modular
//! exponentiations), plus the hashing of the host's response. This runs on a blocking thread
//! once per queue a host connects (Linux: one admin queue and one per CPU), so it bounds how
//! fast a target can accept authenticating hosts, not I/O.
//!
//! Run: `cargo bench -p lamina-target --bench dhchap`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lamina_target::plane::auth::chap::{self, HashFn, Transcript};
use lamina_target::plane::auth::dh::{DhGroup, KeyPair};

fn transaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("dhchap_controller_transaction");
    g.sample_size(10);
    for group in DhGroup::ALL {
        // The host's public value, made once: its cost is the host's.
        let host = KeyPair::generate(group);
        g.bench_function(group.name(), |b| {
            b.iter(|| {
                let hash = HashFn::Sha512;
                let mine = KeyPair::generate(group);
                let z = match (&mine, &host) {
                    (Some(m), Some(h)) => m.shared_secret(h.public()).ok(),
                    _ => None,
                };
                let ca = chap::augment_challenge(hash, &[7; 64], z.as_deref().map(|z| &z[..]));
                let t = Transcript {
                    seqnum: 1,
                    t_id: 1,
                    sc_c: 0,
                    hostnqn: "nqn.2014-08.org.nvmexpress:uuid:h",
                    subnqn: "nqn.2016-06.io.lamina:s",
                };
                black_box(chap::host_response(hash, &[1; 64], &ca, &t));
            });
        });
    }
    g.finish();
}

criterion_group!(benches, transaction);
criterion_main!(benches);
