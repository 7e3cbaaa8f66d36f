"""The table (Markdown) and the fan-out plot from a run's results."""

import os

NAMES = {"rs": "this service", "rsd": "this service, durable", "rsc": "this service, Redis Cluster",
         "py": "Python port", "nchan": "Nchan", "static": "static nginx (limit)"}
# The modes of this service compared with its default (memory mode, one Redis): a column each.
MODES = {"rsd": "durable ÷ memory", "rsc": "cluster ÷ one node"}


def cell(result, key, scale=1.0):
    """A number, or what went wrong instead of it."""
    if result is None:
        return None, "–"
    if result.get("error"):
        return None, "failed: " + "; ".join(str(e) for e in result["error"])[:60]
    value = result.get(key)
    if value is None or value != value:
        return None, "–"
    value *= scale
    text = f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    errors = result.get("errors") or 0
    if errors:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.get("error_kinds", {}).items()))
        text += f" ({kinds})"
    return value, text


def ratio(mine, theirs, their_result):
    if mine[0] is None or theirs[0] is None:
        return "–"
    if their_result and (their_result.get("errors") or 0):
        kinds = their_result.get("error_kinds", {})
        if "wrong_text" in kinds:
            return "wrong text"
        return "errors"
    if theirs[0] == 0:
        return "–"
    return f"{mine[0] / theirs[0]:.2f}"


def rows(results):
    out = []

    def add(label, group, key, systems=("rs", "rsd", "rsc", "py", "nchan", "static"), scale=1.0, better="↓"):
        if group is None:
            return
        if "rs" in systems:
            systems = tuple(systems) + tuple(m for m in MODES if m not in systems)
        values = {s: cell(group.get(s), key, scale) if s in systems else (None, "–") for s in NAMES}
        mine = values["rs"]
        ratios = [ratio(mine, values[s], group.get(s)) if s in systems else "–" for s in ("py", "nchan", "static")]
        modes = [ratio(values[m], mine, group.get("rs")) if group.get(m) else "–" for m in MODES]
        if all(values[s][1] == "–" for s in NAMES):
            return  # a row that no system of this run measured
        out.append([f"{label} {better}"] + [values[s][1] for s in NAMES] + ratios + modes)

    for followers, group in sorted((results.get("fanout") or {}).items(), key=lambda x: int(x[0])):
        if int(followers) in (100, 1000):
            add(f"1. fan-out in step, {followers} followers: time to all, p50 ms", group, "p50_ms")
            add(f"1. … p99 ms", group, "p99_ms")
            add(f"1. … chunks/s delivered", group, "chunks_per_s", better="↑")
    for followers, group in sorted((results.get("free") or {}).items(), key=lambda x: int(x[0])):
        add(f"1. free-running source, {followers} followers: chunks/s", group, "chunks_per_s", better="↑")
    def number(group, key, fallback):
        for r in (group or {}).values():
            if isinstance(r, dict) and isinstance(r.get(key), (int, float)):
                return f"{r[key]:,.0f}"
        return fallback

    short = results.get("short")
    add(f"2. {number(short, 'streams', '1,000')} concurrent short streams of 100 chunks: chunks/s", short, "chunks_per_s", ("rs", "py", "static"), better="↑")
    add("2. … a stream's time, p99 ms", short, "p99_ms", ("rs", "py", "static"))
    add("2. … Redis commands per chunk", short, "commands_per_chunk", ("rs",))
    add("2. … commands on the busiest Redis node, % of all", short, "busiest_node_percent", ("rsc",), better="")
    sustained = results.get("sustained")
    add(f"2. new streams offered at {number(sustained, 'offered_per_s', '1,000')}/s: completed/s", sustained, "completed_per_s",
        ("rs", "py", "static"), better="↑")
    add("2. … refused (503)", sustained, "refused", ("rs", "py", "static"), better="")
    add("2. … a stream's time, p99 ms", sustained, "p99_ms", ("rs", "py", "static"))
    resume = results.get("resume")
    add(f"3. {number(resume, 'resumes', '200')} resumes of 1 MiB on the other instance: first text, p50 ms", resume, "first_p50_ms")
    add("3. … first text, p99 ms", resume, "first_p99_ms")
    add("3. … whole stream, p50 ms", resume, "whole_p50_ms")
    add("3. … whole stream, p99 ms", resume, "whole_p99_ms")
    for followers, group in sorted((results.get("idle") or {}).items(), key=lambda x: int(x[0])):
        add(f"4. {followers} idle followers: KiB each, followers' instance", group, "per_follower_kib_B",
            ("rs", "py", "nchan"))
        add(f"4. … KiB each, producer's instance", group, "per_follower_kib_A", ("rs", "py", "nchan"))
        add(f"4. … KiB each, redis-server", group, "per_follower_kib_redis", ("rs", "py", "nchan"))
    stalled = results.get("stalled")
    add(f"5. {number(stalled, 'readers', '1,000')} stalled readers of 8 MiB: KiB each", stalled, "per_reader_kib")
    add("5. … server CPU % while they hang", stalled, "cpu_B_percent")
    add("5. … a normal reader beside them, MiB/s", stalled, "reader_mib_per_s", better="↑")
    add("5. … RSS before them, MiB", stalled, "rss_before_mib", better="")
    add("5. … RSS 2 s after they close, MiB", stalled, "rss_closed_mib", better="")
    for instances in ("1", "2", "3"):
        group = {s: v.get(instances) or v.get(int(instances)) for s, v in (results.get("commands") or {}).items()}
        if group:
            add(f"6. Redis commands per chunk, followers on {instances} instance(s)", group,
                "commands_per_chunk", ("rs", "py", "nchan"))
            add(f"6. … of them PUBLISH" + (" (SPUBLISH in the cluster)" if group.get("rsc") else ""),
                group, "publish_per_chunk", ("rs", "py", "nchan"))
    return out


def table(results):
    header = ["scenario (↓ lower is better, ↑ higher)"] + list(NAMES.values()) + [
        "÷ Python port", "÷ Nchan", "÷ limit"] + list(MODES.values())
    body = rows(results)
    # A mode of this service that did not run has no column.
    keep = [i for i in range(len(header)) if i == 0 or any(row[i] != "–" for row in body)
            or header[i] not in list(MODES.values()) + [NAMES[m] for m in MODES]]
    lines = ["| " + " | ".join(header[i] for i in keep) + " |", "|" + "---|" + "--:|" * (len(keep) - 1)]
    for row in body:
        lines.append("| " + " | ".join(row[i] for i in keep) + " |")
    return "\n".join(lines)


def node_spread(results):
    """How the cluster's commands spread over its three nodes, per scenario and round."""
    lines = []
    short = (results.get("short") or {}).get("rsc")
    if short:
        for index, r in enumerate(short.get("per_round") or []):
            if r.get("node_share_percent"):
                shares = " / ".join(f"{p:.1f} %" for p in r["node_share_percent"])
                lines.append(f"- short streams, round {index + 1}: commands per node {shares} "
                             f"({r.get('commands_per_chunk', 0):.2f} per chunk in all)")
    for instances, r in sorted(((results.get("commands") or {}).get("rsc") or {}).items()):
        if r.get("commands_per_node"):
            lines.append(f"- commands per chunk, followers on {instances} instance(s): commands per node "
                         + " / ".join(str(n) for n in r["commands_per_node"]))
    return "\n".join(["Redis Cluster, commands per node (nodes 1, 2, 3):"] + lines) if lines else ""


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fanout = results.get("fanout") or {}
    counts = sorted(int(n) for n in fanout)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = dict(NAMES, static="static nginx (each follower GETs one event)")
    for system, label in labels.items():
        xs, p50, p99 = [], [], []
        for n in counts:
            r = fanout.get(n) or fanout.get(str(n)) or {}
            r = r.get(system) or {}
            if r.get("p50_ms") is not None and not r.get("error"):
                xs.append(n)
                p50.append(r["p50_ms"])
                p99.append(r.get("p99_ms"))
        if xs:
            line, = ax.plot(xs, p50, marker="o", label=f"{label}, p50")
            ax.plot(xs, p99, marker="x", linestyle="--", color=line.get_color(), alpha=0.6, label=f"{label}, p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("followers (on the second instance)")
    ax.set_ylabel("time from a token's send to the last follower, ms")
    ax.set_title("Fan-out in step: one 16-byte token at a time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(results, out):
    text = table(results)
    spread = node_spread(results)
    if spread:
        text += "\n\n" + spread
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    if results.get("fanout"):
        path = os.path.join(out, "end-to-end-fanout.png")
        plot(results, path)
        print(f"plot: {path}")


if __name__ == "__main__":
    import json
    import sys

    # Several files: their scenarios together (a later file's scenario replaces an earlier one's).
    paths = sys.argv[1:] or [os.path.join(os.path.dirname(os.path.abspath(__file__)), ".build", "results", "latest.json")]
    results = {}
    for path in paths:
        results.update(json.load(open(path)))
    write(results, os.path.dirname(os.path.abspath(paths[-1])))
