/*
 * Process helpers for the tests that start hosts and guests: reaping a child
 * with a bound, and a private XDG_RUNTIME_DIR (so each test's sockets live in
 * a fresh 0700 directory and nothing collides with other tests or users).
 */
#ifndef SHMX_TEST_PROCESS_H
#define SHMX_TEST_PROCESS_H

#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

/* Wait for @pid at most @timeout_ms (pidfd); SIGKILL it if it overstays. Returns the wait status or -1. */
inline int WaitChild(pid_t pid, int timeout_ms) {
    int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pfd >= 0) {
        struct pollfd p = {pfd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) == 0) kill(pid, SIGKILL);
        close(pfd);
    }
    int status = 0;
    return waitpid(pid, &status, 0) == pid ? status : -1;
}

/* XDG_RUNTIME_DIR pointed at a fresh directory for the object's life, then removed and restored. */
class PrivateRuntimeDir {
  public:
    PrivateRuntimeDir() {
        const char *old = getenv("XDG_RUNTIME_DIR");
        had_old_ = old != nullptr;
        if (had_old_) old_ = old;
        char tmpl[] = "/tmp/shmxrtXXXXXX";
        if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
        if (!path_.empty()) setenv("XDG_RUNTIME_DIR", path_.c_str(), 1);
    }
    ~PrivateRuntimeDir() {
        if (!path_.empty()) nftw(path_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
        if (had_old_) setenv("XDG_RUNTIME_DIR", old_.c_str(), 1);
        else unsetenv("XDG_RUNTIME_DIR");
    }
    PrivateRuntimeDir(const PrivateRuntimeDir &) = delete;
    PrivateRuntimeDir &operator=(const PrivateRuntimeDir &) = delete;

    /* The directory, or "" if it could not be made. */
    const std::string &path() const { return path_; }

  private:
    static int RemoveEntry(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }
    std::string path_, old_;
    bool had_old_ = false;
};

#endif
