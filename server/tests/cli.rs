//! The `gantry` command with bad settings: one clear line naming the setting
//! and the problem, a non-zero exit, and never a panic trace.

use std::process::{Command, Stdio};

use gantry_store::testing::TempDir;

fn gantry(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

/// A fresh directory, removed when the test ends.
fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("gantry-cli-{name}"))
}

fn assert_clear_failure(code: i32, stderr: &str, setting: &str, problem: &str) {
    assert_ne!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "no panic trace: {stderr}");
    let line =
        stderr.lines().find(|l| l.starts_with("gantry: ")).unwrap_or_else(|| panic!("a gantry: line in {stderr}"));
    assert!(line.contains(setting) && line.contains(problem), "{line:?} should name {setting:?} and {problem:?}");
}

#[test]
fn a_wrong_database_url_is_one_clear_line() {
    let dir = temp_dir("url");
    let (code, stderr) =
        gantry(&["serve", "--database-url", "mysql://x@y/z", "--data-dir", dir.path.to_str().unwrap()]);
    assert_clear_failure(code, &stderr, "DATABASE_URL", "neither a postgres:// nor a sqlite: URL");
}

#[test]
fn an_unreachable_database_is_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://gantry:secret@127.0.0.1:{port}/gantry");
    let dir = temp_dir("down");
    let (code, stderr) = gantry(&["serve", "--database-url", &url, "--data-dir", dir.path.to_str().unwrap()]);
    assert_clear_failure(code, &stderr, "DATABASE_URL", "cannot open the database");
    assert!(!stderr.contains("secret"), "the password is not echoed: {stderr}");
}

/// As in a pod whose Secret has the key but no value: the variable is set
/// and empty. Gantry stops; before, it fell back to a key (or a SQLite file)
/// of the pod's own, so each replica sealed credentials with a different
/// key and lost it at its next restart.
#[test]
fn a_secret_key_or_database_url_set_but_empty_is_one_clear_line() {
    for (variable, setting) in [("GANTRY_SECRET_KEY", "GANTRY_SECRET_KEY"), ("DATABASE_URL", "DATABASE_URL")] {
        let dir = temp_dir("empty");
        let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", dir.path.to_str().unwrap()])
            .env("RUST_LOG", "error")
            .env_remove("DATABASE_URL")
            .env(variable, "")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_clear_failure(out.status.code().unwrap_or(-1), &stderr, setting, "set but empty");
        assert!(!dir.path.join("secret.key").exists(), "no key was generated with {variable} empty");
    }
}

#[test]
fn an_unwritable_data_directory_is_one_clear_line() {
    let dir = temp_dir("file");
    let file = dir.path.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let (code, stderr) = gantry(&["serve", "--data-dir", file.join("data").to_str().unwrap()]);
    assert_clear_failure(code, &stderr, "--data-dir", "cannot create");
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = temp_dir("port");
    let (code, stderr) = gantry(&["serve", "--listen", &address, "--data-dir", dir.path.to_str().unwrap()]);
    assert_clear_failure(code, &stderr, "--listen", "in use");
}

#[test]
fn admin_create_reads_the_password_from_stdin_and_refuses_a_short_one() {
    let dir = temp_dir("admin");
    let run = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["admin", "create", "--username", "root", "--data-dir", dir.path.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, stderr) = run("short\n");
    assert!(!ok);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    let (ok, stdout, _) = run("a-long-enough-password\n");
    assert!(ok);
    assert!(stdout.contains("created global admin root"));
    let (ok, _, stderr) = run("a-long-enough-password\n");
    assert!(!ok && stderr.contains("taken"), "{stderr}");
    let token = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "token",
            "create",
            "--username",
            "root",
            "--name",
            "ci",
            "--expires",
            "12h",
            "--data-dir",
            dir.path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(token.status.success());
    assert!(String::from_utf8_lossy(&token.stdout).trim().starts_with("gantry_"));
}

/// The first line of an HTTP/1.0 GET's answer, or None when nothing listens.
fn status_line(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer.lines().next().unwrap_or_default().to_string())
}

#[test]
fn on_sigterm_readiness_goes_unready_before_the_listener_closes() {
    use std::time::{Duration, Instant};
    let dir = temp_dir("drain");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "serve",
            "--listen",
            &address,
            "--data-dir",
            dir.path.to_str().unwrap(),
            "--shutdown-delay-seconds",
            "3",
        ])
        .env("RUST_LOG", "error")
        .env_remove("DATABASE_URL")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_line(&address, "/readyz").is_none_or(|line| !line.contains(" 200 ")) {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    let ready = status_line(&address, "/readyz");
    assert!(ready.as_deref().is_some_and(|l| l.contains(" 503 ")), "unready while draining: {ready:?}");
    let live = status_line(&address, "/healthz");
    assert!(live.as_deref().is_some_and(|l| l.contains(" 200 ")), "still serving while draining: {live:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exits cleanly: {status:?}");
    assert!(status_line(&address, "/healthz").is_none(), "the listener is closed");
}

#[test]
fn single_sign_on_without_its_secret_or_redirect_is_one_clear_line() {
    let dir = temp_dir("oidc");
    let data = dir.path.to_str().unwrap();
    let (code, stderr) = gantry(&["serve", "--data-dir", data, "--oidc-issuer", "https://login.example.com"]);
    assert_clear_failure(code, &stderr, "--oidc-client-secret-file", "needs");
    let secret = dir.path.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.to_str().unwrap();
    let args = [
        "serve",
        "--data-dir",
        data,
        "--oidc-issuer",
        "https://login.example.com",
        "--oidc-client-secret-file",
        secret,
    ];
    let (code, stderr) = gantry(&args);
    assert_clear_failure(code, &stderr, "--oidc-redirect-url", "needs");
    let (code, stderr) = gantry(&[&args[..], &["--oidc-redirect-url", "not a url"]].concat());
    assert_clear_failure(code, &stderr, "--oidc-redirect-url", "not a url");
    let (code, stderr) = gantry(&[
        "serve",
        "--data-dir",
        data,
        "--oidc-issuer",
        "https://login.example.com",
        "--oidc-client-secret-file",
        "/nonexistent/secret",
    ]);
    assert_clear_failure(code, &stderr, "--oidc-client-secret-file", "No such file");
}
