//! The gantry binary as an operator runs it (`gantry serve`, a process of its
//! own), and a PostgreSQL server of a test's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gantry_store::testing::TempDir;
use serde_json::Value;

/// A PostgreSQL server of this test's own (scripts/postgres.sh), so stopping
/// it disturbs no other test.
pub struct OwnPostgres {
    pub dir: TempDir,
    pub url: String,
}

impl OwnPostgres {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
    }

    fn run(command: &str, dir: &Path) -> Result<String, String> {
        let output = Command::new(Self::script()).arg(command).arg(dir).output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// None where PostgreSQL is not installed (never under the test command,
    /// which sets GANTRY_REQUIRE_POSTGRES).
    pub fn start() -> Option<OwnPostgres> {
        let dir = TempDir::new("gantry-own-pg");
        match Self::run("start", &dir.path.join("pg")) {
            Ok(url) => Some(OwnPostgres { dir, url }),
            Err(why) => {
                assert!(std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(), "PostgreSQL did not start: {why}");
                eprintln!("skipping: PostgreSQL did not start: {why}");
                None
            }
        }
    }

    pub fn down(&self) {
        Self::run("down", &self.dir.path.join("pg")).expect("stop PostgreSQL");
    }

    pub fn up(&self) {
        Self::run("up", &self.dir.path.join("pg")).expect("start PostgreSQL again");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Self::run("stop", &self.dir.path.join("pg"));
    }
}

/// How to start `gantry serve`, beyond its listener, data directory and drain delay.
#[derive(Default)]
pub struct Launch<'a> {
    /// Every context of this kubeconfig becomes a cluster.
    pub kubeconfig: Option<&'a Path>,
    /// More arguments to `gantry serve`.
    pub args: &'a [&'a str],
    /// More environment variables for the server.
    pub env: &'a [(&'a str, &'a str)],
    /// A command that runs gantry (its path and arguments follow these), such as `unshare`.
    pub through: &'a [&'a str],
}

/// The gantry binary, serving on a port of its own from a fresh SQLite data
/// directory, with a global admin `root` (password [`super::PASSWORD`]) and an
/// API token of theirs. Killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub dir: TempDir,
    pub base: String,
    pub token: String,
}

impl Served {
    /// Every context of `kubeconfig` as a cluster, live; `args` go to `gantry serve`.
    pub async fn start(kubeconfig: Option<&Path>, args: &[&str]) -> Served {
        let served = Served::spawn(&Launch { kubeconfig, args, ..Launch::default() });
        if kubeconfig.is_some() {
            served
                .wait_until("every cluster is live", Duration::from_secs(60), |clusters| {
                    let all = clusters.as_array()?;
                    (!all.is_empty() && all.iter().all(|c| c["state"] == "live")).then_some(())
                })
                .await;
        } else {
            served.wait_until("ready", Duration::from_secs(30), |_| Some(())).await;
        }
        served
    }

    /// Starts it and returns at once.
    pub fn spawn(launch: &Launch) -> Served {
        let dir = TempDir::new("gantry-served");
        Self::command(&["admin", "create", "--username", "root"], &dir.path, &format!("{}\n", super::PASSWORD));
        let token =
            Self::command(&["token", "create", "--username", "root", "--name", "t", "--expires", "1h"], &dir.path, "");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let gantry = env!("CARGO_BIN_EXE_gantry");
        let mut command = match launch.through.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(gantry);
                command
            }
            None => Command::new(gantry),
        };
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--shutdown-delay-seconds", "1", "--data-dir"])
            .arg(&dir.path)
            .args(
                launch.kubeconfig.map(|k| [std::ffi::OsStr::new("--kubeconfig"), k.as_os_str()]).into_iter().flatten(),
            )
            .args(launch.args)
            .env_remove("DATABASE_URL")
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("RUST_LOG", "warn")
            .envs(launch.env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path.join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        Served { child, dir, base: format!("http://127.0.0.1:{port}"), token }
    }

    /// The server's resident memory, in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024
    }

    /// Runs the gantry command `args` on `data_dir`, feeding it `stdin`; its output.
    pub fn command(args: &[&str], data_dir: &Path, stdin: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "gantry {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("serve.log")).unwrap_or_default()
    }

    /// `GET /api/v1/clusters` until `done` says yes; what it said, and when.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> Option<T>,
    ) -> (T, Instant) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        let mut last = Value::Null;
        loop {
            if let Ok(response) = http.get(self.url("/api/v1/clusters")).bearer_auth(&self.token).send().await
                && let Ok(clusters) = response.json::<Value>().await
            {
                if let Some(answer) = done(&clusters) {
                    return (answer, Instant::now());
                }
                last = clusters;
            }
            assert!(Instant::now() < deadline, "not within {within:?}: {what}; last answer {last}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn sigterm(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits up to `within` for the process to end.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running {within:?} after SIGTERM\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
