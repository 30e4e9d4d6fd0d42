"""The sandboxed executor's hostile suite, at every isolation level this machine offers. After each
case: the host process is alive, no process of the run remains, no file appeared outside the work
directory, the work directory is gone, and the next run works. Limits are short so each case takes
seconds; the fork bomb runs only after the same test has proven the process limit."""
import os
import signal
import socket
import threading
import uuid
from pathlib import Path

import pytest

from neuro_lib.tools.sandbox import Limits, PythonSandbox, namespace_available

ROOT = os.geteuid() == 0
LEVELS = ["process"] + (["namespace"] if namespace_available() else [])
pytestmark = pytest.mark.skipif(not ROOT, reason="the hostile suite needs a per-run uid (root); see README")
LIMITS = Limits(wall_s=3.0, cpu_s=1, memory_mb=256, nproc=12, fsize_mb=2, nofile=32, disk_mb=8, output_bytes=4096)


def _uid_processes(uid):
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    out.append((int(entry.name), Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]))
            except OSError:
                pass
    return out


def _children_of_host():
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def run(level, code, outside=(), **limits):
    """Run code, then check the invariants every case must keep."""
    sandbox = PythonSandbox(isolation=level, limits=Limits(**{**LIMITS.__dict__, **limits}))
    before = set(_children_of_host())  # children other tests of this process may still hold
    r = sandbox.call({"code": code})
    v = r.value
    assert v is not None, r.error
    assert v["isolation"] == level
    assert os.getpid() and _uid_processes(v["uid"]) == [], "a process of the run survived"
    assert set(_children_of_host()) <= before, "the host has a live child left"
    assert not Path(v["workdir"]).exists(), "work directory not removed"
    for path in outside:
        assert not Path(path).exists(), f"{path} appeared outside the work directory"
    nxt = sandbox.call({"code": "print('next run works')"})
    assert nxt.ok and nxt.value["stdout"] == "next run works\n", nxt.error
    return r


@pytest.fixture(params=LEVELS)
def level(request):
    return request.param


def test_plain_run_reports_output_status_and_resources(level):
    r = PythonSandbox(isolation=level, limits=LIMITS).call(
        {"code": "import sys; print(sys.stdin.read().upper()); sys.exit(3)", "stdin": "abc"})
    v = r.value
    assert not r.ok and v["stdout"] == "ABC\n" and v["exit_code"] == 3 and v["killed_by"] is None
    assert "status 3" in r.error and v["cpu_s"] >= 0 and v["max_rss_kb"] > 0 and v["uid"] >= 2_000_000_000


@pytest.mark.slow
def test_infinite_loop_is_stopped_by_the_cpu_limit(level):
    v = run(level, "while True: pass", wall_s=20).value
    assert v["timed_out"] and v["killed_by"] == "cpu" and v["signal"] == "SIGXCPU" and v["cpu_s"] >= 0.8


def test_sleep_past_the_wall_limit(level):
    v = run(level, "import time; print('start', flush=True); time.sleep(60)", wall_s=1.0).value
    assert v["killed_by"] == "wall" and v["stdout"] == "start\n" and v["wall_s"] < 10


@pytest.mark.slow
def test_ignoring_sigxcpu_still_dies(level):
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass"
    v = run(level, code, wall_s=20).value
    assert v["killed_by"] == "cpu" and v["signal"] == "SIGKILL"


def test_memory_hog_hits_the_address_space_limit(level):
    v = run(level, "chunks = []\nwhile True: chunks.append(bytearray(16 * 2**20))", memory_mb=128).value
    assert v["exit_code"] == 1 and "MemoryError" in v["stderr"]


def test_process_limit_then_fork_bomb(level):
    # first prove the limit: count how many children fork succeeds in making
    count = ("import os, time\nn = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
             "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
             "    n += 1\nprint(n)")
    v = run(level, count, nproc=8).value
    assert v["exit_code"] == 0 and 0 < int(v["stdout"]) < 8
    # only then the bomb: every process forks forever, ignoring errors
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    v = run(level, bomb, nproc=8, wall_s=1.5).value
    assert v["timed_out"]


def test_writing_outside_the_work_dir(level, tmp_path):
    token = uuid.uuid4().hex
    targets = [f"/tmp/neuro-escape-{token}", f"/dev/shm/neuro-escape-{token}", str(tmp_path / "escape"),
               f"{os.getcwd()}/neuro-escape-{token}", f"/var/tmp/neuro-escape-{token}"]
    code = ("import os\nfor p in %r + ['../escape-%s']:\n    try:\n        open(p, 'w').write('x')\n"
            "        print('wrote', p)\n    except OSError as e:\n        print('refused', p, e.errno)\n" % (targets, token))
    r = run(level, code, outside=targets + [f"/tmp/escape-{token}"])
    wrote = [line.split()[1] for line in r.value["stdout"].splitlines() if line.startswith("wrote")]
    if level == "namespace":  # everything outside the work dir is read-only, but for its private /dev/shm
        assert wrote in ([], [f"/dev/shm/neuro-escape-{token}"])
    elif r.value["landlock"]:  # Landlock: nothing outside the work dir can be opened for writing
        assert wrote == []
    else:  # world-writable places are writable by any uid: the files are removed after the run
        assert any(token in p for p in r.value["stray_files_removed"])


def test_filling_the_disk(level):
    code = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\n    i += 1"
    v = run(level, code, disk_mb=8, fsize_mb=2).value
    assert v["killed_by"] == "disk" or "No space left" in v["stderr"]


def test_a_single_file_is_capped_by_fsize(level):
    v = run(level, "open('big', 'wb').write(b'x' * 3 * 2**20)", fsize_mb=1).value
    assert v["signal"] == "SIGXFSZ" or "File too large" in v["stderr"]


def test_flooding_stdout(level):
    v = run(level, "import sys\nwhile True: sys.stdout.write('x' * 65536)").value
    assert v["killed_by"] == "output" and len(v["stdout"]) == LIMITS.output_bytes and v["truncated"]


def test_network_connection_to_a_local_server(level):
    if level == "process":
        pytest.skip("process isolation does not contain the network (README, Isolation)")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(2)
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:  # timed out: nobody connected
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
            "    print('connected')\nexcept OSError as e:\n    print('blocked', e)")
    v = run(level, code).value
    thread.join(4)
    server.close()
    assert v["stdout"].startswith("blocked") and not accepted


def test_spawning_a_shell(level):
    code = "import subprocess\nprint(subprocess.run(['sh', '-c', 'id -u; sleep 60 >/dev/null 2>&1 &'], capture_output=True, text=True).stdout)"
    v = run(level, code).value
    assert v["exit_code"] == 0 and int(v["stdout"].split()[0]) == v["uid"]  # the shell has the run's uid


def test_reading_the_environment(level, monkeypatch):
    monkeypatch.setenv("NEURO_SECRET_TOKEN", "s3cret")
    v = run(level, "import os\nprint(sorted(os.environ.items()))").value
    assert "s3cret" not in v["stdout"] and "NEURO_SECRET" not in v["stdout"]
    assert "'PATH', '/usr/bin:/bin'" in v["stdout"]


def test_killing_the_parent(level):
    code = (f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}):\n    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n        print('killed', pid)\n"
            "    except OSError as e:\n        print('refused', pid, e.errno)")
    v = run(level, code).value
    assert f"killed {os.getpid()}" not in v["stdout"]  # we are still here to say so


def test_leaving_a_daemon_behind(level, tmp_path):
    marker = f"/tmp/neuro-daemon-{uuid.uuid4().hex}"
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        time.sleep(2)\n        open({marker!r}, 'w').write('alive')\n        os._exit(0)\n"
            "    os._exit(0)\nprint('parent done')")
    r = run(level, code, outside=[marker])
    assert r.ok and r.value["stdout"] == "parent done\n" and not r.value["timed_out"]


def test_cannot_regain_root_or_remount(level):
    code = ("import os, subprocess\ntry:\n    os.setuid(0)\n    print('root!')\nexcept PermissionError:\n    print('no root')\n"
            "print(subprocess.run(['mount', '-o', 'remount,rw', '/'], capture_output=True).returncode)")
    v = run(level, code).value
    assert v["stdout"].split("\n")[:2] == ["no root", "32"]  # mount(8): 32 = mount failure


def test_deep_recursion(level):
    v = run(level, "import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)").value
    assert v["exit_code"] != 0  # RecursionError, MemoryError, SIGSEGV or the CPU limit: contained either way


def test_invalid_unicode_output(level):
    r = run(level, "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\x80 end')")
    assert r.ok and r.value["stdout"] == "ok \ufffd\ufffd\ufffd end"


def test_namespace_view(level):
    if level == "process":
        pytest.skip("only the namespace sandbox hides the home and the host's temp files")
    code = ("import os\nprint(sorted(os.listdir('/tmp')), os.listdir('/root'), os.getcwd(),\n"
            "      len([p for p in os.listdir('/proc') if p.isdigit()]))")
    v = run(level, code).value
    assert v["stdout"].startswith("['work'] ['.pyenv'] /tmp/work") or v["stdout"].startswith("['work'] [] /tmp/work")
    assert int(v["stdout"].split()[-1]) <= 3  # its own PID namespace: the script (PID 1), setpriv's Python


def test_schema_errors_are_results():
    r = PythonSandbox(isolation="process").call({"code": 1})
    assert not r.ok and "invalid arguments" in r.error
    r = PythonSandbox(isolation="process").call({"code": "pass", "timeout_s": -1})
    assert not r.ok and "invalid arguments" in r.error


def test_host_files_are_out_of_reach(level, tmp_path):
    """A file in a temp dir of the host, the checkout, the homes: not readable (namespace: not mounted at all;
    process: Landlock grants reads beneath the interpreter's prefix and the system libraries only)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    targets = [str(secret), str(Path(__file__).resolve()), "/etc/hostname", "/root"]
    code = ("import os\nfor p in %r:\n    try:\n        print('read', p, os.listdir(p) if os.path.isdir(p) "
            "else open(p).read()[:20])\n    except OSError as e:\n        print('refused', p, e.errno)\n" % targets)
    v = run(level, code).value
    if level == "process" and not v["landlock"]:
        pytest.skip("without Landlock, process isolation reaches every world-readable file (README, Isolation)")
    assert "host secret" not in v["stdout"] and "read " + str(secret) not in v["stdout"]
    assert all(line.startswith("refused") or line.startswith("read /root [") for line in v["stdout"].splitlines())


def test_host_processes_are_out_of_sight(level):
    """No command line of a host process can be read: the namespace has its own /proc, the process level under
    Landlock cannot open /proc at all."""
    code = ("import os\nseen, pids = [], []\ntry:\n    pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
            "except OSError as e:\n    print('no /proc', e.errno)\n"
            f"for p in pids + [{os.getpid()}]:\n    try:\n"
            "        seen.append(open(f'/proc/{p}/cmdline', 'rb').read())\n    except OSError:\n        pass\n"
            f"print(len(pids), any(b'pytest' in c for c in seen), {os.getpid()} in pids)")
    v = run(level, code).value
    if level == "process" and not v["landlock"]:
        pytest.skip("without Landlock, process isolation shows every host process in /proc (README, Isolation)")
    last = v["stdout"].split("\n")[-2].split()
    assert last[1:] == ["False", "False"] and int(last[0]) <= 3, v["stdout"]


@pytest.mark.parametrize("landlock", [True, False])
def test_dev_shm_cannot_be_filled(level, landlock):
    """The host's RAM-backed /dev/shm: the namespace has a private one of `shm_mb`; at process level Landlock
    denies it, and without Landlock the run is killed once its files there pass `shm_mb`."""
    from neuro_lib.tools.sandbox import landlock_abi

    if level == "namespace" and not landlock:
        pytest.skip("the namespace level does not use Landlock")
    if level == "process" and landlock and landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock")
    token = uuid.uuid4().hex
    code = ("import os, time\nwritten = 0\ntry:\n    for i in range(64):\n"
            f"        with open(f'/dev/shm/neuro-fill-{token}-{{i}}', 'wb') as f:\n"
            "            f.write(b'x' * 2**20)\n        written += 1\n        time.sleep(0.01)\n"
            "except OSError as e:\n    print('stopped', e.errno)\nprint('written', written)")
    sandbox = PythonSandbox(isolation=level, landlock=landlock if level == "process" else None,
                            limits=Limits(**{**LIMITS.__dict__, "shm_mb": 4, "wall_s": 10.0, "cpu_s": 5}))
    v = sandbox.call({"code": code}).value
    assert not list(Path("/dev/shm").glob(f"neuro-fill-{token}-*")), "files left in the host's /dev/shm"
    if level == "namespace":  # its private tmpfs is full at shm_mb
        assert "stopped 28" in v["stdout"] and int(v["stdout"].split()[-1]) <= 4
    elif landlock:
        assert v["stdout"] == "stopped 13\nwritten 0\n"
    else:
        assert v["killed_by"] == "disk" and "/dev/shm" in v["reason"]
