#!/usr/bin/env python3
"""Runs a script's steps with progress people can follow.

Each step is a shell command with a title and an estimate. The terminal shows
one line per step (what it is doing, how long it took, about how long the rest
will take) instead of compiler output; every step's output goes to its own log
file, whose path is printed. The same state is written as JSON to a progress
file, which `gantry serve --progress-file` shows as a banner on the overview
and clusters pages.

A step's command may print lines of the form `progress: <text>` (on stdout or
stderr): the latest is shown as the step's current detail.

A step that fails is named with the last lines of its log and what to do;
the run stops. Steps whose result lasts (installs) are remembered in a
journal when they succeed and skipped on the next run, so a run after a
failure resumes after the last step that succeeded. The journal also keeps
each step's last duration, which becomes its estimate.

The rules (states, estimates, resuming) are the pure functions and the
`Run` class below; `scripts/test_progress.py` tests them.
"""

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

PENDING, RUNNING, DONE, SKIPPED, FAILED = "pending", "running", "done", "skipped", "failed"
PROGRESS_PREFIX = "progress: "
LOG_LINES_ON_FAILURE = 15


@dataclass
class Step:
    """One step of a run. `command` runs in bash. `estimate` is seconds on a
    fresh machine of the project's kind (2 cores). `lasts`: its success lasts
    across runs (an install), so the journal skips it next time. `ready`: for
    a step that starts a service which keeps running, a function that says
    when it is up; the step is done then and the process lives on. `hint`:
    what to do when it fails. `show_output`: print its output when done (say,
    passwords shown once). `note`: printed when it succeeds. `key`: a lasting
    step is done again when its key (say, a tool's version) changes."""

    name: str
    title: str
    command: str
    estimate: float
    lasts: bool = False
    ready: object = None
    hint: str = ""
    show_output: bool = False
    key: str = ""
    note: str = ""


@dataclass
class StepState:
    name: str
    title: str
    state: str = PENDING
    estimate: float = 0.0
    seconds: float = 0.0
    detail: str = ""
    log: str = ""


def detail_of(line):
    """The detail a line of a step's output gives: the text of a `progress:`
    line, or the crate of cargo's `Compiling name v1.2.3`; None otherwise."""
    line = line.strip()
    if line.startswith(PROGRESS_PREFIX):
        text = line[len(PROGRESS_PREFIX):].strip()
        return text or None
    words = line.split()
    if len(words) >= 3 and words[0] == "Compiling" and words[2].startswith("v"):
        return f"compiling {words[1]}"
    return None


def estimate_of(step, journal):
    """The step's estimate: how long it took last time, else its own guess."""
    last = journal.get("steps", {}).get(step.name, {})
    seconds = last.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else float(step.estimate)


def already_done(step, journal):
    """Whether a lasting step succeeded in an earlier run (with the same key)."""
    if not step.lasts:
        return False
    last = journal.get("steps", {}).get(step.name, {})
    return last.get("ok") is True and last.get("key", "") == step.key


def remaining_seconds(states, now_elapsed_of_running=0.0):
    """About how long the rest of the run takes: the estimates of the steps
    still pending, plus what the running step has left of its own (at least
    a little while it runs past its estimate)."""
    rest = 0.0
    for s in states:
        if s.state == PENDING:
            rest += s.estimate
        elif s.state == RUNNING:
            rest += max(s.estimate - now_elapsed_of_running, min(5.0, s.estimate))
    return rest


def format_duration(seconds):
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def about(seconds):
    """A rough duration for an estimate: "about 12 min", "under a minute"."""
    if seconds < 60:
        return "under a minute"
    return f"about {int(round(seconds / 60))} min"


@dataclass
class Run:
    """The state of one run: its steps, the journal of earlier runs, and
    where to write the progress file."""

    title: str
    steps: list
    journal: dict = field(default_factory=dict)
    progress_file: str = ""
    started: float = field(default_factory=time.time)
    states: list = field(default_factory=list)
    failure: dict = None
    finished: bool = False
    # Why the progress file could not be written (a full disk, say), if it
    # could not: the run goes on without it.
    unwritable: str = None
    lock: object = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.states = [
            StepState(name=s.name, title=s.title, estimate=estimate_of(s, self.journal)) for s in self.steps
        ]

    def state(self, name):
        return next(s for s in self.states if s.name == name)

    def begin(self, name):
        self.state(name).state = RUNNING
        self.write()

    def skip(self, name):
        self.state(name).state = SKIPPED
        self.write()

    def detail(self, name, text):
        self.state(name).detail = text
        self.write()

    def succeed(self, name, seconds):
        state = self.state(name)
        state.state, state.seconds = DONE, seconds
        step = next(s for s in self.steps if s.name == name)
        entry = {"ok": True, "seconds": round(seconds, 1), "at": int(time.time())}
        if step.key:
            entry["key"] = step.key
        self.journal.setdefault("steps", {})[name] = entry
        self.write()

    def fail(self, name, seconds, why, hint):
        state = self.state(name)
        state.state, state.seconds = FAILED, seconds
        # A failed step is not done: the next run does it again.
        previous = self.journal.setdefault("steps", {}).get(name, {})
        previous["ok"] = False
        self.journal["steps"][name] = previous
        self.failure = {"step": name, "title": state.title, "why": why, "hint": hint, "log": state.log}
        self.write()

    def finish(self):
        self.finished = True
        self.write()

    def running_elapsed(self, running_since):
        return time.time() - running_since if running_since else 0.0

    def as_json(self, running_since=None):
        return {
            "title": self.title,
            "started_ms": int(self.started * 1000),
            "updated_ms": int(time.time() * 1000),
            "finished": self.finished,
            "remaining_seconds": int(remaining_seconds(self.states, self.running_elapsed(running_since))),
            "failed": self.failure,
            "steps": [
                {
                    "name": s.name,
                    "title": s.title,
                    "state": s.state,
                    "seconds": round(s.seconds, 1),
                    "estimate_seconds": round(s.estimate, 1),
                    "detail": s.detail or None,
                }
                for s in self.states
            ],
        }

    def write(self, running_since=None):
        if not self.progress_file:
            return
        with self.lock:
            problem = try_write_json(self.progress_file, self.as_json(running_since))
            self.unwritable = self.unwritable or problem


def write_json(path, value):
    """Writes whole or not at all (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(value, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def try_write_json(path, value):
    """write_json, saying why it failed instead of raising (None when written)."""
    try:
        write_json(path, value)
        return None
    except OSError as e:
        return f"cannot write {path}: {e.strerror or e}"


def read_json(path):
    try:
        with open(path) as f:
            value = json.load(f)
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def last_lines(path, count):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f.readlines()[-count:]]
    except OSError:
        return []


def signal_group(process, number):
    """Signals a step's whole process group (each step runs in its own session)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, number)
        except OSError:
            pass


def stop_process(process, grace=20):
    """SIGTERM to the step's group, SIGKILL after `grace` seconds; reaped either way."""
    signal_group(process, 15)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(process, 9)
        process.wait()


class Terminal:
    """One line per step; on a terminal the running step's line is redrawn
    every second with its detail and the time left."""

    def __init__(self, out=sys.stderr):
        self.out = out
        self.tty = out.isatty()
        self.drawn = False

    def _clear(self):
        if self.tty and self.drawn:
            self.out.write("\r\033[K")
            self.drawn = False

    def line(self, text):
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def status(self, text):
        if not self.tty:
            return
        self._clear()
        width = os.get_terminal_size(self.out.fileno()).columns if self.tty else 120
        self.out.write(text[: max(20, width - 1)])
        self.out.flush()
        self.drawn = True


class Runner:
    """Runs the steps of a `Run`, one after another, with logs in `log_dir`."""

    def __init__(self, run, journal_file, log_dir, env=None, terminal=None):
        self.run = run
        self.journal_file = journal_file
        self.log_dir = log_dir
        self.env = env if env is not None else dict(os.environ)
        self.terminal = terminal or Terminal()
        # (step name, process, its output reader, its log) of steps that keep running
        self.services = []
        self.told_unwritable = False
        os.makedirs(log_dir, exist_ok=True)

    def save_journal(self):
        problem = try_write_json(self.journal_file, self.run.journal)
        self.run.unwritable = self.run.unwritable or problem
        self.tell_unwritable()

    def tell_unwritable(self):
        """Says once that the progress file or journal could not be written."""
        if self.run.unwritable and not self.told_unwritable:
            self.told_unwritable = True
            self.terminal.line(f"  ! {self.run.unwritable}; the run goes on (is the disk full?)")

    def total(self):
        return len(self.run.steps)

    def execute(self):
        """Runs every step; returns True when all succeeded."""
        for index, step in enumerate(self.run.steps, start=1):
            number = f"[{index}/{self.total()}]"
            if already_done(step, self.run.journal):
                self.run.skip(step.name)
                self.terminal.line(f"  ✓ {number} {step.title}: done in an earlier run")
                continue
            if not self.one(step, number):
                return False
        self.run.finish()
        return True

    def one(self, step, number):
        state = self.run.state(step.name)
        state.log = os.path.join(self.log_dir, f"{step.name}.log")
        self.run.begin(step.name)
        if not self.terminal.tty:
            self.terminal.line(f"  ▸ {number} {step.title} ({about(state.estimate)}) …")
        started = time.time()
        log = open(state.log, "w")
        process = subprocess.Popen(
            ["bash", "-c", step.command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        reader = threading.Thread(target=self.follow, args=(process, log, step.name), daemon=True)
        reader.start()
        try:
            ok, why = self.wait(step, process, started, number)
        except BaseException:  # Ctrl-C or SIGTERM: the step stops with the run
            stop_process(process)
            raise
        seconds = time.time() - started
        self.tell_unwritable()
        if ok:
            self.run.succeed(step.name, seconds)
            self.save_journal()
            if step.ready is not None:
                self.services.append((step.name, process, reader, log))
            else:
                reader.join(timeout=5)
                process.stdout.close()
                log.close()
            self.terminal.line(f"  ✓ {number} {step.title}  {format_duration(seconds)}{self.left()}")
            if step.show_output:
                reader.join(timeout=5)
                for line in last_lines(state.log, 40):
                    self.terminal.line(line)
            if step.note:
                self.terminal.line(step.note)
            return True
        reader.join(timeout=5)
        process.stdout.close()
        log.close()
        self.run.fail(step.name, seconds, why, step.hint)
        self.save_journal()
        self.terminal.line(f"  ✗ {number} {step.title} failed after {format_duration(seconds)}: {why}")
        for line in last_lines(state.log, LOG_LINES_ON_FAILURE):
            self.terminal.line(f"      | {line}")
        if step.hint:
            self.terminal.line(f"    What to do: {step.hint}")
        self.terminal.line(f"    Full log: {state.log}")
        self.terminal.line("    Running the script again resumes after the last step that succeeded.")
        return False

    def follow(self, process, log, name):
        for line in process.stdout:
            log.write(line)
            log.flush()
            text = detail_of(line)
            if text:
                self.run.detail(name, text)

    def wait(self, step, process, started, number):
        """(ok, why) once the step's command ends, or, for a service, once it is ready."""
        while True:
            code = process.poll()
            if step.ready is not None:
                if code is not None:
                    return False, f"it stopped (exit status {code}) before it was ready"
                try:
                    if step.ready():
                        return True, ""
                except Exception:  # a probe that fails means "not yet"
                    pass
            elif code is not None:
                return (True, "") if code == 0 else (False, f"exit status {code}")
            elapsed = time.time() - started
            state = self.run.state(step.name)
            self.run.write(running_since=started)
            detail = f" · {state.detail}" if state.detail else ""
            rest = remaining_seconds(self.run.states, elapsed)
            self.terminal.status(
                f"  ▸ {number} {step.title}{detail} · {format_duration(elapsed)} · {about(rest)} left in all"
            )
            time.sleep(1.0 if self.terminal.tty else 0.5)

    def left(self):
        rest = remaining_seconds(self.run.states)
        return "" if rest <= 0 else f"   ({about(rest)} left)"

    def stop_services(self):
        for _, process, _, _ in reversed(self.services):
            signal_group(process, 15)
        for _, process, reader, log in reversed(self.services):
            stop_process(process)
            reader.join(timeout=5)
            process.stdout.close()
            log.close()
        self.services = []
