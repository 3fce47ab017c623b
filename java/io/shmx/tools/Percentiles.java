package io.shmx.tools;

import java.util.Arrays;

/** Nearest-rank percentiles of round-trip samples, printed as the normative {@code rtt_ns} line. */
final class Percentiles {
    private Percentiles() {
    }

    /** Sorts {@code samples[0, n)} in place and returns the nearest-rank value for quantile {@code q}. */
    static long nearestRank(long[] sorted, int n, double q) {
        if (n == 0) {
            return 0;
        }
        long rank = (long) Math.ceil(q * n);
        int idx = (int) Math.min(Math.max(rank, 1), n) - 1;
        return sorted[idx];
    }

    /** @return {@code rtt_ns p50=... p90=... p99=... p999=... max=... count=...} (sorts samples) */
    static String rttLine(long[] samples, int n) {
        Arrays.sort(samples, 0, n);
        return "rtt_ns p50=" + nearestRank(samples, n, 0.50)
                + " p90=" + nearestRank(samples, n, 0.90)
                + " p99=" + nearestRank(samples, n, 0.99)
                + " p999=" + nearestRank(samples, n, 0.999)
                + " max=" + (n > 0 ? samples[n - 1] : 0)
                + " count=" + n;
    }
}
