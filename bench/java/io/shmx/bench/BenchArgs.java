package io.shmx.bench;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The {@code --key value} options of the benchmark drivers ({@link RoundTrip},
 * {@link Throughput}); a bare {@code --flag} has the value "true".
 */
public final class BenchArgs {
    private final Map<String, String> values = new HashMap<>();

    private BenchArgs() {
    }

    /**
     * Parses {@code argv} against the accepted option names.
     *
     * @param argv    the command line
     * @param allowed option names without the leading dashes
     * @return the parsed options
     * @throws IllegalArgumentException on an unknown option or a positional argument
     */
    public static BenchArgs parse(String[] argv, Set<String> allowed) {
        BenchArgs a = new BenchArgs();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || !allowed.contains(argv[i].substring(2))) {
                throw new IllegalArgumentException("unknown argument " + argv[i] + "; options: " + allowed);
            }
            boolean hasValue = i + 1 < argv.length && !argv[i + 1].startsWith("--");
            a.values.put(argv[i].substring(2), hasValue ? argv[++i] : "true");
        }
        return a;
    }

    /**
     * @param key option name
     * @param def value when absent, or null if the option is required
     * @return the value
     * @throws IllegalArgumentException if a required option is missing
     */
    public String string(String key, String def) {
        String v = values.getOrDefault(key, def);
        if (v == null) {
            throw new IllegalArgumentException("--" + key + " is required");
        }
        return v;
    }

    /**
     * @param key option name
     * @param def value when absent
     * @return the value as a long
     * @throws NumberFormatException if it is not a number
     */
    public long number(String key, long def) {
        String v = values.get(key);
        return v == null ? def : Long.parseLong(v);
    }

    /**
     * A comma-separated list of numbers, one per run: a single value applies to all {@code runs}.
     *
     * @param key  option name
     * @param def  value when absent
     * @param runs how many values are wanted
     * @return {@code runs} values
     * @throws IllegalArgumentException if the list has neither 1 nor {@code runs} numbers
     */
    public long[] numbers(String key, long def, int runs) {
        String v = values.get(key);
        String[] parts = v == null ? new String[] {Long.toString(def)} : v.split(",");
        if (parts.length != 1 && parts.length != runs) {
            throw new IllegalArgumentException("--" + key + " needs 1 or " + runs + " values, got " + v);
        }
        long[] out = new long[runs];
        for (int i = 0; i < runs; i++) {
            out[i] = Long.parseLong(parts[parts.length == 1 ? 0 : i].trim());
        }
        return out;
    }

    /**
     * @param key option name
     * @param def value when absent
     * @return the comma-separated list of numbers given (at least one)
     * @throws NumberFormatException if one is not a number
     */
    public long[] list(String key, long def) {
        String v = values.get(key);
        String[] parts = v == null ? new String[] {Long.toString(def)} : v.split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            out[i] = Long.parseLong(parts[i].trim());
        }
        return out;
    }
}
