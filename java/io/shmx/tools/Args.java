package io.shmx.tools;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** A minimal command-line parser: {@code --key value}, {@code --key=value} and {@code --flag}. */
final class Args {
    /** Thrown for a usage error: the tools exit with status 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    private final Map<String, String> values = new HashMap<>();
    private final Set<String> flags = new HashSet<>();

    private Args() {
    }

    /**
     * @param args      the arguments after the command
     * @param withValue option names (without dashes) that take a value
     * @param flagNames option names that take none
     */
    static Args parse(String[] args, Set<String> withValue, Set<String> flagNames) throws UsageException {
        Args a = new Args();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new UsageException("unexpected argument '" + arg + "'");
            }
            String key = arg.substring(2);
            String value = null;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            }
            if (flagNames.contains(key)) {
                if (value != null) {
                    throw new UsageException("--" + key + " takes no value");
                }
                a.flags.add(key);
            } else if (withValue.contains(key)) {
                if (value == null) {
                    if (i + 1 >= args.length) {
                        throw new UsageException("--" + key + " needs a value");
                    }
                    value = args[++i];
                }
                a.values.put(key, value);
            } else {
                throw new UsageException("unknown option --" + key);
            }
        }
        return a;
    }

    boolean flag(String name) {
        return flags.contains(name);
    }

    String string(String name, String dflt) {
        return values.getOrDefault(name, dflt);
    }

    String required(String name) throws UsageException {
        String v = values.get(name);
        if (v == null || v.isEmpty()) {
            throw new UsageException("--" + name + " is required");
        }
        return v;
    }

    long number(String name, long dflt, long min, long max) throws UsageException {
        String v = values.get(name);
        if (v == null) {
            return dflt;
        }
        long n;
        try {
            n = Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " needs a number: '" + v + "'");
        }
        if (n < min || n > max) {
            throw new UsageException("--" + name + " must be in " + min + " .. " + max + ": " + n);
        }
        return n;
    }

    boolean has(String name) {
        return values.containsKey(name);
    }
}
