"""Processes running the embedded model share the CPUs: each takes its share of them, counted
from the seats other live processes hold (real processes, real file locks; no model loaded)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from atk_backend_llamacpp import seats

HOLDER = """
import sys, time
from atk_backend_llamacpp import seats
seats.fair_threads(4)  # takes a seat and says it is busy
print("seated", flush=True)
while True:
    time.sleep(0.05)
    if sys.argv[1] == "busy":
        seats.seat().touch()
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    folder = tmp_path / "seats"
    monkeypatch.setenv(seats.SEATS_ENV, str(folder))
    monkeypatch.setattr(seats, "LOOK_EVERY", 0.0)  # count again at every call
    yield folder
    if seats._SEAT is not None:
        seats._SEAT.close()
        seats._SEAT = None


def holder(mode="busy"):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, mode], stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ))
    assert process.stdout.readline().strip() == "seated"
    return process


def test_alone_a_process_takes_every_cpu(folder):
    assert seats.fair_threads(4) == 4
    assert (folder / f"{os.getpid()}.seat").exists()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_two_processes_take_half_each_and_a_dead_ones_seat_is_not_counted(folder):
    other = holder()
    try:
        assert seats.fair_threads(4) == 2
        assert seats.fair_threads(2) == 1
        assert seats.fair_threads(1) == 1  # never none
        third = holder()
        try:
            assert seats.fair_threads(6) == 2
        finally:
            third.kill()
            third.wait()
        # A process killed outright never removes its seat: nobody holds its lock any more.
        assert (folder / f"{third.pid}.seat").exists()
        assert seats.fair_threads(4) == 2
        assert not (folder / f"{third.pid}.seat").exists()  # removed by the count
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert seats.fair_threads(4) == 4


def test_a_process_that_has_asked_nothing_lately_is_not_counted(folder, monkeypatch):
    other = holder("idle")
    try:
        assert seats.fair_threads(4) == 2
        then = time.time() - seats.IDLE_AFTER - 1
        os.utime(folder / f"{other.pid}.seat", (then, then))
        assert seats.fair_threads(4) == 4
    finally:
        other.kill()
        other.wait()


def test_a_folder_others_can_enter_is_not_used(folder):
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    assert seats.fair_threads(4) == 4
    assert list(folder.iterdir()) == []  # no seat taken there
    assert seats.seat().fd is None


def test_a_link_in_place_of_the_folder_is_not_followed(folder, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    assert seats.fair_threads(4) == 4
    assert list(elsewhere.iterdir()) == []
