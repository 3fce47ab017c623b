package io.shmx;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The check-jni Surefire execution really runs with -Xcheck:jni (pom.xml sets shmx.test.checkjni there). */
class CheckJniTest {
    @Test
    void shouldRunUnderCheckJniInTheCheckJniExecution() {
        List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
        if (Boolean.getBoolean("shmx.test.checkjni")) {
            assertTrue(args.contains("-Xcheck:jni"), args.toString());
        }
        // Every native method is registered and callable (JNI_OnLoad bound the whole table).
        assertTrue(Shmx.version().startsWith("0."));
    }
}
