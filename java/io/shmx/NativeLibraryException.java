package io.shmx;

/**
 * libshmx.so could not be loaded. The message lists every attempt
 * ({@code -Dshmx.library.path}, the copy packaged in the jar, then
 * {@code java.library.path}) with its failure; each failure is attached with
 * {@link Throwable#addSuppressed(Throwable)}. When the extracted copy could
 * not be mapped, the message names a {@code noexec} temporary directory as
 * the likely cause and suggests {@code -Dshmx.tmpdir}.
 */
public class NativeLibraryException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message the full message
     * @param cause   an earlier failure this one repeats, or null
     */
    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
