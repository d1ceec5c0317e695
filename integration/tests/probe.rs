//! `lamina-probe` against the in-process mock target, with and without digests and SQ flow
//! control, so the probe itself is known to work before it runs in the VM.

mod support;

use clap::Parser;
use lamina_integration::probe::{self, ProbeArgs};
use support::mock::{MOCK_NQN, MockConfig, MockTarget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_against_a_well_behaved_target() {
    for extra in [&[][..], &["--digests", "--disable-sqflow"][..]] {
        // 64 MiB namespace (what the probe needs), small MAXH2CDATA so that big writes take several H2CData PDUs.
        let target = MockTarget::start(MockConfig {
            blocks: 64 * 256,
            maxh2cdata: 16 * 1024,
            ..MockConfig::default()
        })
        .await;
        let addr = target.addr().to_string();
        let mut args = vec![
            "lamina-probe",
            "-a",
            &addr,
            "-n",
            MOCK_NQN,
            "--burst",
            "128",
        ];
        args.extend_from_slice(extra);
        let args = ProbeArgs::try_parse_from(args).unwrap();
        let summary = probe::run(&args).await.unwrap();
        assert!(summary.contains("SQ flow control"), "{summary}");
    }
}
