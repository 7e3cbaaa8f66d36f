"""Starts the systems on loopback, runs the load generator against each in alternation, measures
memory, CPU and Redis commands from outside, and writes the results (JSON, a Markdown table, the
fan-out plot). Run through ./run, which builds what it needs first."""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, ".build")
GENERATOR = os.path.join(HERE, "LoadGenerator", ".build", "release", "e2e-load")
VENV_BIN = os.path.join(BUILD, "venv", "bin")
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
MEMORY_GUARD = 6 * 1024**3  # a server over this is killed, so that the machine survives it
SYSTEMS = ["rs", "py", "nchan"]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port():
    """A free port whose cluster bus port (the port + 10000) is a port too and free as well."""
    while True:
        port = free_port()
        if port + 10000 >= 65536:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def tree(pid):
    """The process and its children (nginx's workers)."""
    pids = [pid]
    try:
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            pids += tree(int(child))
    except OSError:
        pass
    return pids


def rss(pid):
    """Resident memory of the process and its children, in bytes."""
    total = 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_ticks(pid):
    total = 0
    for p in tree(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    """One process of a system, restarted when it has died."""

    def __init__(self, name, command, port, env=None, cwd=None):
        self.name, self.command, self.port, self.env, self.cwd = name, command, port, env, cwd
        self.process = None
        self.restarts = 0

    def start(self):
        log = open(os.path.join(RUN, f"{self.name}.log"), "ab")
        env = dict(os.environ, **(self.env or {}))
        self.process = subprocess.Popen(
            self.command, env=env, cwd=self.cwd, stdout=log, stderr=log, preexec_fn=raise_nofile
        )
        wait_port(self.port)

    def ensure(self):
        if self.process.poll() is not None:
            self.restarts += 1
            print(f"  {self.name} had exited ({self.process.returncode}); restarting", flush=True)
            self.start()

    @property
    def pid(self):
        return self.process.pid

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_cli(port, *args):
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
    ).stdout


def commandstats(port):
    stats = {}
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            stats[name] = int(dict(f.split("=") for f in fields.split(","))["calls"])
    return stats


def own_commands(stats):
    """Commandstats less the benchmark's own INFO and CONFIG RESETSTAT and health-check PINGs."""
    return {k: v for k, v in stats.items() if k.split("|")[0] not in ("info", "config", "ping")}


class RedisCluster:
    """Three masters on loopback, no replicas, formed with redis-cli --cluster create."""

    def __init__(self):
        self.nodes = []
        for index in range(3):
            port = free_cluster_port()
            self.nodes.append(Server(f"cluster-{index + 1}", [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "15000", "--cluster-require-full-coverage", "no",
                "--save", "", "--appendonly", "no", "--maxclients", "15000",
            ], port))

    @property
    def ports(self):
        return [node.port for node in self.nodes]

    @property
    def url(self):
        return "redis://" + ",".join(node.address for node in self.nodes)

    def start(self):
        for node in self.nodes:
            node.cwd = os.path.join(RUN, node.name)
            os.makedirs(node.cwd, exist_ok=True)
            node.start()
        if "cluster_known_nodes:3" not in redis_cli(self.ports[0], "CLUSTER", "INFO"):
            subprocess.run(["redis-cli", "--cluster", "create", *[n.address for n in self.nodes],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           capture_output=True, text=True, check=True)
        self.wait_ok()

    def wait_ok(self, timeout=60):
        """Until every node's CLUSTER INFO says cluster_state:ok."""
        deadline = time.time() + timeout
        while True:
            states = [redis_cli(p, "CLUSTER", "INFO") for p in self.ports]
            if all("cluster_state:ok" in s for s in states):
                return
            if time.time() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok: " + " | ".join(
                    next((l for l in s.splitlines() if l.startswith("cluster_state")), "?") for s in states))
            time.sleep(0.2)

    def restart(self):
        """The same nodes anew, empty: each reads its nodes.conf back and the cluster is whole again."""
        for node in self.nodes:
            node.stop()
        for node in self.nodes:
            node.start()
        self.wait_ok()

    def flush(self):
        for port in self.ports:
            redis_cli(port, "FLUSHALL")

    def reset_stats(self):
        for port in self.ports:
            redis_cli(port, "CONFIG", "RESETSTAT")

    def stats(self):
        """Each node's commandstats (calls), less the benchmark's own commands."""
        return [own_commands(commandstats(port)) for port in self.ports]


def nginx_config(directory, port, redis_port, static_root=None):
    os.makedirs(directory, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"  {kind}_temp_path {directory}/{kind};\n"
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    )
    if static_root:
        module, upstream = "", ""
        locations = f"""    root {static_root};
    location / {{ default_type text/event-stream; }}
"""
    else:
        module = f"load_module {NCHAN_MODULE};\n"
        upstream = f"  upstream redis_server {{ nchan_redis_server redis://127.0.0.1:{redis_port}; }}\n"
        locations = """    location ~ ^/pub/([\\w-]+)$ {
      nchan_publisher; nchan_channel_id $1; nchan_redis_pass redis_server;
      nchan_message_buffer_length 100000; nchan_message_timeout 10m;
    }
    location ~ ^/sub/([\\w-]+)$ {
      nchan_subscriber eventsource; nchan_channel_id $1; nchan_redis_pass redis_server;
      nchan_subscriber_first_message oldest;
    }
"""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"""{module}{user}worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
error_log {directory}/error.log error;
pid {directory}/nginx.pid;
events {{ worker_connections {nofile - 100}; multi_accept on; }}
http {{
  access_log off;
{temp}  client_max_body_size 16m;
  client_body_buffer_size 64k;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  sendfile on;
{upstream}  server {{
    listen 127.0.0.1:{port} backlog=4096;
{locations}  }}
}}
""")
    return ["nginx", "-c", path, "-p", directory]


class Bench:
    def __init__(self, args):
        self.args = args
        self.servers = []
        self.redis_port = free_port()
        self.redis = Server(
            "redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--maxclients", "15000"],
            self.redis_port,
        )
        self.cluster = RedisCluster() if args.cluster else None
        self.instances = {}
        self.guard_stop = threading.Event()
        self.killed = []

    # -- processes ----------------------------------------------------------------------------

    def start(self):
        self.redis.start()
        self.servers.append(self.redis)
        if self.cluster:
            self.cluster.start()
            self.servers += self.cluster.nodes
        redis_url = f"redis://127.0.0.1:{self.redis_port}"
        for system in SYSTEMS:
            self.instances[system] = []
            for index in range(3):
                port = free_port()
                name = f"{system}-{'ABC'[index]}"
                if system in ("rs", "rsd", "rsc"):
                    server = Server(name, [self.args.server], port, env={
                        "HOST": "127.0.0.1", "PORT": str(port),
                        "REDIS_URL": self.cluster.url if system == "rsc" else redis_url,
                        "REDIS_MODE": "cluster" if system == "rsc" else "standalone",
                        "LOG_LEVEL": "error", "MAX_STREAMS": "20000", "MAX_READERS": "50000",
                        "REPLAY_GRACE_SECONDS": "60",
                        "DURABILITY": "redis" if system == "rsd" else "memory",
                    })
                elif system == "py":
                    server = Server(name, [
                        os.path.join(VENV_BIN, "uvicorn"), "pyport_app:app", "--host", "127.0.0.1",
                        "--port", str(port), "--log-level", "error", "--no-access-log",
                        "--loop", "uvloop", "--http", "httptools", "--backlog", "4096",
                    ], port, env={"REDIS_URL": redis_url}, cwd=HERE)
                else:
                    server = Server(name, nginx_config(os.path.join(RUN, name), port, self.redis_port), port)
                server.start()
                self.servers.append(server)
                self.instances[system].append(server)
        static_root = os.path.join(RUN, "static-files")
        os.makedirs(static_root, exist_ok=True)
        for size, count in [(16, 1), (16, 100), (16, self.args.free_tokens), (16384, 64), (16384, 512)]:
            self.generator("write-sse", ["--token-size", size, "--tokens", count, "--dir", static_root])
        port = free_port()
        self.static = Server("static", nginx_config(os.path.join(RUN, "static"), port, None, static_root), port)
        self.static.start()
        self.servers.append(self.static)
        threading.Thread(target=self.guard, daemon=True).start()

    def guard(self):
        while not self.guard_stop.wait(0.5):
            for server in self.servers:
                if server.process.poll() is None and rss(server.pid) > MEMORY_GUARD:
                    print(f"  {server.name} is over {MEMORY_GUARD >> 30} GiB: killed", flush=True)
                    self.killed.append(server.name)
                    for p in tree(server.pid):
                        os.kill(p, signal.SIGKILL)

    def stop(self):
        self.guard_stop.set()
        for server in reversed(self.servers):
            server.stop()

    def ensure(self):
        for server in self.servers:
            server.ensure()

    def fresh(self, restart_redis=False):
        """Every system's instances anew and an empty Redis, between scenarios: what one scenario
        left behind (a Python listener that Redis disconnected, memory) does not carry over. Before
        each round of a memory scenario Redis starts anew too, since a process keeps freed memory."""
        servers = [s for system in SYSTEMS for s in self.instances[system]] + [self.static]
        for server in servers:
            server.stop()
        if restart_redis:
            self.redis.stop()
            self.redis.start()
            if self.cluster:
                self.cluster.restart()
        else:
            redis_cli(self.redis_port, "FLUSHALL")
            if self.cluster:
                self.cluster.flush()
        for server in servers:
            server.start()

    # -- the load generator --------------------------------------------------------------------

    def generator(self, scenario, options, on_phase=None, timeout=900):
        command = [GENERATOR, scenario] + [str(o) for o in options]
        if self.args.wrong:
            command.append("--wrong")
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        result = {"error": "the load generator ended without a result"}
        try:
            for line in process.stdout:
                message = json.loads(line)
                if "phase" in message:
                    if on_phase:
                        on_phase(message)
                    process.stdin.write("\n")
                    process.stdin.flush()
                elif "result" in message:
                    result = message["result"]
        finally:
            timer.cancel()
            process.wait()
        return result

    def run(self, scenario, system, options, on_phase=None):
        self.ensure()
        stream_id = f"{scenario}-{system}-{uuid.uuid4().hex[:8]}"
        # The durable mode and the cluster mode speak the same HTTP API.
        options = options + ["--system", "rs" if system in ("rsd", "rsc") else system, "--id", stream_id]
        return self.generator(scenario, options, on_phase)

    def a(self, system):
        return self.instances[system][0].address

    def b(self, system):
        return self.instances[system][1].address


def median(values):
    values = [v for v in values if isinstance(v, (int, float)) and v == v]
    return statistics.median(values) if values else None


def combine(results):
    """Medians of the numbers of a run's rounds; errors added up, with their samples."""
    out = {"rounds": len(results), "per_round": results}
    keys = {k for r in results for k in r}
    for key in keys - {"per_round"}:
        values = [r.get(key) for r in results]
        if key in ("errors",):
            out[key] = sum(v or 0 for v in values)
        elif key == "error_kinds":
            kinds = {}
            for v in values:
                for k, n in (v or {}).items():
                    kinds[k] = kinds.get(k, 0) + n
            out[key] = kinds
        elif key in ("error_samples",):
            out[key] = [s for v in values for s in (v or [])][:5]
        elif key == "error":
            out[key] = [v for v in values if v]
        elif all(isinstance(v, bool) for v in values if v is not None):
            out[key] = all(values)
        elif all(isinstance(v, (int, float)) for v in values if v is not None):
            out[key] = median(values)
        else:
            out[key] = values
    return out


def alternate(bench, rounds, systems, make):
    """Runs make(system) for each system in turn, `rounds` times; medians per system."""
    results = {s: [] for s in systems}
    for round_index in range(rounds):
        for system in systems:
            result = make(system)
            print(f"    {system} round {round_index + 1}: {summary(result)}", flush=True)
            results[system].append(result)
    return {s: combine(r) for s, r in results.items()}


def summary(result):
    keys = ["p50_ms", "p99_ms", "chunks_per_s", "completed", "completed_per_s", "refused",
            "first_p50_ms", "whole_p50_ms", "per_follower_kib", "per_reader_kib", "reader_mib_per_s",
            "commands_per_chunk", "node_share_percent", "errors", "error"]
    return ", ".join(f"{k}={fmt(result[k])}" for k in keys if k in result)


def fmt(value):
    if isinstance(value, list):
        return "/".join(fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


# -- scenarios ---------------------------------------------------------------------------------

def fanout(bench, followers, tokens, mode, rounds):
    def make(system):
        if system == "static":
            return bench.generator("static-fanout", [
                "--follow", bench.static.address, "--followers", followers,
                "--tokens", tokens if mode == "step" else bench.args.free_tokens,
                "--mode", mode, "--repeat", 1,
            ])
        return bench.run("fanout", system, [
            "--publish", bench.a(system), "--follow", bench.b(system), "--followers", followers,
            "--tokens", tokens, "--mode", mode,
        ])
    return alternate(bench, rounds, SYSTEMS + ["static"], make)


def redis_stats(bench, system):
    """The commandstats of the Redis a system uses, per node (one node but for the cluster)."""
    if system == "rsc":
        return bench.cluster.stats()
    return [own_commands(commandstats(bench.redis_port))]


def reset_redis_stats(bench, system):
    if system == "rsc":
        bench.cluster.reset_stats()
    else:
        redis_cli(bench.redis_port, "CONFIG", "RESETSTAT")


def count_commands(result, nodes, chunks):
    """Commands per chunk, PUBLISH and SPUBLISH among them, and how they spread over the nodes."""
    total = {}
    for stats in nodes:
        for name, calls in stats.items():
            total[name] = total.get(name, 0) + calls
    calls = sum(total.values())
    result["commands_per_chunk"] = calls / chunks
    result["publish_per_chunk"] = (total.get("publish", 0) + total.get("spublish", 0)) / chunks
    result["by_command"] = {k: v / chunks for k, v in sorted(total.items())}
    result["commands_per_node"] = [sum(stats.values()) for stats in nodes]
    result["node_share_percent"] = [100 * sum(stats.values()) / calls if calls else 0 for stats in nodes]
    result["busiest_node_percent"] = max(result["node_share_percent"])
    if len(nodes) > 1:
        result["by_node"] = [{k: v for k, v in sorted(stats.items())} for stats in nodes]


def short(bench, streams, rounds):
    def make(system):
        target = bench.static.address if system == "static" else bench.a(system)
        if system in ("rs", "rsd", "rsc"):
            reset_redis_stats(bench, system)
        result = bench.run("short", system, ["--target", target, "--streams", streams, "--count", 100])
        if system in ("rs", "rsd", "rsc") and not result.get("error"):
            # Only this system's instances touch this Redis while it runs (the Python port shares
            # the one node, but runs in its own turn).
            count_commands(result, redis_stats(bench, system), streams * 100)
        return result
    return alternate(bench, rounds, [s for s in SYSTEMS if s != "nchan"] + ["static"], make)


def sustained(bench, rate, seconds, rounds):
    def make(system):
        target = bench.static.address if system == "static" else bench.a(system)
        return bench.run("sustained", system, [
            "--target", target, "--rate", rate, "--seconds", seconds, "--count", 100])
    return alternate(bench, rounds, [s for s in SYSTEMS if s != "nchan"] + ["static"], make)


def resume(bench, resumes, rounds):
    def make(system):
        follow = bench.static.address if system == "static" else bench.b(system)
        publish = bench.static.address if system == "static" else bench.a(system)
        return bench.run("resume", system, [
            "--publish", publish, "--follow", follow, "--resumes", resumes,
            "--token-size", 16384, "--tokens", 64])
    return alternate(bench, rounds, SYSTEMS + ["static"], make)


def processes(bench, system):
    if system == "static":
        return {"static": bench.static}
    a, b = bench.instances[system][:2]
    return {"A": a, "B": b, "redis": bench.cluster.nodes if system == "rsc" else bench.redis}


def rss_of(process):
    """RSS of a server, or of several together (the cluster's nodes)."""
    return sum(rss(p.pid) for p in process) if isinstance(process, list) else rss(process.pid)


def cpu_of(process):
    return sum(cpu_ticks(p.pid) for p in process) if isinstance(process, list) else cpu_ticks(process.pid)


def idle(bench, followers, rounds):
    def make(system):
        bench.fresh(restart_redis=True)
        procs = processes(bench, system)
        before = {}
        after = {}

        def on_phase(message):
            if message["phase"] == "before":
                time.sleep(1)
                before.update({n: rss_of(p) for n, p in procs.items()})
            elif message["phase"] == "connected":
                time.sleep(2)
                after.update({n: rss_of(p) for n, p in procs.items()})
        result = bench.run("idle", system, [
            "--publish", bench.a(system), "--follow", bench.b(system), "--followers", followers],
            on_phase)
        for name in procs:
            if name in before and name in after:
                result[f"per_follower_kib_{name}"] = (after[name] - before[name]) / followers / 1024
                result[f"rss_mib_{name}"] = after[name] / 2**20
        result["per_follower_kib"] = result.get("per_follower_kib_B")
        return result
    return alternate(bench, rounds, SYSTEMS, make)


def stalled(bench, readers, rounds):
    def make(system):
        bench.fresh(restart_redis=True)
        procs = processes(bench, system)
        server = procs.get("B", procs.get("static"))
        marks = {}

        def on_phase(message):
            phase = message["phase"]
            if phase == "before":
                time.sleep(1)
                marks["before"] = rss(server.pid)
            elif phase == "stalled":
                marks["stalled"] = rss(server.pid)
                ticks = {n: cpu_of(p) for n, p in procs.items()}
                time.sleep(3)
                for n, p in procs.items():
                    marks[f"cpu_{n}"] = (cpu_of(p) - ticks[n]) / TICKS / 3 * 100
            elif phase == "closed":
                time.sleep(2)
                marks["closed"] = rss(server.pid)
        follow = bench.static.address if system == "static" else bench.b(system)
        publish = bench.static.address if system == "static" else bench.a(system)
        result = bench.run("stalled", system, [
            "--publish", publish, "--follow", follow, "--readers", readers,
            "--token-size", 16384, "--tokens", 512, "--rcvbuf", 4096], on_phase)
        if "before" in marks and "stalled" in marks:
            result["per_reader_kib"] = (marks["stalled"] - marks["before"]) / readers / 1024
            result["rss_before_mib"] = marks["before"] / 2**20
            result["rss_stalled_mib"] = marks["stalled"] / 2**20
        if "closed" in marks:
            result["rss_closed_mib"] = marks["closed"] / 2**20
        for key, value in marks.items():
            if key.startswith("cpu_"):
                result[f"{key}_percent"] = value
        return result
    return alternate(bench, rounds, SYSTEMS + ["static"], make)


def commands(bench, per_instance, tokens):
    """Redis commands per chunk with followers on 1, 2 and 3 instances (B; B, C; A, B, C)."""
    out = {}
    for system in SYSTEMS:
        out[system] = {}
        a, b, c = [s.address for s in bench.instances[system]]
        for count, follow in [(1, [b]), (2, [b, c]), (3, [a, b, c])]:
            stats = {}

            nodes = []

            def on_phase(message):
                if message["phase"] == "warm":
                    if system == "rsc":
                        bench.cluster.reset_stats()
                    else:
                        redis_cli(bench.redis_port, "CONFIG", "RESETSTAT")
                elif message["phase"] == "sent":
                    # Less the benchmark's own INFO and CONFIG RESETSTAT, and health-check PINGs;
                    # the cluster's three nodes added up.
                    nodes.extend(bench.cluster.stats() if system == "rsc"
                                 else [own_commands(commandstats(bench.redis_port))])
            result = bench.run("fanout", system, [
                "--publish", a, "--follow", ",".join(follow), "--followers", per_instance * count,
                "--tokens", tokens, "--mode", "step", "--pause"], on_phase)
            count_commands(result, nodes, tokens)
            print(f"    {system} on {count}: {summary(result)} {result['by_command']}"
                  + (f" per node {result['commands_per_node']}" if system == "rsc" else ""), flush=True)
            out[system][count] = result
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True, help="the resumable-stream-server binary")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller numbers")
    parser.add_argument("--only", default="", help="comma-separated scenarios (fanout,free,short,"
                        "sustained,resume,idle,stalled,commands)")
    parser.add_argument("--durable", action="store_true",
                        help="also three instances of this service with --durability redis")
    parser.add_argument("--cluster", action="store_true",
                        help="also three instances of this service with --redis-mode cluster on a "
                        "three-master Redis Cluster of their own")
    parser.add_argument("--wrong", action="store_true",
                        help="expect text one token off: every byte check must fail")
    parser.add_argument("--out", default=os.path.join(BUILD, "results"))
    parser.add_argument("--label", default="the work tree", help="what the server was built from")
    args = parser.parse_args()
    quick = args.quick
    args.free_tokens = 200 if quick else 500
    rounds = 1 if quick else 3
    only = set(filter(None, args.only.split(",")))
    if args.durable:
        SYSTEMS.insert(1, "rsd")
    if args.cluster:
        SYSTEMS.insert(SYSTEMS.index("rs") + 1 + args.durable, "rsc")

    def wanted(name):
        return not only or name in only

    global RUN
    RUN = os.path.join(BUILD, "run")
    shutil.rmtree(RUN, ignore_errors=True)
    os.makedirs(RUN)
    os.makedirs(args.out, exist_ok=True)
    raise_nofile()
    bench = Bench(args)
    results = {"quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "server": args.label,
               "load_before": os.getloadavg(), "systems": list(SYSTEMS)}
    try:
        bench.start()
        def scenario(name):
            if not wanted(name):
                return False
            if scenario.ran:
                bench.fresh()
            scenario.ran = True
            return True
        scenario.ran = False

        if scenario("fanout"):
            results["fanout"] = {}
            for followers in ([10, 100] if quick else [10, 100, 300, 1000]):
                tokens = 50 if quick else (200 if followers in (100, 1000) else 100)
                print(f"fan-out in step, {followers} followers, {tokens} tokens", flush=True)
                results["fanout"][followers] = fanout(bench, followers, tokens, "step", rounds)
        if scenario("free"):
            results["free"] = {}
            for followers in ([100] if quick else [100, 1000]):
                print(f"fan-out free-running, {followers} followers, {args.free_tokens} tokens", flush=True)
                results["free"][followers] = fanout(bench, followers, args.free_tokens, "free", rounds)
        if scenario("short"):
            streams = 200 if quick else 1000
            print(f"{streams} concurrent short streams of 100 chunks", flush=True)
            results["short"] = short(bench, streams, rounds)
        if scenario("sustained"):
            rate, seconds = (300, 3) if quick else (1000, 10)
            print(f"new short streams at {rate}/s for {seconds} s", flush=True)
            results["sustained"] = sustained(bench, rate, seconds, rounds)
        if scenario("resume"):
            resumes = 20 if quick else 200
            print(f"{resumes} resumes of a 1 MiB live stream on the other instance", flush=True)
            results["resume"] = resume(bench, resumes, rounds)
        if scenario("idle"):
            results["idle"] = {}
            for followers in ([500, 2000] if quick else [2000, 10000]):
                print(f"{followers} idle followers", flush=True)
                results["idle"][followers] = idle(bench, followers, 1 if quick else 2)
        if scenario("stalled"):
            readers = 100 if quick else 1000
            print(f"{readers} stalled readers of an 8 MiB stream", flush=True)
            results["stalled"] = stalled(bench, readers, 1 if quick else 2)
        if scenario("commands"):
            print("Redis commands per chunk", flush=True)
            results["commands"] = commands(bench, 5 if quick else 10, 50 if quick else 200)
    finally:
        results["load_after"] = os.getloadavg()
        results["killed"] = bench.killed
        results["restarts"] = {s.name: s.restarts for s in bench.servers if s.restarts}
        bench.stop()
        path = os.path.join(args.out, "latest.json")
        with open(path, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"results: {path}", flush=True)
    import report
    report.write(results, args.out)


if __name__ == "__main__":
    main()
