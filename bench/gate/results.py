#!/usr/bin/env python3
"""Turn one scripts/bench run into results.json, a printed table and report.html.

    python3 bench/gate/results.py --dir build/bench [--quick 0|1]

Reads from DIR what scripts/bench left there: raw.tsv (one line per timed run:
labels, command, the program's one-line result), callgrind/ (one dump per C
hot-path section), jmh.json. Writes DIR/results.json: every figure with its
unit, message size, language, API and command, the machine's CPU model and
core count, and the gate's measures (see measures()); prints the tables; and
draws DIR/report.html (self-contained: inline SVG, no network resources).
Standard library only.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (the HTML page, beside this file)

LABELS = ("group", "lang", "transport", "api", "size", "producers", "rate", "round")
RTT_KEYS = ("p50", "p90", "p99", "p999", "max", "mean")
TRIGGER = "desc: Trigger: Client Request: "  # how callgrind names a dump made by CALLGRIND_DUMP_STATS_AT


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def parse_result(text):
    """A program's result line: a JSON object, or shmx-floor's 'label k=v ...'."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", text)}


def timed_figures(path):
    figures = []
    if not os.path.exists(path):
        return figures
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            labels = dict(zip(LABELS, parts[:8]))
            command, result = parts[8], parse_result(parts[9])
            if labels["size"] == "*":  # a run over several sizes names each in its result
                labels["size"] = result["size"]
            for k in ("size", "producers", "rate", "round"):
                labels[k] = int(labels[k])
            base = dict(labels, command=command)
            if labels["group"] in ("gate", "latency"):
                kind = "floor_rtt" if labels["transport"] == "floor" else "rtt"
                for k in RTT_KEYS:
                    if k in result:
                        figures.append(dict(base, metric=f"{kind}_{k}", value=result[k], unit="ns"))
                figures.append(dict(base, metric=f"{kind}_count", value=result["count"], unit="samples"))
            else:
                figures.append(dict(base, metric="msgs_per_s", value=result["msgs_per_s"], unit="messages/s"))
                figures.append(dict(base, metric="gbytes_per_s", value=result["bytes_per_s"] / 1e9, unit="GB/s"))
    return figures


def callgrind_figures(d):
    """Instructions per message of each section: the dump's total over the section's message count."""
    figures = []
    sections_file = os.path.join(d, "callgrind", "sections.txt")
    if not os.path.exists(sections_file):
        return figures
    messages = {}
    with open(sections_file) as f:
        for line in f:
            m = re.match(r"section (\S+) messages=(\d+)", line)
            if m:
                messages[m.group(1)] = int(m.group(2))
    totals = {}
    for dump in glob.glob(os.path.join(d, "callgrind", "cg.*")):
        name = total = None
        with open(dump) as f:
            for line in f:
                if line.startswith(TRIGGER):
                    name = line[len(TRIGGER):].strip()
                elif line.startswith("totals: "):
                    total = int(line.split()[1])
        if name in messages and total is not None:
            totals[name] = total
    missing = sorted(set(messages) - set(totals))
    if missing:
        raise SystemExit(f"results: no callgrind dump for sections {missing}")
    cmd = "valgrind --tool=callgrind --collect-atstart=no build/bin/shmx-bench-instr"
    for name, n in messages.items():
        size = int(name.rsplit("_", 1)[1])
        figures.append({"group": "instructions", "lang": "c", "transport": "shm", "api": name.rsplit("_", 1)[0],
                        "size": size, "producers": 1, "rate": 0, "round": 0, "metric": "instructions_per_message",
                        "value": totals[name] / n, "unit": "instructions/message", "section": name,
                        "messages": n, "command": cmd})
    return figures


def jmh_figures(d):
    figures = []
    path = os.path.join(d, "jmh.json")
    if not os.path.exists(path):
        return figures
    with open(os.path.join(d, "jmh.cmd")) as f:
        cmd = f.read().split("\t", 1)[1].strip()
    with open(path) as f:
        for b in json.load(f):
            name = b["benchmark"].rsplit(".", 1)[1]
            base = {"group": "jmh", "lang": "java", "transport": b["params"]["transport"].lower(), "api": name,
                    "size": int(b["params"]["size"]), "producers": 1, "rate": 0, "round": 0, "command": cmd}
            pm = b["primaryMetric"]
            figures.append(dict(base, metric="time_per_op", value=pm["score"], unit=pm["scoreUnit"]))
            norm = b["secondaryMetrics"].get("gc.alloc.rate.norm")
            if norm is None:
                raise SystemExit("results: JMH ran without -prof gc (no gc.alloc.rate.norm)")
            figures.append(dict(base, metric="alloc_per_op", value=norm["score"], unit=norm["scoreUnit"]))
    return figures


def find(figures, **want):
    return [f for f in figures if all(f.get(k) == v for k, v in want.items())]


def one(figures, **want):
    hits = find(figures, **want)
    return hits[0]["value"] if hits else None


# The gate's measures: (name, numerator, denominator) of 64 B round-trip p50s in the same gate round.
RATIOS = (
    ("ratio.c_shm_rtt_p50_over_floor", dict(lang="c", transport="shm"), dict(transport="floor")),
    ("ratio.c_shm_rtt_p50_over_c_uds", dict(lang="c", transport="shm"), dict(lang="c", transport="uds")),
    ("ratio.java_shm_rtt_p50_over_floor", dict(lang="java", transport="shm"), dict(transport="floor")),
    ("ratio.java_shm_rtt_p50_over_c_uds", dict(lang="java", transport="shm"), dict(lang="c", transport="uds")),
)


def measures(figures):
    """Every measure the gate may compare, computed in one place.

    exact_instr: callgrind instructions per message of a C hot-path section.
    exact_alloc: JMH bytes allocated per operation of a Java hot path.
    timing_ratio: a 64 B round-trip p50 over the Unix socket's p50 of the same gate round (so
      both saw the same machine state), the median over the run's rounds.
    floor_ratio: the same over the floor's p50 (the floor moves with where the VM's CPUs run).
    throughput_ratio: shm over uds one-way messages/s at 64 B, one producer, copying.
    """
    out = {}
    for f in find(figures, group="instructions"):
        out["instr." + f["section"]] = {"kind": "exact_instr", "value": f["value"], "unit": f["unit"]}
    for f in find(figures, group="jmh", metric="alloc_per_op"):
        out["alloc." + f["api"]] = {"kind": "exact_alloc", "value": f["value"], "unit": f["unit"]}
    gate = find(figures, group="gate")
    rounds = sorted({f["round"] for f in gate})
    for name, num, den in RATIOS:
        per_round = []
        for r in rounds:
            n = one(gate, round=r, metric="rtt_p50", **num)
            d = one(gate, round=r, metric="floor_rtt_p50" if den.get("transport") == "floor" else "rtt_p50", **den)
            if n and d:
                per_round.append(n / d)
        if per_round:
            kind = "floor_ratio" if den.get("transport") == "floor" else "timing_ratio"
            out[name] = {"kind": kind, "value": statistics.median(per_round), "unit": "ratio",
                         "rounds": per_round}
    for lang in ("c", "java"):
        shm = one(figures, group="throughput", lang=lang, transport="shm", api="copy", size=64, producers=1,
                  metric="msgs_per_s")
        uds = one(figures, group="throughput", lang=lang, transport="uds", size=64, metric="msgs_per_s")
        if shm and uds:
            out[f"ratio.{lang}_shm_tput_64_over_uds"] = {"kind": "throughput_ratio", "value": shm / uds,
                                                         "unit": "ratio"}
    return out


def fmt_ns(v):
    return f"{v / 1e6:.1f} ms" if v >= 1e6 else f"{v / 1e3:.1f} us" if v >= 1e4 else f"{v:.0f} ns"


def size_name(s):
    return f"{s // 1048576} MiB" if s >= 1048576 else f"{s // 1024} KiB" if s >= 1024 else f"{s} B"


def table(results):
    fig = results["figures"]
    lines = [f"shmx benchmark ({results['suite']}), {results['machine']['cpu_model']}, "
             f"{results['machine']['cores']} cores, {results['machine']['date']}"]
    floors = [f["value"] for f in find(fig, group="gate", metric="floor_rtt_p50")]
    floor = statistics.median(floors) if floors else None
    if floor:
        lines.append(f"floor (two processes bouncing one cache line), p50 over the gate rounds: "
                     f"{' '.join(fmt_ns(v) for v in floors)}; median {fmt_ns(floor)}")
    lat = find(fig, group="latency")
    if lat:
        lines += ["", "round trip                p50       p90       p99     p99.9       max  p50/floor  shm/uds"]
        for f in find(lat, metric="rtt_p50"):
            key = {k: f[k] for k in ("lang", "transport", "size", "rate")}
            v = {m: one(lat, metric="rtt_" + m, **key) for m in ("p50", "p90", "p99", "p999", "max")}
            uds = one(lat, metric="rtt_p50", **dict(key, transport="uds"))
            rel = f"{v['p50'] / uds:8.2f}" if f["transport"] == "shm" and uds else " " * 8
            label = f"{f['lang']} {f['transport']} {size_name(f['size'])}" + (f" @{f['rate']}/s" if f["rate"] else "")
            lines.append(f"{label:<22}" + "".join(f"{fmt_ns(v[m]):>10}" for m in ("p50", "p90", "p99", "p999", "max"))
                         + (f"{v['p50'] / floor:11.1f}" if floor else " " * 11) + " " + rel)
    tput = find(fig, group="throughput", metric="msgs_per_s")
    if tput:
        lines += ["", "one-way throughput               msgs/s       GB/s   x uds"]
        for f in tput:
            key = {k: f[k] for k in ("lang", "transport", "api", "size", "producers")}
            gb = one(fig, group="throughput", metric="gbytes_per_s", **key)
            uds = one(tput, lang=f["lang"], transport="uds", size=f["size"])
            rel = f"{f['value'] / uds:7.1f}" if f["transport"] == "shm" and uds else ""
            label = f"{f['lang']} {f['transport']} {f['api']} {size_name(f['size'])} x{f['producers']}"
            lines.append(f"{label:<30}{f['value']:>10.0f}{gb:>11.3f} {rel}")
    ins = find(fig, group="instructions")
    if ins:
        lines += ["", "C hot path (callgrind)        instructions/message"]
        lines += [f"{f['section']:<30}{f['value']:>12.1f}" for f in ins]
    jmh = find(fig, group="jmh", metric="time_per_op")
    if jmh:
        lines += ["", "Java hot path (JMH, 64 B)              ns/op     B/op"]
        for f in jmh:
            alloc = one(fig, group="jmh", metric="alloc_per_op", api=f["api"])
            lines.append(f"{f['api']:<36}{f['value']:>9.1f}{alloc:>9.3f}")
    ms = results["measures"]
    rat = {k: v for k, v in ms.items() if v["kind"].endswith("ratio")}
    if rat:
        lines += ["", "ratios (the gate's timing measures; median of the rounds)"]
        for k, v in rat.items():
            rounds = " ".join(f"{x:.2f}" for x in v.get("rounds", []))
            lines.append(f"  {k:<40}{v['value']:8.3f}   {rounds}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--quick", type=int, default=0)
    a = ap.parse_args()
    figures = timed_figures(os.path.join(a.dir, "raw.tsv")) + callgrind_figures(a.dir) + jmh_figures(a.dir)
    results = {"schema": 1, "suite": "quick" if a.quick else "full", "machine": machine(), "figures": figures,
               "measures": measures(figures)}
    with open(os.path.join(a.dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = table(results)
    print(text)
    report.write(os.path.join(a.dir, "report.html"), results, text, a.dir)
    print(f"\nwrote {a.dir}/results.json, {a.dir}/report.html and "
          f"{len(glob.glob(os.path.join(a.dir, '*.hgrm')))} .hgrm files")


if __name__ == "__main__":
    main()
