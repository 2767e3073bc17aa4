#!/usr/bin/env python3
"""Tests of scripts/progress.py: step states, estimates, the progress file,
and resuming after a failed step. Run: python3 scripts/test_progress.py"""

import io
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import progress  # noqa: E402
from progress import DONE, FAILED, PENDING, RUNNING, SKIPPED, Run, Runner, Step, StepState, Terminal  # noqa: E402


class Pure(unittest.TestCase):
    def test_progress_and_cargo_lines_become_the_detail(self):
        self.assertEqual(progress.detail_of("progress: starting etcd for cluster dev (1 of 3)\n"),
                         "starting etcd for cluster dev (1 of 3)")
        self.assertEqual(progress.detail_of("   Compiling kube-client v3.0.1\n"), "compiling kube-client")
        self.assertIsNone(progress.detail_of("warning: unused variable"))
        self.assertIsNone(progress.detail_of("progress:   "))
        self.assertIsNone(progress.detail_of("the progress: of things"))

    def test_estimates_come_from_the_last_run_else_the_steps_guess(self):
        step = Step("server", "Building", "true", estimate=600)
        self.assertEqual(progress.estimate_of(step, {}), 600)
        self.assertEqual(progress.estimate_of(step, {"steps": {"server": {"ok": True, "seconds": 42.5}}}), 42.5)
        self.assertEqual(progress.estimate_of(step, {"steps": {"server": {"seconds": "soon"}}}), 600)

    def test_only_lasting_steps_that_succeeded_with_the_same_key_are_skipped(self):
        journal = {"steps": {"tools": {"ok": True, "key": "v1"}, "build": {"ok": True}, "failed": {"ok": False}}}
        self.assertTrue(progress.already_done(Step("tools", "", "", 1, lasts=True, key="v1"), journal))
        self.assertFalse(progress.already_done(Step("tools", "", "", 1, lasts=True, key="v2"), journal),
                         "a new version is installed again")
        self.assertFalse(progress.already_done(Step("build", "", "", 1), journal), "a build always runs")
        self.assertFalse(progress.already_done(Step("failed", "", "", 1, lasts=True), journal))
        self.assertFalse(progress.already_done(Step("new", "", "", 1, lasts=True), journal))

    def test_the_time_left_counts_pending_steps_and_what_the_running_one_has_left(self):
        states = [StepState("a", "", DONE, 100), StepState("b", "", RUNNING, 60), StepState("c", "", PENDING, 30)]
        self.assertEqual(progress.remaining_seconds(states, 20), 40 + 30)
        # Running past its estimate: a little is still left, never negative.
        self.assertEqual(progress.remaining_seconds(states, 600), 5 + 30)

    def test_durations_read_as_people_say_them(self):
        self.assertEqual(progress.format_duration(9.4), "9s")
        self.assertEqual(progress.format_duration(125), "2m05s")
        self.assertEqual(progress.format_duration(3 * 3600 + 120), "3h02m")
        self.assertEqual(progress.about(20), "under a minute")
        self.assertEqual(progress.about(14 * 60 + 10), "about 14 min")


class Running(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.journal = os.path.join(self.dir, "journal.json")
        self.progress = os.path.join(self.dir, "progress.json")
        self.marker = os.path.join(self.dir, "fixed")

    def steps(self):
        return [
            Step("tools", "Installing tools", "echo 'progress: fetching'; echo installed", 10, lasts=True, key="v1"),
            Step("build", "Building", f"echo compiling; test -e {self.marker} || {{ echo 'error: broken'; exit 3; }}",
                 20, hint="fix the build"),
            Step("serve", "Serving", "echo listening; exec sleep 60", 5,
                 ready=lambda: os.path.exists(self.marker)),
        ]

    def run_once(self):
        out = io.StringIO()
        run = Run("Preparing", self.steps(), progress.read_json(self.journal), self.progress)
        runner = Runner(run, self.journal, os.path.join(self.dir, "logs"), terminal=Terminal(out))
        try:
            ok = runner.execute()
        finally:
            runner.stop_services()
        return ok, progress.read_json(self.progress), out.getvalue(), runner

    def test_a_failed_step_stops_the_run_says_why_and_the_next_run_resumes_after_the_last_success(self):
        ok, state, printed, _ = self.run_once()
        self.assertFalse(ok)
        self.assertEqual([s["state"] for s in state["steps"]], [DONE, FAILED, PENDING])
        self.assertEqual(state["steps"][0]["detail"], "fetching", "the last progress line is the detail")
        self.assertEqual(state["failed"]["step"], "build")
        self.assertIn("exit status 3", state["failed"]["why"])
        self.assertIn("error: broken", printed, "the end of the failed step's log is shown")
        self.assertIn("What to do: fix the build", printed)
        self.assertIn("resumes after the last step that succeeded", printed)
        self.assertFalse(state["finished"])

        open(self.marker, "w").close()
        ok, state, printed, runner = self.run_once()
        self.assertTrue(ok, printed)
        self.assertEqual([s["state"] for s in state["steps"]], [SKIPPED, DONE, DONE])
        self.assertIn("Installing tools: done in an earlier run", printed)
        self.assertTrue(state["finished"])
        self.assertIsNone(state["failed"])
        self.assertEqual(state["remaining_seconds"], 0)
        journal = progress.read_json(self.journal)
        self.assertTrue(journal["steps"]["build"]["ok"])

    def test_a_service_keeps_running_after_its_step_until_stopped(self):
        open(self.marker, "w").close()
        run = Run("Preparing", self.steps(), {}, self.progress)
        runner = Runner(run, self.journal, os.path.join(self.dir, "logs"), terminal=Terminal(io.StringIO()))
        self.assertTrue(runner.execute())
        [(name, process, _, _)] = runner.services
        self.assertEqual(name, "serve")
        self.assertIsNone(process.poll(), "still serving after its step")
        runner.stop_services()
        self.assertIsNotNone(process.poll())

    def test_a_service_that_stops_before_it_is_ready_fails_its_step(self):
        steps = [Step("serve", "Serving", "exit 0", 5, ready=lambda: False)]
        run = Run("Preparing", steps, {}, self.progress)
        runner = Runner(run, self.journal, os.path.join(self.dir, "logs"), terminal=Terminal(io.StringIO()))
        self.assertFalse(runner.execute())
        self.assertIn("before it was ready", progress.read_json(self.progress)["failed"]["why"])

    def test_estimates_learn_from_the_last_run(self):
        open(self.marker, "w").close()
        self.run_once()
        run = Run("Preparing", self.steps(), progress.read_json(self.journal), self.progress)
        self.assertLess(run.state("build").estimate, 20, "it took well under its guess last time")

    def test_the_progress_file_is_replaced_whole(self):
        run = Run("Preparing", self.steps(), {}, self.progress)
        for i in range(50):
            run.detail("tools", f"step {i}")
        self.assertEqual(progress.read_json(self.progress)["steps"][0]["detail"], "step 49")
        self.assertEqual([f for f in os.listdir(self.dir) if ".tmp" in f], [])

    def test_a_progress_file_that_cannot_be_written_does_not_stop_the_run(self):
        # A full disk, or the data directory removed under the run: the
        # steps go on, and the terminal says once why the page's banner is stale.
        self.progress = os.path.join(self.dir, "missing", "dir", "progress.json")
        os.makedirs(os.path.join(self.dir, "missing"))
        open(os.path.join(self.dir, "missing", "dir"), "w").close()  # a file where the directory should be
        open(self.marker, "w").close()
        ok, _, out, _ = self.run_once()
        self.assertTrue(ok, out)
        self.assertEqual(out.count("cannot write"), 1, out)

    def test_stopping_the_run_stops_the_running_step_too(self):
        # Ctrl-C or SIGTERM (run.py turns both into KeyboardInterrupt) while a
        # step builds: the build must not go on alone in its own session.
        pid_file = os.path.join(self.dir, "pid")

        class Interrupted(Run):
            def write(self, running_since=None):
                super().write(running_since)
                if running_since is not None and os.path.exists(pid_file):
                    raise KeyboardInterrupt

        steps = [Step("build", "Building", f"echo $$ > {pid_file}; exec sleep 60", 20)]
        runner = Runner(Interrupted("Preparing", steps, {}, self.progress), self.journal,
                        os.path.join(self.dir, "logs"), terminal=Terminal(io.StringIO()))
        with self.assertRaises(KeyboardInterrupt):
            runner.execute()
        pid = int(open(pid_file).read())
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            self.fail("the step's process outlived the run")


if __name__ == "__main__":
    unittest.main()
