"""A sandboxed Python executor: run untrusted code, return its output, exit status, whether it was
killed and why, and the resources it used.

    r = PythonSandbox().call({"code": "print(6 * 7)", "timeout_s": 2})
    r.value["stdout"], r.value["exit_code"], r.value["killed_by"], r.value["isolation"]
    neuro tool run script.py --timeout 2 --memory 128

Defence in depth, outermost first:
1. namespace sandbox (isolation "namespace", when running as root and `unshare` works): new
   mount, PID, network, IPC and UTS namespaces. No network (only a down loopback); a new root
   (pivot_root into a read-only tmpfs) that holds only what the interpreter needs: /usr and the
   Python prefix read-only, /etc/ld.so.cache, /dev with four character devices, a private
   /dev/shm of `shm_mb`, a private /proc, and the work directory, a tmpfs of `disk_mb`. The
   program runs under PID 1 of its namespace, so every process it leaves behind dies with it.
   Or (isolation "process") Landlock, where the kernel has it: reads beneath the interpreter's
   prefix and the system libraries only, writes in the work directory only, no TCP, no signals
   or abstract sockets out of the sandbox.
2. an unprivileged user: as root, the program runs under a fresh uid (never 0, unique per run),
   so RLIMIT_NPROC counts only its processes, it cannot signal the host, cannot write the host's
   files, and everything it started is found and killed by uid afterwards.
3. its own session and process group, killed as a group at the wall-clock limit, when the output
   cap is passed, or when the work directory (or, without Landlock, its /dev/shm files) outgrows
   its cap.
4. rlimits: CPU seconds (SIGXCPU, then SIGKILL one second later), address space, processes,
   file size, open files, no core dumps.
5. a fresh temporary work directory (removed afterwards), a minimal environment (no host variable
   passes through), `python -I -S -B` (no site-packages, no PYTHON* variables, no .pyc writes).
6. output read in chunks through non-blocking pipes, at most `output_bytes` kept per stream.
7. lifetime: the child (the program, or `unshare`) gets SIGKILL when the host dies, by any signal
   (a parent-death signal, set after the uid drop, which would clear it); SIGTERM to the host
   first unwinds the clean-up below. A work directory's name carries the host's pid, so one left
   by a host killed with SIGKILL is removed (and, as root, its uid's processes killed) when the
   next host makes its first sandbox (`sweep_stale_workdirs`).

Without root (or without `unshare`) only Landlock and layers 3-7 apply (isolation "process"):
UDP, and without Landlock the network, the file system's world-readable and world-writable
parts and /proc, and processes that leave the process group are then not contained; README.md's
"Isolation" section lists this plainly, and every result names the level it got.

Tests: tests/test_tools_sandbox.py (the hostile suite).  Bench: `neuro bench tools`.
"""
from __future__ import annotations

import os
import re
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from neuro_lib.errors import NeuroError
from neuro_lib.tools.base import Tool, ToolError, ToolResult

UID_BASE = 2_000_000_000  # run uids are drawn above every ordinary account


@dataclass
class Limits:
    wall_s: float = 5.0        # wall clock, enforced by the host
    cpu_s: int = 5             # RLIMIT_CPU (soft; hard = soft + 1)
    memory_mb: int = 512       # RLIMIT_AS
    nproc: int = 32            # RLIMIT_NPROC (effective only under a non-root uid)
    fsize_mb: int = 16         # RLIMIT_FSIZE, largest file the program may write
    nofile: int = 64           # RLIMIT_NOFILE
    disk_mb: int = 32          # the work directory's total size
    output_bytes: int = 64 * 1024  # kept per stream (stdout, stderr); more kills the run
    shm_mb: int = 4            # the namespace's private /dev/shm; at process level without Landlock, the cap on
                               # what the run may put in the host's /dev/shm (with Landlock it cannot reach it)


def _world_reachable(path: str) -> bool:
    """Whether an unprivileged uid can execute path (every parent directory searchable by others)."""
    p = Path(path)
    try:
        return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])
    except OSError:
        return False


def _python(namespace: bool) -> str:
    """The base interpreter (not the venv's: the sandbox needs only the Python install). The namespace
    sandbox mounts its prefix into view; a process-level run needs one the run uid can reach."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    if namespace or os.geteuid() != 0 or _world_reachable(base):
        return base
    for other in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if _world_reachable(os.path.realpath(other)):
            return os.path.realpath(other)
    raise ToolError(f"no Python interpreter an unprivileged uid can run ({base} is not reachable)")


def _namespace_works() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(c) for c in ("unshare", "setpriv", "pivot_root")):
        return False
    try:
        p = subprocess.run(["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--mount-proc",
                            "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


_NAMESPACE_OK: bool | None = None


def namespace_available() -> bool:
    """Whether the namespace sandbox works on this machine (probed once per process)."""
    global _NAMESPACE_OK
    if _NAMESPACE_OK is None:
        _NAMESPACE_OK = _namespace_works()
    return _NAMESPACE_OK


# Runs as root inside the new namespaces (PID 1), builds a new root file system holding only what the
# interpreter needs, drops to the run uid for Python and waits for it.
# $1 uid, $2 python, $3 python prefix, $4 host work dir, $5 disk MiB, $6 /dev/shm MiB.
# The new root is a tmpfs (read-only once built) with: /usr and the Python prefix bound read-only (the
# programs and libraries the interpreter loads), the top-level links into /usr (/bin, /lib, ...),
# /etc/ld.so.cache, /dev with null, zero, random and urandom only, a private /dev/shm (tmpfs of $6 MiB), a
# private /proc (this PID namespace's processes only) and /tmp/work (tmpfs of $5 MiB). pivot_root then
# detaches the host's tree: nothing else of the host (homes, checkouts, /tmp, /etc) is reachable.
# The exit status comes back as a last stderr line tagged with a token the program cannot read
# (it is in PID 1's environment, unreadable by another uid, and unset before Python starts); unshare
# itself cannot report a child's death by signal here (util-linux 2.38: "sigprocmask unblock failed").
_NAMESPACE_SCRIPT = r"""
set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
token="$NEURO_STATUS_TOKEN"
unset NEURO_STATUS_TOKEN
mount --make-rprivate /
exec 4<"$4"
R=/tmp
mount -t tmpfs -o size=1m,mode=755,nosuid,nodev tmpfs "$R"
bind_ro() {
  if [ -d "$1" ]; then mkdir -p "$R$1"; else mkdir -p "$(dirname "$R$1")"; : > "$R$1"; fi
  mount --bind "$1" "$R$1"
  mount -o remount,bind,ro,nosuid "$R$1"
}
bind_ro /usr
for l in /bin /sbin /lib /lib32 /lib64 /libx32; do
  if [ -L "$l" ]; then ln -s "$(readlink "$l")" "$R$l"; elif [ -d "$l" ]; then bind_ro "$l"; fi
done
case "$3" in /usr|/usr/*) ;; *) bind_ro "$3" ;; esac
if [ -f /etc/ld.so.cache ]; then bind_ro /etc/ld.so.cache; fi
mkdir -p "$R/dev/shm" "$R/proc" "$R/tmp/work"
for d in null zero random urandom; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mount -t tmpfs -o size="$6"m,mode=1777,nosuid,nodev,noexec tmpfs "$R/dev/shm"
mount -t tmpfs -o size="$5"m,mode=700,nosuid,nodev tmpfs "$R/tmp/work"
cp /proc/self/fd/4/main.py /proc/self/fd/4/stdin "$R/tmp/work/"
chown -R "$1:$1" "$R/tmp/work"
exec 4<&-
cd "$R"
mkdir .old
pivot_root . .old
mount -t proc -o nosuid,nodev,noexec proc /proc
umount -l /.old
rmdir /.old
mount -o remount,ro,nosuid,nodev /
cd /tmp/work
PATH=/usr/bin:/bin
set +e
setpriv --reuid="$1" --regid="$1" --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all \
  -- "$2" -I -S -B main.py <stdin
status=$?
printf '\n%s:%s\n' "$token" "$status" >&2
"""


# -- Landlock: the process level's file-system, TCP and signal reach --------------------------------------------
# Landlock (Linux >= 5.13) lets an unprivileged process restrict itself and every descendant: file-system
# rights beneath given directories (ABI 1), TCP bind/connect (ABI 4), signals and abstract unix sockets to
# processes outside the sandbox (ABI 6). It is applied in the child between fork and exec, after the uid drop.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446   # x86-64 and arm64 alike
_PR_SET_NO_NEW_PRIVS, _PR_SET_PDEATHSIG = 38, 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_LIBC = None


def _libc():
    """libc loaded once in the host (never between fork and exec, where dlopen may deadlock)."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none."""
    return max(int(_libc().syscall(_SYS_CREATE_RULESET, None, 0, 1)), 0)


def _fs_rights(abi: int) -> int:
    """Every file-system right the ABI knows (all handled, so what no rule grants is denied)."""
    rights = (1 << 13) - 1                  # ABI 1: execute ... make_sym
    rights |= (1 << 13) if abi >= 2 else 0  # refer (link/rename across directories)
    rights |= (1 << 14) if abi >= 3 else 0  # truncate
    rights |= (1 << 15) if abi >= 5 else 0  # ioctl on devices
    return rights


def _landlock_plan(read: list[str], write: list[str]):
    """Prepared in the host: (ruleset attribute bytes, [(allowed rights, O_PATH fd)]) or None without Landlock.
    `read`: read and execute beneath; `write`: every right beneath (files and devices alike)."""
    import struct

    abi = landlock_abi()
    if abi < 1:
        return None
    fs = _fs_rights(abi)
    attr = struct.pack("<Q", fs)
    if abi >= 4:
        attr += struct.pack("<Q", 1 | 2)    # TCP bind and connect: no rule grants them
    if abi >= 6:
        attr += struct.pack("<Q", 1 | 2)    # scoped: abstract unix sockets and signals stay inside
    rules = []
    for paths, rights in ((read, _FS_READ), (write, fs)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            # a file takes only file rights
            allowed = rights if os.path.isdir(path) else rights & (_FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE |
                                                                   (1 << 14) | (1 << 15))
            rules.append((struct.pack("<Qi", allowed, fd), fd))
    return attr, rules


def _landlock_apply(plan) -> None:
    """In the child: build the ruleset from the plan and restrict this process (and all it execs)."""
    import ctypes

    libc = _libc()
    attr, rules = plan
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), 0)
    if ruleset < 0:
        os._exit(126)
    for rule, _ in rules:
        if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.c_char_p(rule), 0) != 0:  # 1: path beneath
            os._exit(126)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
        os._exit(126)
    os.close(ruleset)


def _die_with(host_pid: int) -> None:
    """In the child: SIGKILL when the host dies (even by SIGKILL), then check it has not died already.
    Set after the uid drop: a credential change clears the parent-death signal."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != host_pid:
        os._exit(1)


# -- work directories left by a host that died -------------------------------------------------------------------
_WORK_PREFIX = "neuro-sandbox-"
_SWEPT = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_workdirs() -> list[str]:
    """Work directories whose host process is gone (it was killed by SIGKILL, so nothing of it could clean up):
    their run uid's leftover processes are killed (as root) and the directories removed. Runs once per process,
    when the first sandbox is made. Returns the directories removed."""
    removed = []
    for entry in os.scandir(tempfile.gettempdir()):
        parts = entry.name[len(_WORK_PREFIX):].split("-", 1)
        if not entry.name.startswith(_WORK_PREFIX) or len(parts) != 2 or not parts[0].isdigit():
            continue
        if _pid_alive(int(parts[0])):
            continue
        try:
            uid = entry.stat(follow_symlinks=False).st_uid
        except OSError:
            continue
        if os.geteuid() == 0 and uid >= UID_BASE:
            _kill_uid(uid)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


class _HostTerminated(BaseException):
    """SIGTERM arrived while a sandboxed program ran: unwind through the clean-up, then die of SIGTERM."""


def _on_sigterm(signum, frame):
    raise _HostTerminated()


def _shm_bytes(owner: int, before: set) -> int:
    """Bytes in /dev/shm's files owned by `owner` that were not there when the run started."""
    total = 0
    try:
        entries = list(os.scandir("/dev/shm"))
    except OSError:
        return 0
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if st.st_uid == owner and st.st_ino not in before:
            total += _dir_bytes(Path(e.path)) if e.is_dir(follow_symlinks=False) else st.st_size
    return total


def _shm_inodes() -> set:
    try:
        return {e.inode() for e in os.scandir("/dev/shm")}
    except OSError:
        return set()


def _uid_processes(uid: int) -> dict[int, str]:
    """pid -> state letter of every process whose owner is uid."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    out[int(entry.name)] = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                pass
    return out


def _become_subreaper() -> None:
    """Orphans of a process-level run re-parent to this process (not to init), so they can be reaped."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of `uid` (from a child that becomes that uid: kill(-1) reaches exactly them),
    then reap the ones that re-parented to us. Returns how many were still alive."""
    alive = [p for p, state in _uid_processes(uid).items() if state != "Z"]
    for _ in range(20 if alive else 0):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if all(state == "Z" for state in _uid_processes(uid).values()):
            break
        time.sleep(0.01)
    deadline = time.monotonic() + 2.0
    while (left := _uid_processes(uid)) and time.monotonic() < deadline:
        for pid in left:  # dead ones re-parent to us (subreaper) as their parents die; reap them
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not (yet) ours
                pass
        time.sleep(0.005)
    return len(alive)


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class PythonSandbox(Tool):
    """Run untrusted Python code in a sandbox (namespaces where available, an unprivileged uid, rlimits,
    a process group killed at the limits, a throwaway work directory) and return stdout, stderr, the exit
    status, whether and why it was killed, the resources used and the isolation level."""

    name = "python"
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "maxLength": 1_000_000},
            "stdin": {"type": "string", "maxLength": 1_000_000},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            "memory_mb": {"type": "integer", "minimum": 16, "maximum": 65536},
        },
        "required": ["code"],
        "additionalProperties": False,
    }

    def __init__(self, isolation: str = "auto", limits: Limits | None = None, landlock: bool | None = None):
        if isolation not in ("auto", "namespace", "process"):
            raise NeuroError(f"isolation must be auto, namespace or process, got {isolation!r}")
        if isolation == "namespace" and not namespace_available():
            raise NeuroError("the namespace sandbox is not available here (it needs root, unshare, setpriv and "
                             "pivot_root)")
        self.isolation = ("namespace" if namespace_available() else "process") if isolation == "auto" else isolation
        self.limits = limits or Limits()
        _libc()  # loaded here, in the host: the child calls prctl between fork and exec, where dlopen may deadlock
        self.landlock = self.isolation == "process" and landlock_abi() >= 1 if landlock is None else bool(landlock)
        if self.landlock and self.isolation == "process" and landlock_abi() < 1:
            raise NeuroError("Landlock is not available in this kernel (Linux 5.13 or later with Landlock enabled)")
        if self.isolation == "process" and os.geteuid() == 0:
            _become_subreaper()
        global _SWEPT
        if not _SWEPT:
            _SWEPT = True
            sweep_stale_workdirs()

    def run(self, args: dict) -> ToolResult:
        lim = self.limits
        if "timeout_s" in args:
            lim = replace(lim, wall_s=float(args["timeout_s"]), cpu_s=max(1, int(args["timeout_s"] + 0.999)))
        if "memory_mb" in args:
            lim = replace(lim, memory_mb=int(args["memory_mb"]))
        root = os.geteuid() == 0
        uid = None
        while root and (uid is None or _uid_processes(uid)):  # a uid no process uses
            uid = UID_BASE + int.from_bytes(os.urandom(3), "little")
        # the host's pid in the name: a directory whose host died by SIGKILL is swept by the next host
        work = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-"))
        in_main = threading.current_thread() is threading.main_thread()
        # SIGTERM would end the host without unwinding: turn it into an exception so the clean-up below runs,
        # then die of it as before (the sandboxed program also gets SIGKILL as its parent dies)
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
        terminated = False
        try:
            (work / "main.py").write_text(args["code"], encoding="utf-8")
            (work / "stdin").write_text(args.get("stdin", ""), encoding="utf-8")
            if root:
                os.chown(work, uid, uid)
            value = self._execute(work, lim, uid)
        except _HostTerminated:
            terminated = True
        finally:
            # anything the program left behind: processes (a daemon, a stopped child), then files
            leftover = _kill_uid(uid) if uid is not None else 0
            shutil.rmtree(work, ignore_errors=True)
            stray = self._remove_stray_files(uid) if uid is not None and self.isolation == "process" else []
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        if terminated:
            signal.raise_signal(signal.SIGTERM)  # the host's own SIGTERM behaviour, now that nothing is left
            raise ToolError("the run was interrupted by SIGTERM")
        value["leftover_processes_killed"] = leftover
        value["stray_files_removed"] = stray
        value["workdir"] = str(work)
        value["uid"] = uid
        value["limits"] = asdict(lim)
        ok = value["exit_code"] == 0 and value["killed_by"] is None
        error = None if ok else (f"killed: {value['reason']}" if value["killed_by"] else value["reason"])
        return ToolResult(ok, value=value, error=error)

    def _command(self, work: Path, uid: int | None, lim: Limits) -> list[str]:
        py = _python(self.isolation == "namespace")
        if self.isolation == "namespace":
            prefix = str(Path(py).parent.parent)
            return ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child",
                    "--mount-proc", "sh", "-c", _NAMESPACE_SCRIPT, "sandbox", str(uid), py, prefix, str(work),
                    str(lim.disk_mb), str(lim.shm_mb)]
        return [py, "-I", "-S", "-B", "main.py"]

    def _execute(self, work: Path, lim: Limits, uid: int | None) -> dict:
        namespace = self.isolation == "namespace"

        host_pid = os.getpid()
        plan = None
        if self.landlock and not namespace:  # read: the interpreter's prefix and the system's libraries
            py = Path(_python(False))
            read = sorted({str(py.parent.parent), "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin",
                           "/etc/ld.so.cache", "/dev/urandom", "/dev/random", "/dev/zero"})
            plan = _landlock_plan(read, [str(work), "/dev/null"])

        def limit_child():  # runs in the child between fork and exec
            mb = 1024 * 1024
            resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s + 1))
            resource.setrlimit(resource.RLIMIT_AS, (lim.memory_mb * mb, lim.memory_mb * mb))
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim.fsize_mb * mb, lim.fsize_mb * mb))
            resource.setrlimit(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NPROC, (lim.nproc, lim.nproc))
            if uid is not None and not namespace:  # the namespace script drops privileges itself (setpriv)
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            # the program (or unshare, whose child is PID 1 of the namespace) dies with the host, SIGKILL included
            _die_with(host_pid)
            if plan is not None:
                _landlock_apply(plan)

        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp/work" if namespace
               else str(work), "PYTHONIOENCODING": "utf-8"}
        token = os.urandom(16).hex()
        if namespace:
            env["NEURO_STATUS_TOKEN"] = token  # for PID 1 only; the script unsets it
        t0 = time.monotonic()
        stdin = subprocess.DEVNULL if namespace else open(work / "stdin", "rb")
        shm_before = _shm_inodes() if not namespace and plan is None else None
        shm_owner = uid if uid is not None else os.geteuid()
        try:
            proc = subprocess.Popen(self._command(work, uid, lim), cwd=work, env=env, stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    preexec_fn=limit_child, close_fds=True)
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
            for _, fd in (plan[1] if plan else []):
                os.close(fd)
        out = {"stdout": bytearray(), "stderr": bytearray()}
        seen = {"stdout": 0, "stderr": 0}
        stderr_tail = b""  # where the namespace script's status line lands
        killed_by = reason = None
        sel = selectors.DefaultSelector()
        for name in ("stdout", "stderr"):
            stream = getattr(proc, name)
            os.set_blocking(stream.fileno(), False)
            sel.register(stream, selectors.EVENT_READ, name)
        last_disk_check = t0
        status = usage = None

        def kill(why, text):
            nonlocal killed_by, reason
            if killed_by is None:
                killed_by, reason = why, text
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        try:
            while sel.get_map():
                now = time.monotonic()
                if now - t0 > lim.wall_s:
                    kill("wall", f"wall-clock limit of {lim.wall_s:g} s")
                # once the program has exited, take what is already in the pipes and stop: a descendant that
                # escaped the group may hold them open (it dies by uid, or with the PID namespace, below)
                if status is None:  # reaped here, not by Popen.poll, to keep the rusage
                    pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        status, usage = st, ru
                exited = status is not None
                events = sel.select(timeout=0 if exited else 0.05)
                if exited and not events:
                    break
                for key, _ in events:
                    try:
                        chunk = os.read(key.fileobj.fileno(), 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    name = key.data
                    seen[name] += len(chunk)
                    if name == "stderr":
                        stderr_tail = (stderr_tail + chunk)[-256:]
                    room = lim.output_bytes - len(out[name])
                    out[name] += chunk[:max(room, 0)]
                    if seen[name] > lim.output_bytes:
                        kill("output", f"{name} passed the {lim.output_bytes}-byte output cap")
                if not namespace and now - last_disk_check > 0.05:  # the namespace's tmpfs has its own cap
                    last_disk_check = now
                    if _dir_bytes(work) > lim.disk_mb * 1024 * 1024:
                        kill("disk", f"work directory passed {lim.disk_mb} MiB")
                    if shm_before is not None and _shm_bytes(shm_owner, shm_before) > lim.shm_mb * 1024 * 1024:
                        kill("disk", f"/dev/shm use passed {lim.shm_mb} MiB")
        except BaseException:  # SIGINT/SIGTERM in the host: the group dies before the clean-up
            kill("host", "the host was interrupted")
            try:
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass
            raise
        sel.close()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        if killed_by is not None:
            kill(killed_by, reason)
        if status is None:
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        exit_code = os.waitstatus_to_exitcode(status)
        m = re.search(rb"\n" + token.encode() + rb":(\d+)\n$", stderr_tail) if namespace else None
        if m:  # Python's own status, from the script (the shell writes death by signal N as 128 + N)
            code = int(m.group(1))
            exit_code = 128 - code if code > 128 else code
            out["stderr"] = out["stderr"].replace(m.group(0), b"")
            seen["stderr"] -= len(m.group(0))
        sig = -exit_code if exit_code < 0 else None
        cpu = usage.ru_utime + usage.ru_stime
        # SIGXCPU comes only from RLIMIT_CPU; a SIGKILL we did not send, at the CPU budget, is its hard limit
        # (rusage is sampled, so it can read a little under the limit that fired)
        if killed_by is None and (sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= lim.cpu_s - 0.2)):
            killed_by, reason = "cpu", f"CPU-time limit of {lim.cpu_s} s"
        elif killed_by is None and sig is not None:
            reason = f"terminated by signal {signal.Signals(sig).name}"
        elif killed_by is None and exit_code != 0:
            reason = f"exited with status {exit_code}"
        return {"stdout": out["stdout"].decode("utf-8", errors="replace"),
                "stderr": out["stderr"].decode("utf-8", errors="replace"),
                "stdout_bytes": seen["stdout"], "stderr_bytes": seen["stderr"],
                "truncated": any(seen[n] > lim.output_bytes for n in seen),
                "exit_code": exit_code, "signal": signal.Signals(sig).name if sig else None,
                "timed_out": killed_by in ("wall", "cpu"), "killed_by": killed_by, "reason": reason,
                "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "max_rss_kb": usage.ru_maxrss,
                "isolation": self.isolation, "landlock": plan is not None}

    @staticmethod
    def _remove_stray_files(uid: int) -> list[str]:
        """Process isolation only: what the run uid left in the places it could write (world-writable
        directories and the ones it made there), removed; the walk enters only such directories."""
        found = []
        for place in ("/tmp", "/var/tmp", "/dev/shm"):
            for dirpath, dirnames, filenames in os.walk(place):
                keep = []
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.lstat(path)
                    except OSError:
                        continue
                    if st.st_uid == uid:
                        found.append(path)
                    elif name in dirnames and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                        keep.append(name)
                dirnames[:] = keep
        for path in found:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return found
