//! Child processes that cannot outlive the testbed.
//!
//! Every child is spawned from one dedicated thread per testbed (the [`Supervisor`]) with
//! PR_SET_PDEATHSIG(SIGKILL): Linux sends that signal when the *thread* that forked the
//! child exits, so spawning from a tokio worker (which may be parked and replaced) would kill
//! children at random, while a thread owned by the testbed lives exactly as long as it. When
//! the whole test process dies, even by SIGKILL, the thread dies with it and so do the
//! children. Each child also leads its own process group, so teardown signals the group.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// What to run, and where its stdout and stderr go.
pub(crate) struct SpawnSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

enum Msg {
    Spawn(SpawnSpec, tokio::sync::oneshot::Sender<std::io::Result<Child>>),
    /// Append a line of fake training output to this CRI log file every few seconds.
    Trickle(PathBuf),
    Stop,
}

pub(crate) struct Supervisor {
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Supervisor {
    pub fn start() -> Result<Supervisor> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("testbed-supervisor".into())
            .spawn(move || supervise(rx))
            .map_err(Error::io("starting the supervisor thread"))?;
        Ok(Supervisor { tx, thread: Mutex::new(Some(thread)) })
    }

    pub async fn spawn(&self, spec: SpawnSpec) -> Result<Child> {
        let context = format!("starting {}", spec.program.display());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Spawn(spec, reply))
            .map_err(|_| Error::io(context.clone())(std::io::Error::other("the testbed is shut down")))?;
        match answer.await {
            Ok(result) => result.map_err(Error::io(context)),
            Err(_) => Err(Error::io(context)(std::io::Error::other("the supervisor thread stopped"))),
        }
    }

    pub fn trickle(&self, log: PathBuf) {
        let _ = self.tx.send(Msg::Trickle(log));
    }

    /// Ends the thread. Call after every child has been stopped: their PDEATHSIG fires now.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

fn supervise(rx: mpsc::Receiver<Msg>) {
    let mut trickles: Vec<(PathBuf, u64)> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Msg::Spawn(spec, reply)) => {
                let _ = reply.send(spawn_child(&spec));
            }
            Ok(Msg::Trickle(path)) => trickles.push((path, 0)),
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for (path, step) in &mut trickles {
                    *step += 1;
                    let _ = append_training_line(path, *step);
                }
            }
        }
    }
}

fn spawn_child(spec: &SpawnSpec) -> std::io::Result<Child> {
    let log = File::create(&spec.log)?;
    let log_err = log.try_clone()?;
    let parent = std::process::id();
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// One running (or stopped) control-plane process.
pub(crate) struct Process {
    child: Mutex<Option<Child>>,
    pub log: PathBuf,
}

impl Process {
    pub fn new(child: Child, log: PathBuf) -> Process {
        Process { child: Mutex::new(Some(child)), log }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited on its own.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Puts a newly started child in place of a stopped one.
    pub fn replace(&self, child: Child) {
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    /// Sends `signal` to the running child's process group (SIGSTOP, SIGCONT).
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            signal_group(child, signal);
        }
    }

    /// Takes the child out, for stopping; afterwards `exit_status` is `None`.
    fn take(&self) -> Option<Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Stops processes: SIGTERM to each process group, SIGKILL to what is left after `grace`,
/// then reaps them all. kube-apiserver can linger in graceful shutdown for a minute, hence
/// the short grace.
pub(crate) fn stop_all(processes: &[&Process], grace: Duration) {
    let mut children: Vec<Child> = processes.iter().filter_map(|p| p.take()).collect();
    for child in &children {
        signal_group(child, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if children.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    for child in &mut children {
        if !matches!(child.try_wait(), Ok(Some(_))) {
            signal_group(child, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

/// Kills `processes` with SIGKILL at once, as a machine's death would, and
/// reaps them.
pub(crate) fn kill_all(processes: &[&Process]) {
    let mut children: Vec<Child> = processes.iter().filter_map(|p| p.take()).collect();
    for child in &mut children {
        signal_group(child, libc::SIGKILL);
        let _ = child.wait();
    }
}

fn signal_group(child: &Child, signal: libc::c_int) {
    // SAFETY: plain kill(2); the child has not been reaped, so its pid (= group id) is ours.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), signal);
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// The last `lines` lines of a log file.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Lines of these components are rarely over 1 KiB.
    let start = len.saturating_sub(lines as u64 * 1024);
    let _ = file.seek(SeekFrom::Start(start));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loopback port nobody in this process has been given before, free right now.
pub(crate) fn free_port() -> Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..100 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io("finding a free port"))?;
        let port = listener.local_addr().map_err(Error::io("finding a free port"))?.port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return Ok(port);
        }
    }
    Err(Error::io("finding a free port")(std::io::Error::other("no unused port after 100 tries")))
}

/// Writes the fake training output pods "print", in the CRI log format KWOK reads.
pub(crate) fn write_training_log(path: &Path) -> Result<()> {
    let mut text = String::new();
    let now = rfc3339(std::time::SystemTime::now());
    text.push_str(&format!("{now} stdout F starting training: model=resnet-50 world_size=8 batch_size=256\n"));
    for step in 1..=20u64 {
        text.push_str(&format!("{now} stdout F {}\n", training_line(step)));
    }
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

fn append_training_line(path: &Path, step: u64) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    let now = rfc3339(std::time::SystemTime::now());
    writeln!(file, "{now} stdout F {}", training_line(20 + step))
}

fn training_line(step: u64) -> String {
    let epoch = step / 100 + 1;
    let loss = 2.5 / (1.0 + step as f64 / 50.0) + 0.05;
    format!(
        "epoch {epoch} step {step} loss {loss:.4} lr 3.0e-04 throughput {} samples/s gpu_util 97%",
        1480 + (step * 37) % 90
    )
}

/// RFC 3339 UTC timestamp with nanoseconds, as CRI log lines carry.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = std::time::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn ports_are_not_handed_out_twice() {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 50);
    }
}
