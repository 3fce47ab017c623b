import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Locale;

import org.HdrHistogram.Histogram;

/**
 * The reference side of test_gate.py's histogram check: records the values on
 * stdin in HdrHistogram and prints what hdr_check.c prints for tool_hdr.
 */
public final class HdrCheck {
    private HdrCheck() {
    }

    /**
     * @param args none
     * @throws Exception on a read failure
     */
    public static void main(String[] args) throws Exception {
        Histogram h = new Histogram(60_000_000_000L, 3);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (!line.isBlank()) {
                h.recordValue(Long.parseLong(line.trim()));
            }
        }
        double[] ps = {0, 10, 50, 90, 99, 99.9, 99.99, 100};
        String[] names = {"0", "10", "50", "90", "99", "99.9", "99.99", "100"};
        for (int i = 0; i < ps.length; i++) {
            System.out.println("p" + names[i] + " " + h.getValueAtPercentile(ps[i]));
        }
        System.out.println("max " + h.getMaxValue());
        System.out.println(String.format(Locale.ROOT, "mean %.3f", h.getMean()));
    }
}
