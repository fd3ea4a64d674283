"""The one module that owns Fabric: connect to a host, run argv lists, upload bytes, count trips.

Two transports share one interface: `SshTransport` (Fabric/paramiko, host keys verified
against the environment's known_hosts) and `LocalTransport` (the local Docker Engine, for
the `local` environment). Commands are argv lists everywhere; `shlex.join` happens once,
here, for SSH. Every command is one round trip, counted in `round_trips`.

Beside its commands a transport may keep one background command fed with a line every few
seconds (`heartbeat`): a channel of the same SSH connection (a pipe for the local
transport), which ends when this process or its connection does. Nothing waits for it: it
is not a round trip.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Protocol, TypeVar

import paramiko
from fabric import Config as FabricConfig
from fabric import Connection

from fabfile.config import Host
from fabfile.config.secrets import redact
from fabfile.errors import UserError

T = TypeVar("T")
LineSink = Callable[[str], None]

PUT_SCRIPT = resources.files("fabfile").joinpath("scripts", "put.sh").read_text("utf-8")
"""`scripts/put.sh`: writes stdin to "$1" atomically with mode "$2"."""


@dataclass(frozen=True)
class Step:
    """One command of a plan: a name for people, an argv for the host, optional stdin bytes."""

    name: str
    argv: tuple[str, ...]
    stdin: bytes | None = field(default=None, repr=False)
    check: bool = True
    timeout: float | None = None


def script(name: str, body: str, *args: str, **kw: object) -> Step:
    """A step that runs a constant shell script with its inputs as positional arguments.

    The script text is fixed at import time and values arrive as "$1", "$2", ... so no
    value is ever spliced into shell source.
    """
    return Step(name, ("sh", "-c", body, "sh", *args), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Result:
    step: Step
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class CommandFailed(UserError):
    """A changing command exited non-zero; the message names host, step and stderr's tail."""

    def __init__(self, host: Host, result: Result) -> None:
        tail = (result.stderr.strip() or result.stdout.strip())[-800:]
        super().__init__(
            redact(f"on {host.label}: step '{result.step.name}' failed "
                   f"(exit {result.exit_code}): {tail or 'no output'}"),
        )
        self.result = result


class Pipe(Protocol):
    """The input of a command running in the background."""

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _Heartbeat:
    """A thread starting `step` in the background, then sending it a line every `every`
    seconds until stopped; it gives up quietly when the command or the connection ends."""

    def __init__(self, spawn: Callable[[Step], Pipe], step: Step, every: float) -> None:
        self.spawn, self.step, self.every = spawn, step, every
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            pipe = self.spawn(self.step)
        except (UserError, OSError, EOFError, paramiko.SSHException):
            return
        try:
            while True:
                pipe.send(b"beat\n")
                if self.stopping.wait(self.every):
                    break
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            pipe.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)


class Transport(ABC):
    """Runs steps on one host. `run` raises on failure; `probe` returns the result instead."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.round_trips = 0
        self._heartbeat: _Heartbeat | None = None

    def heartbeat(self, step: Step, every: float) -> None:
        """Run `step` in the background, sending it a line every `every` seconds, until
        `close` (once per transport; later calls do nothing). Not a round trip."""
        if self._heartbeat is None:
            self._heartbeat = _Heartbeat(self._spawn, step, every)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def _spawn(self, step: Step) -> Pipe:
        """Start `step` in the background and return its input."""
        raise OSError(f"{type(self).__name__} runs nothing in the background")

    def run(self, step: Step, on_line: LineSink | None = None) -> Result:
        result = self.probe(step, on_line)
        if step.check and not result.ok:
            raise CommandFailed(self.host, result)
        return result

    def probe(self, step: Step, on_line: LineSink | None = None) -> Result:
        """Run `step`; `on_line` gets each stdout line as it arrives (progress of long steps)."""
        self.round_trips += 1
        return self._exec(step, on_line)

    def put(self, data: bytes, path: str, mode: int = 0o644, name: str | None = None) -> None:
        """Write `data` to `path` atomically with `mode`, in one round trip."""
        self.run(script(name or f"upload {path}", PUT_SCRIPT, path, f"{mode:o}", stdin=data))

    def download(self, step: Step, dest: Path) -> Result:
        """Run `step` with its stdout written, as bytes, to the local file `dest` (a file
        streamed back, e.g. `cat`); the result's stdout is empty. Raises on failure."""
        self.round_trips += 1
        with dest.open("wb") as out:
            result = self._exec_to(step, out)
        if step.check and not result.ok:
            raise CommandFailed(self.host, result)
        return result

    @abstractmethod
    def _exec(self, step: Step, on_line: LineSink | None = None) -> Result: ...

    def _exec_to(self, step: Step, out: IO[bytes]) -> Result:
        raise NotImplementedError(f"{type(self).__name__} cannot download")

    def interact(self, argv: Sequence[str], *, tty: bool,
                 sink: Callable[[str], None] | None = None) -> int:
        """Run with this terminal attached: with `tty`, a pseudo-terminal on the host (an
        interactive shell, a REPL) and keystrokes passed through; without it, stdin passed
        until its end and the output to `sink` as it arrives. Returns the exit code."""
        self.round_trips += 1
        return self._interact(argv, tty) if tty else self._stream(argv, sink)

    def stream(self, argv: Sequence[str], sink: Callable[[str], None] | None = None) -> int:
        """Run with output straight to this terminal (logs --follow), or to `sink` as it
        arrives (to redact it on the way); returns the exit code."""
        self.round_trips += 1
        return self._stream(argv, sink)

    def _stream(self, argv: Sequence[str], sink: Callable[[str], None] | None) -> int:
        raise NotImplementedError(f"{type(self).__name__} cannot stream")

    def _interact(self, argv: Sequence[str], tty: bool) -> int:
        raise NotImplementedError(f"{type(self).__name__} cannot attach a terminal")

    def close(self) -> None:
        """Stop the heartbeat and release the connection, if any."""
        self._stop_heartbeat()


class _ProcessPipe:
    """The stdin of a local background process; closing it ends the process's input."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalTransport(Transport):
    """The local machine: same interface, no SSH (the `local` environment)."""

    def _spawn(self, step: Step) -> Pipe:
        return _ProcessPipe(subprocess.Popen(list(step.argv), stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))

    def _exec(self, step: Step, on_line: LineSink | None = None) -> Result:
        if on_line is not None:
            return self._exec_lines(step, on_line)
        try:
            proc = subprocess.run(
                list(step.argv), input=step.stdin if step.stdin is not None else b"",
                capture_output=True, timeout=step.timeout, check=False,
            )
        except FileNotFoundError:
            return Result(step, 127, "", f"{step.argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Result(step, 124, "", f"timed out after {step.timeout}s")
        return Result(step, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"))

    def _exec_to(self, step: Step, out: IO[bytes]) -> Result:
        try:
            proc = subprocess.run(list(step.argv), input=step.stdin or b"", stdout=out,
                                  stderr=subprocess.PIPE, timeout=step.timeout, check=False)
        except FileNotFoundError:
            return Result(step, 127, "", f"{step.argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Result(step, 124, "", f"timed out after {step.timeout}s")
        return Result(step, proc.returncode, "", proc.stderr.decode("utf-8", "replace"))

    def _exec_lines(self, step: Step, on_line: LineSink) -> Result:
        try:
            proc = subprocess.Popen(list(step.argv), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            return Result(step, 127, "", f"{step.argv[0]}: command not found")
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [threading.Thread(target=_drain_lines, args=(proc.stdout, out, on_line),
                                    daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            proc.stdin.write(step.stdin or b"")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = proc.wait(step.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = 124
        for reader in readers:
            reader.join()
        return Result(step, code, b"".join(out).decode("utf-8", "replace"),
                      b"".join(err).decode("utf-8", "replace"))

    def _interact(self, argv: Sequence[str], tty: bool) -> int:
        return subprocess.run(list(argv), check=False).returncode

    def _stream(self, argv: Sequence[str], sink: Callable[[str], None] | None) -> int:
        if sink is None:
            return subprocess.run(list(argv), check=False).returncode
        with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink(line)
        return proc.returncode


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's `accept-new`: trust and record a first-seen key; a changed key still fails."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self.known_hosts.open("a", encoding="utf-8") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class SshTransport(Transport):
    """A host over SSH through Fabric; connects lazily on the first command."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def known_hosts(self) -> Path:
        return Path(self.host.known_hosts).expanduser()

    def connection(self) -> Connection:
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def _open(self) -> Connection:
        host = self.host
        connect_kwargs: dict[str, object] = {"allow_agent": True}
        if host.key_file:
            connect_kwargs["key_filename"] = str(Path(host.key_file).expanduser())
            connect_kwargs["look_for_keys"] = False
        conn = Connection(
            host=host.address, user=host.user, port=host.port,
            connect_timeout=host.connect_timeout, connect_kwargs=connect_kwargs,
            config=FabricConfig(lazy=True),
        )
        if self.known_hosts.exists():
            conn.client.load_host_keys(str(self.known_hosts))
        elif host.host_key_policy == "strict":
            raise UserError(
                f"known_hosts file {self.known_hosts} does not exist, so the key of "
                f"{host.address} cannot be verified: create it with the host's verified key "
                f"(ssh-keyscan -p {host.port} {host.address} >> {self.known_hosts}, then "
                "compare the fingerprint) or set host_key_policy: accept-new")
        policy: paramiko.MissingHostKeyPolicy = (
            _AcceptNew(self.known_hosts) if host.host_key_policy == "accept-new"
            else paramiko.RejectPolicy())
        conn.client.set_missing_host_key_policy(policy)
        try:
            conn.open()
        except paramiko.BadHostKeyException:
            raise UserError(
                f"the host key of {host.address}:{host.port} does not match {self.known_hosts}: "
                "someone may be intercepting the connection, or the host was rebuilt. Verify "
                "the new key out of band, then replace its line in known_hosts") from None
        except paramiko.AuthenticationException:
            raise UserError(
                f"SSH authentication failed for {host.user}@{host.address}:{host.port}"
                f" with key {host.key_file or '(agent/default keys)'}: check hosts[].user and "
                "hosts[].key_file, and that the public key is in the host's authorized_keys"
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise UserError(
                    f"the host key of {host.address}:{host.port} is not in {self.known_hosts}: "
                    f"add it after verifying its fingerprint (ssh-keyscan -p {host.port} "
                    f"{host.address}), or set host_key_policy: accept-new") from None
            raise UserError(f"SSH to {host.label} failed: {exc}") from None
        except socket.gaierror:
            raise UserError(f"cannot resolve host {host.address}: check hosts[].address") from None
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise UserError(
                f"cannot reach {host.address}:{host.port} over SSH ({reason}): check that the "
                "host is up, hosts[].address/port are right and a firewall lets you in") from None
        return conn

    def _start(self, step: Step) -> paramiko.Channel:
        """Open a session channel and start the step's command on it (`shlex.join`, once)."""
        transport = self.connection().client.get_transport()
        if transport is None or not transport.is_active():
            raise UserError(f"the SSH connection to {self.host.label} was lost")
        chan: paramiko.Channel = transport.open_session(timeout=self.host.connect_timeout)
        if step.timeout:
            chan.settimeout(step.timeout)
        chan.exec_command(shlex.join(step.argv))
        return chan

    def _spawn(self, step: Step) -> Pipe:
        return _ChannelPipe(self._start(step))

    def _exec(self, step: Step, on_line: LineSink | None = None) -> Result:
        chan = self._start(step)
        out: list[bytes] = []
        err: list[bytes] = []
        stdout = chan.makefile("rb")
        readers = [
            threading.Thread(target=_drain, args=(stdout, out), daemon=True) if on_line is None
            else threading.Thread(target=_drain_lines, args=(stdout, out, on_line), daemon=True),
            threading.Thread(target=_drain, args=(chan.makefile_stderr("rb"), err), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            if step.stdin:
                chan.sendall(step.stdin)
            chan.shutdown_write()
            for reader in readers:
                reader.join(step.timeout)
            code = chan.recv_exit_status()
        except OSError:
            return Result(step, 124, b"".join(out).decode("utf-8", "replace"),
                          "the command timed out or the connection dropped")
        finally:
            chan.close()
        return Result(step, code, b"".join(out).decode("utf-8", "replace"),
                      b"".join(err).decode("utf-8", "replace"))

    def _exec_to(self, step: Step, out: IO[bytes]) -> Result:
        chan = self._start(step)
        err: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(chan.makefile_stderr("rb"), err),
                                  daemon=True)
        reader.start()
        try:
            if step.stdin:
                chan.sendall(step.stdin)
            chan.shutdown_write()
            while chunk := chan.recv(1 << 20):
                out.write(chunk)
            reader.join(step.timeout)
            code = chan.recv_exit_status()
        except OSError:
            return Result(step, 124, "", "the command timed out or the connection dropped")
        finally:
            chan.close()
        return Result(step, code, "", b"".join(err).decode("utf-8", "replace"))

    def _stream(self, argv: Sequence[str], sink: Callable[[str], None] | None) -> int:
        out = _Sink(sink) if sink else None
        result = self.connection().run(shlex.join(argv), warn=True, pty=False, hide=False,
                                       out_stream=out, err_stream=out)
        return int(result.exited)

    def _interact(self, argv: Sequence[str], tty: bool) -> int:
        """A pseudo-terminal on the host (Fabric's `pty=True`): this terminal is put in
        character mode while the command runs and every keystroke goes through."""
        result = self.connection().run(shlex.join(argv), warn=True, pty=True, hide=False)
        return int(result.exited)

    def close(self) -> None:
        super().close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _ChannelPipe:
    """The stdin of a command on an SSH channel; closing sends EOF, then closes the channel."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan

    def send(self, data: bytes) -> None:
        self.chan.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self.chan.shutdown_write()
        self.chan.close()


class _Sink:
    """A file-like object handing what Fabric writes to a callable."""

    def __init__(self, fn: Callable[[str], None]) -> None:
        self.fn = fn

    def write(self, text: str) -> int:
        self.fn(text)
        return len(text)

    def flush(self) -> None:
        return None


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    try:
        while chunk := stream.read(65536):
            sink.append(chunk)
    except OSError:
        return


def _drain_lines(stream: IO[bytes], sink: list[bytes], on_line: LineSink) -> None:
    """Like `_drain`, also handing each complete line to `on_line` as soon as it arrives."""
    try:
        while line := stream.readline():
            sink.append(line)
            on_line(line.decode("utf-8", "replace").rstrip("\n"))
    except OSError:
        return


def connect(host: Host) -> Transport:
    """A transport for this host; SSH connects on first use."""
    return LocalTransport(host) if host.transport == "local" else SshTransport(host)


def on_all(transports: Iterable[Transport], fn: Callable[[Transport], T]) -> list[T]:
    """Run `fn` on every host in parallel; results in host order; the first error propagates."""
    items = list(transports)
    if len(items) <= 1:
        return [fn(t) for t in items]
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(fn, items))
