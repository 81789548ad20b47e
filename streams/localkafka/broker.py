"""Fetch, format, start, probe and stop one local KRaft broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streams import child_process
from streams.errors import BrokerError
from streams.parts import MAX_MESSAGE_BYTES

DEFAULT_KAFKA_VERSION = "3.9.1"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"

# Kafka 3.x logs through slf4j 1.7 and brings no backend; 4.x moved to log4j2.
_LOGGING_3 = """\
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId>
      <version>1.2.25</version></dependency>"""
_LOGGING_4 = """\
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>"""
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka.server
logger.kafka.level = info
"""


def cache_root() -> Path:
    return Path(os.environ.get("BATCHWIRE_CACHE_DIR") or Path.home() / ".cache" / "batchwire")


def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"`{tool}` is not on PATH; it is needed {why}. Install it and retry.")
    return path


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError as exc:
        raise BrokerError(f"not a Kafka version: {version!r}") from exc


def fetch_kafka(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Return the folder holding the broker's jars, resolving them with Maven the first time.

    Processes that start brokers at once (the test suite's pytest workers, a demo beside
    it) take turns: the first fetches, the others wait for it and find the jars there."""
    home = cache_root() / f"kafka-{version}"
    libs = home / "libs"
    if (home / "complete").exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home / "fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (home / "complete").exists():
            _resolve_jars(home, version)
    return libs


def _resolve_jars(home: Path, version: str) -> None:
    libs = home / "libs"
    mvn = _require("mvn", "once, to fetch the Kafka broker jars from Maven Central")
    template = resources.files("streams.localkafka").joinpath("pom.xml").read_text()
    logging = _LOGGING_4 if _major(version) >= 4 else _LOGGING_3
    pom = template.replace("@KAFKA_VERSION@", version).replace("@LOGGING_DEPENDENCIES@", logging)
    (home / "pom.xml").write_text(pom)
    shutil.rmtree(libs, ignore_errors=True)
    proc = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            DEPENDENCY_PLUGIN,
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BrokerError(f"could not fetch Kafka {version} from Maven Central:\n{tail}")
    (home / "complete").write_text(version)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_id() -> str:
    """A random KRaft cluster id that StorageTool's argument parser accepts.

    The id is URL-safe base64 of a UUID, so about 1 in 64 start with "-", which the
    parser reads as an option; Kafka's own ``Uuid.randomUuid`` skips those too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except (OSError, ValueError):
        return False
    return True


async def _admin_answers(bootstrap: str, group: str | None) -> bool:
    """A metadata request (and, with `group`, a group coordinator lookup) succeeds."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.describe_cluster()
        if group is not None:
            await admin.find_coordinator(group)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def metadata_answers(bootstrap: str) -> bool:
    """True when a broker at `bootstrap` answers a metadata request.  (A closed port answers
    at once; only an open one is worth a request.)"""
    return _port_open(bootstrap) and asyncio.run(_admin_answers(bootstrap, None))


def ready_for_groups(bootstrap: str) -> bool:
    """The first group lookup on a new broker creates `__consumer_offsets`; until that is
    done, consumer groups cannot join.  A broker is ready once a lookup succeeds."""
    return _port_open(bootstrap) and asyncio.run(_admin_answers(bootstrap, "batchwire-readiness"))


@dataclass
class LocalBroker:
    """One broker+controller whose files (config, data, log, pid) live under `home`."""

    home: Path
    version: str = DEFAULT_KAFKA_VERSION
    port: int = 0
    heap: str = "1g"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def port_file(self) -> Path:
        return self.home / "broker.port"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running_pid(self) -> int | None:
        """The pid of this home's broker when its process is alive."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def load_port(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.port = int(self.port_file.read_text())

    def _write_config(self, controller_port: int) -> Path:
        data = self.home / "data"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
            "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
            "log.retention.hours": "24",
            "log.segment.bytes": "134217728",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        cfg = self.home / "server.properties"
        cfg.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return cfg

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        java = _require("java", "to run the Kafka broker (Java 17 works)")
        if _major(self.version) >= 4:
            (self.home / "log4j2.properties").write_text(_LOG4J2)
            logcfg = f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}"
        else:
            props = resources.files("streams.localkafka").joinpath("log4j.properties")
            logcfg = f"-Dlog4j.configuration=file:{props}"
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            logcfg,
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    @property
    def controller_port_file(self) -> Path:
        return self.home / "controller.port"

    def formatted(self) -> bool:
        """The data dir holds a formatted KRaft log (StorageTool writes `meta.properties`)."""
        return (self.home / "data" / "meta.properties").exists()

    def start(
        self, timeout: float = 90.0, *, keep_data: bool = False, die_with_parent: bool = False
    ) -> str:
        """Format and start the broker; return its bootstrap address once metadata answers.

        `keep_data=True` restarts on the topics and offsets of the last run when the data
        dir is formatted (same port, same controller port, no new cluster id), as a real
        broker does after a restart; otherwise the data dir is wiped and formatted anew.
        `die_with_parent=True` stops the broker when this process dies, even by SIGKILL
        (`streams.child_process`): for a demo or a test session, not for `kafka up`.
        """
        if self.running_pid() is not None:
            self.load_port()
            if metadata_answers(self.bootstrap):
                return self.bootstrap
            self.stop()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        elif not _port_is_free(self.port):
            raise BrokerError(
                f"port {self.port} on 127.0.0.1 is taken; stop what holds it "
                "or choose another port (--port 0 picks a free one)"
            )
        libs = fetch_kafka(self.version)
        reuse = keep_data and self.formatted()
        cfg = self._write_config(self._controller_port(reuse))
        if not reuse:
            self._format(libs, cfg)
        with self.log_file.open("wb") as log:
            proc = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(cfg)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=child_process.die_with_parent() if die_with_parent else None,
            )
        self.pid_file.write_text(str(proc.pid))
        self.port_file.write_text(str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._forget()
                raise BrokerError(f"the broker exited with {proc.returncode}:\n{self.log_tail()}")
            if ready_for_groups(self.bootstrap):
                return self.bootstrap
            time.sleep(0.3)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def _controller_port(self, reuse: bool) -> int:
        """The last run's controller port when restarting on its data, else a free one."""
        port = 0
        if reuse:
            with contextlib.suppress(OSError, ValueError):
                port = int(self.controller_port_file.read_text())
        if port == 0 or not _port_is_free(port):
            port = free_port()
        self.controller_port_file.write_text(str(port))
        return port

    def _format(self, libs: Path, cfg: Path) -> None:
        shutil.rmtree(self.home / "data", ignore_errors=True)
        cluster_id = _cluster_id()
        fmt = subprocess.run(
            self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(cfg)),
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL); True when one was running."""
        pid = self.running_pid()
        if pid is None:
            self._forget()
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.2)
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self._forget()
        return True

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return "stopped"
        self.load_port()
        state = "ready" if metadata_answers(self.bootstrap) else "not answering"
        return f"{state}: pid {pid}, bootstrap {self.bootstrap}, log {self.log_file}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])
