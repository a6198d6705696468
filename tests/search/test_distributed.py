"""Trial leases (chief), heartbeats (worker) and oracle repair after a kill, without gRPC."""

import pytest

from keras_autoopt._backend import kt
from keras_autoopt.search import (
    SearchStopped,
    TrialLeases,
    WorkerHeartbeat,
    distributed_env,
    distributed_role,
    failures_stop_cleanly,
)
from keras_autoopt.search._reliability import repair_reloaded_oracle


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def make_oracle(tmp_path, max_trials=3):
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"),
                                           max_trials=max_trials, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    hp = kt.HyperParameters()
    hp.Int("units", 1, 100)
    oracle.update_space(hp)
    return oracle


def finish(oracle, trial, score=1.0):
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_a_silent_workers_trial_is_handed_to_the_next_worker(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=2)
    clock = FakeClock()
    leases = TrialLeases(oracle, timeout_s=10, clock=clock).install()
    first = oracle.create_trial("w1")
    second = oracle.create_trial("w0")
    finish(oracle, second)
    clock.now = 5
    # No new trial, but w1's lease is out: w0 is told to wait, not to stop.
    assert oracle.create_trial("w0").status == "IDLE"
    assert "w0" in oracle.tuner_ids
    clock.now = 16  # w1 silent for 16 s > 10 s
    again = oracle.create_trial("w0")
    assert (again.trial_id, again.status) == (first.trial_id, "RUNNING")
    assert leases.revoked == [{"trial_id": first.trial_id, "tuner_id": "w1", "silent_s": 16.0}]
    assert "w1" not in oracle.tuner_ids
    finish(oracle, again)
    assert oracle.create_trial("w0").status == "STOPPED"
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert leases.handed_out == [{"trial_id": "0", "tuner_id": "w1"},
                                 {"trial_id": "1", "tuner_id": "w0"},
                                 {"trial_id": "0", "tuner_id": "w0"}]


def test_reports_renew_the_lease_and_late_results_are_ignored(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=1)
    clock = FakeClock()
    leases = TrialLeases(oracle, timeout_s=10, clock=clock).install()
    trial = oracle.create_trial("w1")
    for now in (8, 16, 24):  # a report every 8 s keeps a 10 s lease
        clock.now = now
        oracle.get_trial(trial.trial_id)
        assert leases.expire() == []
    clock.now = 40
    assert leases.expire() == [trial.trial_id]
    rerun = oracle.create_trial("w0")
    finish(oracle, rerun, score=2.0)
    late = kt.engine.trial.Trial(oracle.get_space(), trial_id=trial.trial_id,
                                 status="COMPLETED")
    oracle.end_trial(late)  # the presumed-dead worker was only slow
    assert leases.late_results == [trial.trial_id]
    assert oracle.trials[trial.trial_id].score == 2.0
    assert oracle.end_order == [trial.trial_id]


class FakeClient:
    """A worker's oracle client: counts the reports it receives."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.reports = []
        self.ended = []

    def create_trial(self, tuner_id):
        status = self.statuses.pop(0)
        return kt.engine.trial.Trial(kt.HyperParameters(), trial_id="7", status=status)

    def get_trial(self, trial_id):
        self.reports.append(trial_id)

    def end_trial(self, trial):
        self.ended.append(trial.trial_id)


def test_worker_heartbeat_reports_on_the_running_trial_only():
    import time

    client = FakeClient(["RUNNING", "IDLE"])
    with WorkerHeartbeat(client, interval_s=0.05, idle_wait_s=0.01) as beat:
        client.create_trial("w0")
        time.sleep(0.3)
        client.end_trial(kt.engine.trial.Trial(kt.HyperParameters(), trial_id="7"))
        reports = len(client.reports)
        time.sleep(0.2)
        assert client.create_trial("w0").status == "IDLE"
    assert reports >= 3 and set(client.reports) == {"7"}
    assert len(client.reports) == reports  # no report once the trial ended
    assert beat.trials_run == ["7"] and client.ended == ["7"]
    assert "create_trial" not in vars(client)  # the client is restored


def test_repair_requeues_a_started_trial_the_oracle_state_missed(tmp_path):
    oracle = make_oracle(tmp_path)
    done = oracle.create_trial("t")
    finish(oracle, done)
    started = oracle.create_trial("t")
    # A kill between trial.json and oracle.json: the oracle state never saw `started`.
    oracle.ongoing_trials.clear()
    assert repair_reloaded_oracle(oracle) == {"requeued": [started.trial_id], "unqueued": []}
    assert oracle.create_trial("t").trial_id == started.trial_id
    # A kill between a COMPLETED trial.json and oracle.json: never run again.
    oracle._retry_queue.append(done.trial_id)
    assert repair_reloaded_oracle(oracle)["unqueued"] == [done.trial_id]


def test_failures_stop_cleanly_keeps_only_the_reason():
    message = ("Number of consecutive failures exceeded the limit of 3.\nTraceback (most "
               "recent call last):\n  File \"x.py\", line 1\nValueError: units=0 is bad\n")
    with pytest.raises(SearchStopped, match=r"^Number of consecutive failures exceeded the "
                                            r"limit of 3; the last one: ValueError: units=0 "
                                            r"is bad\. The trials so far are kept in runs/x"):
        with failures_stop_cleanly("runs/x"):
            raise RuntimeError(message)
    with pytest.raises(RuntimeError, match="^something else$"):
        with failures_stop_cleanly("runs/x"):
            raise RuntimeError("something else")


@pytest.mark.parametrize(("address", "tuner_id", "pattern"), [
    ("8470", "w0", r"Received: address='8470'; expected HOST:PORT"),
    ("127.0.0.1:0", "w0", r"Received: address='127.0.0.1:0'"),
    ("127.0.0.1:x", "w0", r"Received: address='127.0.0.1:x'"),
    ("127.0.0.1:8470", " ", r"Received: tuner_id=' '; expected a non-empty string"),
])
def test_distributed_env_rejects_bad_addresses(address, tuner_id, pattern):
    with pytest.raises(ValueError, match=pattern):
        distributed_env(address, tuner_id)


def test_distributed_role_follows_keras_tuner_variables(monkeypatch):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_role() is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(ValueError, match=r"without KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_PORT"):
        distributed_role()
    for key, value in distributed_env("127.0.0.1:8470", "chief").items():
        monkeypatch.setenv(key, value)
    assert distributed_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker3")
    assert distributed_role() == "worker"


def test_lease_timeout_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match=r"Received: timeout_s=0; expected a positive number"):
        TrialLeases(make_oracle(tmp_path), 0)
