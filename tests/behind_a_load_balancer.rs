//! What operators rely on when replicas run behind a load balancer or ingress: per-citizen limits see the
//! citizen, not the proxy (only when the proxy is trusted); SIGTERM drains before the port closes; the
//! orchestrator's readiness does not drop a replica because a shared dependency is slow; and the CPU work
//! is sized to the CPUs the process may use, not the host's.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::service::{event, free_port, Service};

const PROXY_HEADER: &str = "x-forwarded-for";

/// Issues one certificate; the path of its citizen PDF link.
fn pdf_path(service: &Service, hcid: &str) -> String {
    let document = service
        .post_json(
            "/ddcc/generateHealthCertificate",
            Some(&service.api_key()),
            &event(hcid, &[]),
        )
        .json();
    let link = document["link"]
        .as_array()
        .expect("the document's links")
        .iter()
        .find(|l| l["relation"] == "certificate")
        .expect("the PDF link")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    link.trim_start_matches(&service.url).to_owned()
}

fn download(service: &Service, path: &str, forwarded_for: Option<&str>) -> u16 {
    let client = reqwest::blocking::Client::new();
    let mut request = client.get(format!("{}{path}", service.url));
    if let Some(address) = forwarded_for {
        request = request.header(PROXY_HEADER, address);
    }
    request
        .send()
        .expect("the service answers")
        .status()
        .as_u16()
}

#[test]
fn behind_a_trusted_proxy_each_citizen_has_their_own_download_limit() {
    let service = Service::start(&[
        ("DDCC_DOWNLOAD_RATE", "2/h".into()),
        // The test's requests come from 127.0.0.1: it plays the ingress.
        ("DDCC_TRUSTED_PROXIES", "127.0.0.0/8, ::1".into()),
    ]);
    let path = pdf_path(&service, "LB-RATE-0001");
    // Two citizens, one proxy: each gets the whole allowance.
    for citizen in ["203.0.113.10", "203.0.113.11"] {
        assert_eq!(download(&service, &path, Some(citizen)), 200);
        assert_eq!(download(&service, &path, Some(citizen)), 200);
        assert_eq!(download(&service, &path, Some(citizen)), 429, "{citizen}");
    }
    // A citizen cannot escape by prepending an address: the proxy's rightmost entry is the one believed.
    assert_eq!(
        download(&service, &path, Some("198.51.100.1, 203.0.113.10")),
        429
    );
}

#[test]
fn an_untrusted_peer_cannot_choose_its_address() {
    let service = Service::start(&[("DDCC_DOWNLOAD_RATE", "2/h".into())]);
    let path = pdf_path(&service, "LB-RATE-0002");
    assert_eq!(download(&service, &path, Some("203.0.113.20")), 200);
    assert_eq!(download(&service, &path, Some("203.0.113.21")), 200);
    // Without DDCC_TRUSTED_PROXIES the header is ignored: all three are 127.0.0.1.
    assert_eq!(download(&service, &path, Some("203.0.113.22")), 429);
}

#[test]
fn sigterm_drains_before_the_listener_closes() {
    let mut service = Service::start(&[("DDCC_SHUTDOWN_DELAY", "4".into())]);
    assert_eq!(service.get("/health/replica", None).status, 200);
    let pid = service.pid().unwrap().to_string();
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // While draining: not ready, yet still serving.
    let deadline = Instant::now() + Duration::from_secs(2);
    let ready = loop {
        let ready = service.get("/health/ready", None);
        if ready.status == 503 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ready.status, 503, "{}", service.log_text());
    assert!(String::from_utf8_lossy(&ready.body).contains("shutting down"));
    assert_eq!(service.get("/health/replica", None).status, 503);
    assert_eq!(service.get("/trust/jwks.json", None).status, 200);
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "checked within the delay"
    );
    let status = service
        .sigterm_and_wait(Duration::from_secs(20))
        .expect("the service exits after the delay");
    assert!(status.success(), "{status:?}\n{}", service.log_text());
    assert!(
        sent.elapsed() >= Duration::from_secs(4),
        "the port stayed open for DDCC_SHUTDOWN_DELAY"
    );
    assert!(service.log_text().contains("draining"));
}

#[test]
fn a_dependency_outage_keeps_the_replica_in_the_load_balancer() {
    // A FHIR server that is not there: every replica would fail a readiness probe that checked it.
    let nowhere = format!("http://127.0.0.1:{}/fhir", free_port());
    let service = Service::start(&[("DDCC_FHIR_URL", nowhere)]);
    let ready = service.get("/health/ready", None);
    assert_eq!(ready.status, 503, "operators still see the dependency");
    assert!(String::from_utf8_lossy(&ready.body).contains("store"));
    // The orchestrator's probe: the replica stays, and callers get a 503 naming the dependency instead of a
    // connection refused by an empty load balancer.
    assert_eq!(service.get("/health/replica", None).status, 200);
    let issued = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&service.api_key()),
        &event("LB-DOWN-0001", &[]),
    );
    assert_eq!(issued.status, 503);
    assert!(issued.outcome_text().to_lowercase().contains("fhir"));
}

/// Starts `serve` under `wrapper` (e.g. taskset) and returns the start-up line that says how many threads do
/// CPU work.
fn workers_line(wrapper: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (program, args) = wrapper.split_first().unwrap_or((&"", &[]));
    let mut command = if program.is_empty() {
        Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
    } else {
        let mut c = Command::new(program);
        c.args(args).arg(env!("CARGO_BIN_EXE_ddcc-mediator"));
        c
    };
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DDCC_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DDCC_DATA_DIR", dir.path().join("data"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("serve starts");
    // Logs go to stderr.
    let logs = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(logs).lines().map_while(Result::ok) {
            if line.contains("threads for CPU work") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    line.expect("serve logs its CPU threads at start-up")
}

#[test]
fn cpu_work_is_sized_to_the_cpus_the_process_may_use() {
    // One CPU by affinity, as a cpuset or a 1-CPU cgroup quota gives a container on a bigger host: std reads
    // both (sched_getaffinity, cgroup cpu.max / cpu.cfs_quota_us).
    let pinned = workers_line(&["taskset", "-c", "0"], &[]);
    assert!(pinned.contains("workers=1"), "{pinned}");
    let set = workers_line(&[], &[("DDCC_WORKERS", "3")]);
    assert!(
        set.contains("workers=3") && set.contains("DDCC_WORKERS"),
        "{set}"
    );
}
