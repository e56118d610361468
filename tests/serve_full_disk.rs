//! The real `sediment serve` starts on a full volume and serves every
//! acknowledged record (DESIGN §1 principle 7: a full disk degrades writes and
//! never stops reads or startup).
//!
//! A broker on a small tmpfs (mounted by the test, which runs as root in CI)
//! takes acknowledged records on many partitions and is killed with SIGKILL,
//! so the restart runs recovery. A filler then takes every byte left on the
//! volume, and the broker is started again with its stderr redirected to a
//! file on that full volume: it must print `listening on`, keep running
//! (logging to a full stderr does not panic it), and a consumer must read back
//! every acknowledged record, in order, on every partition.
//!
//! Where mounting is refused, the restart runs instead under `RLIMIT_FSIZE`
//! of one page (util-linux `prlimit`, SIGXFSZ ignored so writes fail with
//! EFBIG), which refuses every write past the first page of any file, the log
//! on stderr included. Set `SEDIMENT_DISK_FULL_FORCE_RLIMIT=1` to run that variant.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::client::read_back;
use common::BrokerProcess;
use sediment_client::{ClientBuilder, NewTopic, ProducerConfig, ProducerRecord};

/// Skip the tmpfs mount and run the RLIMIT_FSIZE variant.
const FORCE_RLIMIT_ENV: &str = "SEDIMENT_DISK_FULL_FORCE_RLIMIT";
const TOPIC: &str = "orders";
const PARTITIONS: i32 = 12;
const RECORDS: usize = 240;
const VALUE_BYTES: usize = 3000;

/// A tmpfs mounted over a directory, unmounted on drop (also when a test panics).
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Kills the broker on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fills whatever space is left on the volume holding `path`.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 4096];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the volume: {e}"),
        }
    }
    let _ = file.sync_all();
}

/// Produces keyed records and returns the keys acknowledged per partition, in offset order.
async fn produce(bootstrap: &str) -> BTreeMap<i32, Vec<(i64, String)>> {
    let client = ClientBuilder::new(bootstrap).build().await.unwrap();
    client
        .admin()
        .create_topic(NewTopic::new(TOPIC, PARTITIONS))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut futures = Vec::new();
    for i in 0..RECORDS {
        let key = format!("key-{i}");
        let value = vec![b'a' + (i % 26) as u8; VALUE_BYTES];
        let record = ProducerRecord::keyed(TOPIC, key.clone(), value);
        futures.push((key, producer.enqueue(record).await.unwrap()));
    }
    let mut acked: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (key, future) in futures {
        let meta = future.await.unwrap();
        acked
            .entry(meta.partition)
            .or_default()
            .push((meta.offset, key));
    }
    for keys in acked.values_mut() {
        keys.sort();
    }
    acked
}

/// Starts `sediment serve` on `data_dir` with stderr into `stderr_file`
/// (optionally under an RLIMIT_FSIZE soft limit) and returns it with its address.
fn start_serve(data_dir: &Path, stderr_file: &Path, fsize_limit: Option<u64>) -> (Serve, String) {
    let bin = env!("CARGO_BIN_EXE_sediment");
    let mut command = match fsize_limit {
        Some(limit) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(r#"trap '' XFSZ; exec prlimit --fsize="$0" -- "$@""#)
                .arg(format!("{limit}:unlimited"))
                .arg(bin);
            sh
        }
        None => Command::new(bin),
    };
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_file)
        .unwrap();
    let mut child = command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("SEDIMENT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn the sediment binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let mut serve = Serve(child);
    let addr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => addr,
        Err(_) => {
            let status = serve.0.try_wait().ok().flatten();
            panic!("the broker did not start on the full volume (exit: {status:?})");
        }
    };
    (serve, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_acked_records_and_a_full_volume_when_serve_restarts_then_it_starts_and_every_acked_record_reads_back(
) {
    let tmp = tempfile::tempdir().unwrap();
    let volume = tmp.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let mount = if std::env::var_os(FORCE_RLIMIT_ENV).is_some() {
        Err(format!("{FORCE_RLIMIT_ENV} is set"))
    } else {
        TmpfsMount::mount(&volume, "48m")
    };
    let fsize_limit = match &mount {
        Ok(_) => None,
        Err(why) => {
            eprintln!("tmpfs mount refused ({why}); restarting under RLIMIT_FSIZE instead");
            Some(4096)
        }
    };
    let data_dir = volume.join("data");

    let mut broker = BrokerProcess::start_in(&data_dir, &[]);
    let acked = produce(&broker.bootstrap()).await;
    assert!(acked.len() > 1, "records spread over several partitions");
    broker.kill9();
    drop(broker);

    let stderr_file = volume.join("serve.log");
    std::fs::File::create(&stderr_file).unwrap();
    if mount.is_ok() {
        fill(&volume.join("filler"));
    }

    let (mut serve, addr) = start_serve(&data_dir, &stderr_file, fsize_limit);
    let client = ClientBuilder::new(addr.as_str()).build().await.unwrap();
    for (partition, keys) in &acked {
        let records = read_back(&client, TOPIC, *partition, keys.len()).await;
        let got: Vec<(i64, String)> = records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(&got[..keys.len()], &keys[..], "partition {partition}");
    }
    assert!(
        serve.0.try_wait().unwrap().is_none(),
        "the broker keeps running while its log cannot be written"
    );
}
