"""Kill-and-restart of the custom training loop (issue #22): a run whose process, or one of whose workers, is
SIGKILLed mid-epoch resumes from the loop's backup when the same command runs again, on every worker, and ends
with the weights of a run that was never killed: no step lost, none run twice, each epoch logged once.

LeNet-5 on 192 digits, global batches of 16: 12 steps an epoch, a backup every 4 steps and at each epoch's end.
The tests poll the backup's checkpoint state file and kill as soon as a backup inside an epoch after the first
exists (inside the second epoch, unless polling falls behind).
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.local_cluster import worker_envs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
STEPS, EVERY, EPOCHS = 12, 4, 3  # steps per epoch (192 // 16), --backup-steps, --epochs
RUN = ["--model", "lenet5", "--option", "pool=max", "--option", "activation=relu", "--epochs", str(EPOCHS),
       "--limit", "192", "--batch-size", "16", "--backup-steps", str(EVERY), "--verbose", "2"]
TIMEOUT = 300  # seconds for one run; a 2-worker run takes about 15 on 2 cores
TWO_WORKERS = pytest.mark.xdist_group("two_worker_recovery")  # one xdist worker: the reference run is made once


def train_argv(output, *extra):
    return [sys.executable, "-m", "keras_cnn.cli", "train", *RUN, "--output", str(output), *extra]


def start(argv, env, log):
    """The process, its output going to ``log`` (a file: a pipe nobody reads could fill and block it)."""
    with open(log, "w") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def backed_up_steps(backup):
    """The optimizer steps of the latest backup (the number in its name, from the state file the chief replaces
    atomically), or None."""
    try:
        text = (backup / "checkpoint").read_text()
    except OSError:
        return None
    found = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', text, re.MULTILINE)
    return int(found.group(1)) if found else None


def wait_for_mid_epoch_backup(backup, processes, timeout=TIMEOUT):
    """Poll until a backup inside an epoch after the first exists; fail if a process ends first or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = backed_up_steps(backup)
        if done is not None and done > STEPS and done % STEPS:
            return done
        ended = [p.args for p in processes if p.poll() is not None]
        assert not ended, f"a process ended before a backup inside an epoch after the first was made: {ended}"
        time.sleep(0.002)
    pytest.fail(f"no backup inside an epoch after the first within {timeout} s")


def stop(process, grace):
    """Let ``process`` exit by itself within ``grace`` seconds (a worker whose peer died fails its next collective
    op), else SIGKILL it, as a cluster manager restarting the job would. Whether it exited by itself."""
    try:
        process.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=60)
        return False


def finish(processes, logs):
    """Wait for ``processes``; their outputs (each asserted to have succeeded)."""
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    outputs = [log.read_text() for log in logs]
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-3000:]
    return outputs


def fingerprint(output):
    lines = [line for line in output.splitlines() if "last weights" in line]
    assert len(lines) == 1, output[-3000:]
    return lines[0].rsplit(" ", 1)[-1]


def read_log(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def unbroken(output_dir, outputs):
    """What the run nobody killed left: its weights' fingerprint and its history.csv rows."""
    assert len({fingerprint(out) for out in outputs}) == 1  # the workers stayed in sync
    return fingerprint(outputs[0]), read_log(output_dir / "lenet5_train" / "history.csv")


def check_resumed(output_dir, outputs, done, reference):
    """What a resumed run must show: it restored the killed run's last backup on every worker, logged each epoch
    once with the figures of the run nobody killed (``reference``: see ``unbroken``), the resumed epoch's training
    loss and accuracy included, ran every step once (the optimizer's count) and ended with that run's weights."""
    epoch, step = divmod(done, STEPS)
    for out in outputs:
        assert f"custom loop: restored the backup of step {step}/{STEPS} of epoch {epoch + 1} ({done} optimizer " \
               f"steps)" in out, out[-3000:]
    weights, rows = reference
    assert {fingerprint(out) for out in outputs} == {weights}  # in sync, and as if never killed
    train = output_dir / "lenet5_train"
    assert read_log(train / "history.csv") == rows  # every epoch once, each figure as in the unbroken run
    assert [row["epoch"] for row in rows] == [str(e) for e in range(EPOCHS)]
    summary = json.loads((train / "summary.json").read_text())
    assert summary["resumed_from"] == epoch and summary["epochs"] == list(range(EPOCHS))
    assert summary["epochs_this_run"] == EPOCHS - epoch
    assert summary["optimizer_steps"] == EPOCHS * STEPS
    assert not (train / "backup").exists()  # deleted when training ended


@pytest.fixture(scope="module")
def two_worker_reference(tmp_path_factory):
    """``unbroken`` of the 2-worker run that nobody kills."""
    output = tmp_path_factory.mktemp("reference")
    logs = [output / f"worker{i}.log" for i in range(2)]
    outputs = finish([start(train_argv(output, "--strategy", "multiworker"), env, log)
                      for env, log in zip(worker_envs(ENV, 2), logs)], logs)
    assert "multiworker strategy, 2 replica(s), custom training loop" in outputs[0]
    return unbroken(output, outputs)


def kill_one_worker_and_restart(tmp_path, victim):
    """Two workers; SIGKILL worker ``victim`` (0: the chief) right after a backup inside epoch 2, then the
    survivor; start both again with the same command and environment. Returns the outputs and the backed-up
    steps."""
    argv, envs = train_argv(tmp_path, "--strategy", "multiworker"), worker_envs(ENV, 2)
    backup = tmp_path / "lenet5_train" / "backup"
    workers = [start(argv, env, tmp_path / f"killed{i}.log") for i, env in enumerate(envs)]
    try:
        wait_for_mid_epoch_backup(backup, workers)
        workers[victim].kill()
        workers[victim].wait(timeout=60)
        survivor_failed = stop(workers[1 - victim], grace=10)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    if survivor_failed:  # it says what to do
        out = (tmp_path / f"killed{1 - victim}.log").read_text()
        assert "a worker of the cluster stopped answering" in out and "restart every worker" in out, out[-3000:]
    done = killed_mid_epoch(tmp_path)
    logs = [tmp_path / f"restarted{i}.log" for i in range(2)]
    return finish([start(argv, env, log) for env, log in zip(envs, logs)], logs), done


@TWO_WORKERS
def test_killing_the_chief_then_restarting_both_workers_resumes_from_its_backup(tmp_path, two_worker_reference):
    outputs, done = kill_one_worker_and_restart(tmp_path, victim=0)
    check_resumed(tmp_path, outputs, done, two_worker_reference)


@pytest.mark.slow  # make test-all; the chief-kill case above is the default suite's (CI's 25-minute budget)
@TWO_WORKERS
def test_killing_the_other_worker_then_restarting_both_resumes_from_the_backup(tmp_path, two_worker_reference):
    outputs, done = kill_one_worker_and_restart(tmp_path, victim=1)
    check_resumed(tmp_path, outputs, done, two_worker_reference)


def killed_single_process_run(output, *flags):
    """A one-process custom-loop run SIGKILLed right after a backup inside epoch 2; the backed-up steps."""
    output.mkdir(exist_ok=True)
    process = start(train_argv(output, "--loop", "custom", *flags), ENV, output / "killed.log")
    try:
        wait_for_mid_epoch_backup(output / "lenet5_train" / "backup", [process])
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return killed_mid_epoch(output)


def killed_mid_epoch(output):
    """The steps of the last backup a killed run left, checked to be inside an epoch after the first (epoch 2
    unless the machine was slow to poll), whose row is not logged yet."""
    done = backed_up_steps(output / "lenet5_train" / "backup")
    assert done is not None and done % STEPS, f"the kill landed after a backup at an epoch's end: {done}"
    logged = [row["epoch"] for row in read_log(output / "lenet5_train" / "history.csv")]
    assert logged == [str(epoch) for epoch in range(done // STEPS)]
    return done


@pytest.mark.parametrize("strategy", ["default", pytest.param("mirrored", marks=pytest.mark.slow)])  # 2 logical CPUs
def test_custom_loop_in_one_process_resumes_after_sigkill_with_the_weights_of_an_unbroken_run(tmp_path, strategy):
    flags = ["--loop", "custom", "--strategy", strategy]
    reference = finish([start(train_argv(tmp_path, *flags), ENV, tmp_path / "unbroken.log")],
                       [tmp_path / "unbroken.log"])
    done = killed_single_process_run(tmp_path / "killed", "--strategy", strategy)
    log = tmp_path / "killed" / "restarted.log"
    outputs = finish([start(train_argv(tmp_path / "killed", *flags), ENV, log)], [log])
    check_resumed(tmp_path / "killed", outputs, done, unbroken(tmp_path, reference))


def test_workers_that_see_different_backups_refuse_to_train_and_no_resume_discards_the_backup(tmp_path):
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    done = killed_single_process_run(shared)
    # Worker 1's --output holds no backup (as a worker whose disk is not the chief's would see it).
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start(train_argv(output, "--strategy", "multiworker"), env, log)
               for output, env, log in zip((shared, elsewhere), worker_envs(ENV, 2), logs)]
    for worker in workers:
        worker.wait(timeout=TIMEOUT)
    for worker, log in zip(workers, logs):
        out = log.read_text()
        assert worker.returncode != 0 and "the workers found different backups" in out, out[-3000:]
    assert backed_up_steps(shared / "lenet5_train" / "backup") == done  # refused before any step: left as it was
    out = finish([start([*train_argv(shared, "--loop", "custom"), "--no-resume"], ENV, tmp_path / "fresh.log")],
                 [tmp_path / "fresh.log"])[0]
    assert "custom loop: restored" not in out
    summary = json.loads((shared / "lenet5_train" / "summary.json").read_text())
    assert summary["resumed_from"] == 0 and summary["epochs_this_run"] == EPOCHS
    assert summary["optimizer_steps"] == EPOCHS * STEPS


def test_ctrl_c_names_the_custom_loop_backup_and_the_command_that_resumes(tmp_path):
    process = start(train_argv(tmp_path, "--loop", "custom"), ENV, tmp_path / "run.log")
    try:
        wait_for_mid_epoch_backup(tmp_path / "lenet5_train" / "backup", [process])
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    out = (tmp_path / "run.log").read_text()
    assert process.returncode == 130, out[-3000:]  # cli.INTERRUPTED
    done = backed_up_steps(tmp_path / "lenet5_train" / "backup")
    epoch, step = divmod(done, STEPS)
    assert f"the custom loop's backup in {tmp_path / 'lenet5_train' / 'backup'} holds the state at " in out
    assert (f"step {step}/{STEPS} of epoch {epoch + 1}" if step else f"the end of epoch {epoch}") in out
    assert "resume with: keras-cnn train" in out


def test_interrupted_names_the_custom_loop_backup_and_its_position(tmp_path):
    import keras

    from keras_cnn.app import loop_backup, train
    from keras_cnn.app.train_config import RunFiles, TrainConfig

    config = TrainConfig(loop="custom", output=str(tmp_path), backup_steps=EVERY, epochs=EPOCHS)
    assert not train.Interrupted(config).resumable  # nothing backed up yet: the same command starts over
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    backup = loop_backup.LoopBackup(RunFiles.of(config).backup, model=model, optimizer=optimizer, chief=True,
                                    steps=STEPS, every=EVERY)
    assert [step for step in range(1, STEPS + 1) if backup.due(1, step)] == [4, 8]  # the 12th: the epoch's end
    backup.save(1, 8, (1.0, 2.0, 3.0, 4.0))
    interrupted = train.Interrupted(config)
    assert interrupted.resumable
    assert f"holds the state at step 8/{STEPS} of epoch 2 (20 optimizer steps" in str(interrupted)
    assert loop_backup.position(RunFiles.of(config).backup) == loop_backup.Position(1, 8, STEPS, (1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValueError, match="made with 12 steps per epoch; this run has 6"):
        loop_backup.LoopBackup(RunFiles.of(config).backup, model=model, optimizer=optimizer, chief=True,
                               steps=6).restore()


def test_custom_loop_multilabel_accuracy_is_per_label_at_one_half():
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnn.app import distribute

    scores = np.array([[0.9, 0.5, 0.2], [0.1, 0.7, 0.49]], np.float32)
    labels = np.array([[1, 0, 0], [0, 1, 1]], np.float32)  # right: 2 of 3, then 2 of 3
    identity = keras.Sequential([keras.Input((3,)), keras.layers.Activation("linear")])
    loss = keras.losses.BinaryCrossentropy(reduction=None)
    logs = distribute._evaluate(identity, loss, tf.data.Dataset.from_tensors((scores, labels)), multilabel=True)
    assert logs["val_accuracy"] == pytest.approx(4 / 6)
    assert logs["val_loss"] == pytest.approx(float(np.mean(loss(labels, scores))))  # per image, not per label
    assert float(tf.reduce_sum(distribute._correct(scores, labels, multilabel=True))) == 4
    top = distribute._correct(scores, tf.constant([0, 2]), multilabel=False)  # multiclass: the top score's class
    assert list(np.asarray(top)) == [1.0, 0.0]
