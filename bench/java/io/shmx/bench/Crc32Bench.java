package io.shmx.bench;

import io.shmx.Shmx;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * CRC-32 of 64 KiB: shmx_crc32 through JNI against java.util.zip.CRC32, from
 * a byte[] and from a direct ByteBuffer.
 *
 * <pre>
 * java -cp target/classes:target/test-classes:target/dependency/* org.openjdk.jmh.Main Crc32Bench
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class Crc32Bench {
    @Param({"65536"})
    public int size;

    private byte[] array;
    private ByteBuffer direct;
    private final CRC32 jdk = new CRC32();

    @Setup
    public void setUp() {
        array = new byte[size];
        new Random(42).nextBytes(array);
        direct = ByteBuffer.allocateDirect(size);
        direct.put(array).flip();
    }

    @Benchmark
    public int shmxArray() {
        return Shmx.crc32(array);
    }

    @Benchmark
    public int shmxDirect() {
        return Shmx.crc32(direct);
    }

    @Benchmark
    public long jdkArray() {
        jdk.reset();
        jdk.update(array);
        return jdk.getValue();
    }

    @Benchmark
    public long jdkDirect() {
        jdk.reset();
        direct.clear();
        jdk.update(direct);
        return jdk.getValue();
    }
}
