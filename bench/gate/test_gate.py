#!/usr/bin/env python3
"""Tests of the gate's rules (gate.py) and of the measures it reads (results.py).

    python3 -m unittest discover -s bench/gate -p 'test_*.py'

scripts/perf-gate runs them before every gate run.
"""
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HDR_JARS = glob.glob(os.path.join(ROOT, "target", "dependency", "HdrHistogram-*.jar")) + glob.glob(
    os.path.expanduser("~/.m2/repository/org/hdrhistogram/HdrHistogram/*/HdrHistogram-*.jar"))
sys.path.insert(0, HERE)
import gate  # noqa: E402
import results  # noqa: E402


def gate_figure(rnd, lang, transport, p50):
    metric = "floor_rtt_p50" if transport == "floor" else "rtt_p50"
    return {"group": "gate", "lang": lang, "transport": transport, "api": "copy", "size": 64, "producers": 1,
            "rate": 0, "round": rnd, "metric": metric, "value": p50, "unit": "ns"}


class BandTest(unittest.TestCase):
    def test_instruction_counts_allow_two_percent(self):
        base, upper, gated, _ = gate.band("exact_instr", [1000.0])
        self.assertEqual((base, gated), (1000.0, True))
        self.assertAlmostEqual(upper, 1020.0)

    def test_allocation_allows_less_than_one_object(self):
        base, upper, gated, _ = gate.band("exact_alloc", [0.001, 0.003])
        self.assertEqual(base, 0.003)
        self.assertTrue(gated)
        self.assertLess(upper, 16.0)

    def test_timing_band_grows_with_the_spread_of_the_update_runs(self):
        _, narrow, _, _ = gate.band("timing_ratio", [1.0, 1.0, 1.01])
        _, wide, gated, _ = gate.band("timing_ratio", [1.0, 0.8, 1.2])
        self.assertAlmostEqual(narrow, 2.0)  # never less than +100%
        self.assertAlmostEqual(wide, 1.0 * (1 + 3 * 0.4))
        self.assertTrue(gated)

    def test_one_bad_round_widens_the_band_even_when_run_medians_hide_it(self):
        _, _, gated, _ = gate.band("timing_ratio", [1.0, 1.0, 1.0], [1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
        self.assertFalse(gated)

    def test_throughput_and_floor_ratios_are_reported_not_gated(self):
        self.assertFalse(gate.band("throughput_ratio", [10.0, 10.1, 9.9])[2])
        self.assertFalse(gate.band("floor_ratio", [3.0, 3.0, 3.1])[2])

    def test_too_noisy_timing_measure_is_reported_not_gated(self):
        _, _, gated, rule = gate.band("timing_ratio", [2.0, 4.0, 3.0])
        self.assertFalse(gated)
        self.assertIn("not gated", rule)


class CompareTest(unittest.TestCase):
    def run_compare(self, baseline_measures, now_measures):
        with tempfile.TemporaryDirectory() as d:
            b = os.path.join(d, "baseline.json")
            r = os.path.join(d, "results.json")
            with open(b, "w") as f:
                json.dump({"measures": baseline_measures}, f)
            with open(r, "w") as f:
                json.dump({"measures": now_measures}, f)
            p = subprocess.run([sys.executable, os.path.join(HERE, "gate.py"), "compare", "--baseline", b,
                                "--results", r], capture_output=True, text=True)
            with open(os.path.join(d, "gate-report.txt")) as f:
                self.assertEqual(f.read(), p.stdout)
            return p.returncode, p.stdout

    @staticmethod
    def entry(kind, base, upper, gated=True):
        return {"kind": kind, "unit": "x", "baseline": base, "max": upper, "gated": gated, "rule": "", "seen": [base]}

    def test_a_ten_percent_slower_path_fails(self):
        rc, out = self.run_compare({"instr.rtt_64": self.entry("exact_instr", 2000.0, 2040.0)},
                                   {"instr.rtt_64": {"kind": "exact_instr", "value": 2200.0}})
        self.assertEqual(rc, 1)
        self.assertIn("RESULT: FAIL (instr.rtt_64)", out)

    def test_an_allocation_per_message_fails(self):
        rc, out = self.run_compare({"alloc.send": self.entry("exact_alloc", 0.001, 8.001)},
                                   {"alloc.send": {"kind": "exact_alloc", "value": 24.0}})
        self.assertEqual(rc, 1)

    def test_within_the_band_passes_and_reports_the_room_left(self):
        rc, out = self.run_compare({"instr.rtt_64": self.entry("exact_instr", 2000.0, 2040.0),
                                    "ratio.x": self.entry("timing_ratio", 0.1, 0.15)},
                                   {"instr.rtt_64": {"kind": "exact_instr", "value": 2000.0},
                                    "ratio.x": {"kind": "timing_ratio", "value": 0.12}})
        self.assertEqual(rc, 0)
        self.assertIn("RESULT: PASS", out)
        self.assertIn("closest: instr.rtt_64", out)

    def test_a_reported_measure_never_fails(self):
        rc, out = self.run_compare({"ratio.noisy": self.entry("timing_ratio", 1.0, 3.0, gated=False)},
                                   {"ratio.noisy": {"kind": "timing_ratio", "value": 10.0}})
        self.assertEqual(rc, 0)
        self.assertIn("high", out)

    def test_a_missing_gated_measure_fails(self):
        rc, out = self.run_compare({"instr.rtt_64": self.entry("exact_instr", 2000.0, 2040.0)}, {})
        self.assertEqual(rc, 1)
        self.assertIn("missing", out)


class MeasuresTest(unittest.TestCase):
    def test_ratios_pair_figures_of_the_same_round_and_take_the_median(self):
        figs = []
        for rnd, (floor, shm, uds) in enumerate([(100, 300, 3000), (300, 600, 3000), (200, 500, 5000)], 1):
            figs += [gate_figure(rnd, "c", "floor", floor), gate_figure(rnd, "c", "shm", shm),
                     gate_figure(rnd, "c", "uds", uds)]
        m = results.measures(figs)
        self.assertEqual(m["ratio.c_shm_rtt_p50_over_floor"]["kind"], "floor_ratio")
        self.assertEqual(m["ratio.c_shm_rtt_p50_over_c_uds"]["kind"], "timing_ratio")
        self.assertEqual(m["ratio.c_shm_rtt_p50_over_floor"]["rounds"], [3.0, 2.0, 2.5])
        self.assertEqual(m["ratio.c_shm_rtt_p50_over_floor"]["value"], 2.5)
        self.assertAlmostEqual(m["ratio.c_shm_rtt_p50_over_c_uds"]["value"], 0.1)
        self.assertNotIn("ratio.java_shm_rtt_p50_over_floor", m)

    def test_floor_line_and_json_results_both_parse(self):
        self.assertEqual(results.parse_result("floor_rtt_ns p50=120 p90=130 count=5")["p50"], 120.0)
        self.assertEqual(results.parse_result('{"p50":421,"count":3}')["count"], 3)


class HistogramSchemeTest(unittest.TestCase):
    """The C histogram (bench/c/tool_hdr.c) must report what HdrHistogram reports for the same values."""

    @unittest.skipUnless(shutil.which("cc") and shutil.which("java") and HDR_JARS,
                         "needs cc, java and the HdrHistogram jar (mvn package)")
    def test_c_and_java_histograms_agree(self):
        rnd = random.Random(7)
        values = [rnd.randrange(100, 5_000_000) + (100_000_000 if i % 97 == 0 else 0) for i in range(50_000)]
        values += [0, 1, 1023, 1024, 2047, 2048, 59_999_999_999]
        data = "\n".join(map(str, values)) + "\n"
        with tempfile.TemporaryDirectory() as d:
            exe = os.path.join(d, "hdr_check")
            subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I", os.path.join(ROOT, "bench", "c"),
                            os.path.join(HERE, "hdr_check.c"), os.path.join(ROOT, "bench", "c", "tool_hdr.c"),
                            "-lm", "-o", exe], check=True)
            c = subprocess.run([exe], input=data, capture_output=True, text=True, check=True).stdout
            java = subprocess.run(["java", "-cp", HDR_JARS[0], os.path.join(HERE, "HdrCheck.java")], input=data,
                                  capture_output=True, text=True, check=True).stdout
        self.assertEqual(c, java)


if __name__ == "__main__":
    unittest.main()
