// Bootstrap: names, the socket directory, listen/connect by path, the
// hello/welcome handshake and the grow/extent messages (native/bootstrap.c).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "bootstrap.h"
#include "shmx/shmx.h"
}

namespace {

constexpr int64_t kSecond = 1000000000LL;

// An absolute CLOCK_MONOTONIC deadline @ns from now, as the bootstrap calls take.
int64_t Deadline(int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * kSecond + ts.tv_nsec + ns;
}

int RemoveEntry(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }

// Every test runs with its own XDG_RUNTIME_DIR, so the socket directory is
// $TMP/shmx and nothing touches the user's real one.
class BootstrapTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const char *old = getenv("XDG_RUNTIME_DIR");
        had_old_ = old != nullptr;
        if (had_old_) old_ = old;
        char tmpl[] = "/tmp/shmxbtXXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        runtime_ = tmpl;
        setenv("XDG_RUNTIME_DIR", runtime_.c_str(), 1);
        dir_ = runtime_ + "/shmx";
    }

    void TearDown() override {
        nftw(runtime_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
        if (had_old_) setenv("XDG_RUNTIME_DIR", old_.c_str(), 1);
        else unsetenv("XDG_RUNTIME_DIR");
    }

    std::string SocketDir() {
        char buf[108];
        int n = shmx_socket_dir(buf, sizeof buf, 1);
        EXPECT_GT(n, 0) << shmx_strerror(n);
        return n > 0 ? std::string(buf) : std::string();
    }

    std::string PathFor(const char *name) {
        char buf[108];
        int n = shmx_socket_path(name, buf, sizeof buf);
        EXPECT_GT(n, 0) << shmx_strerror(n);
        return n > 0 ? std::string(buf) : std::string();
    }

    static void SocketPair(int sv[2]) { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0); }

    // Write raw bytes with descriptors attached, as a misbehaving peer would.
    static void SendRaw(int fd, const void *buf, size_t len, const std::vector<int> &fds) {
        struct iovec iov = {const_cast<void *>(buf), len};
        struct msghdr m = {};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        std::vector<char> ctl(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
        if (!fds.empty()) {
            m.msg_control = ctl.data();
            m.msg_controllen = ctl.size();
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        ASSERT_EQ(sendmsg(fd, &m, MSG_NOSIGNAL), (ssize_t)len);
    }

    // A welcome as bootstrap.h lays it out, little-endian.
    static std::vector<uint8_t> RawWelcome(uint32_t magic, uint16_t transport, int32_t status) {
        std::vector<uint8_t> b(36, 0);
        auto put = [&](size_t off, uint64_t v, int n) {
            for (int i = 0; i < n; i++) b[off + i] = (uint8_t)(v >> (8 * i));
        };
        put(0, magic, 4);
        put(4, SHMX_BOOTSTRAP_VERSION, 2);
        put(6, transport, 2);
        put(8, (uint32_t)status, 4);
        put(12, 3, 4);
        put(16, 7, 4);
        put(20, 4096, 4);
        put(24, 1 << 20, 8);
        put(32, 1 << 22, 4);
        return b;
    }

    static std::vector<uint8_t> RawHello(uint32_t magic, uint16_t version, uint16_t transport, uint64_t reserved) {
        std::vector<uint8_t> b(16, 0);
        for (int i = 0; i < 4; i++) b[i] = (uint8_t)(magic >> (8 * i));
        b[4] = (uint8_t)version;
        b[5] = (uint8_t)(version >> 8);
        b[6] = (uint8_t)transport;
        b[7] = (uint8_t)(transport >> 8);
        for (int i = 0; i < 8; i++) b[8 + i] = (uint8_t)(reserved >> (8 * i));
        return b;
    }

    // True when every copy of a pipe's write end is closed (the read end sees EOF).
    static bool AllWritersClosed(int read_end) {
        char c;
        return read(read_end, &c, 1) == 0;
    }

    std::string runtime_;
    std::string dir_;
    std::string old_;
    bool had_old_ = false;
};

TEST_F(BootstrapTest, ShouldAcceptOnlyNamesOfOneTo64SafeCharacters) {
    EXPECT_EQ(shmx_name_check("a"), 0);
    EXPECT_EQ(shmx_name_check("Host-1.test_x"), 0);
    EXPECT_EQ(shmx_name_check(std::string(64, 'x').c_str()), 0);
    EXPECT_EQ(shmx_name_check(std::string(65, 'x').c_str()), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check(""), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check(nullptr), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check("a/b"), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check("a b"), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check("caf\xc3\xa9"), -SHMX_EINVAL);
    EXPECT_EQ(shmx_name_check("x\n"), -SHMX_EINVAL);
}

TEST_F(BootstrapTest, ShouldCreateTheSocketDirectoryWithMode0700) {
    EXPECT_EQ(SocketDir(), dir_);
    struct stat st;
    ASSERT_EQ(lstat(dir_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(st.st_uid, geteuid());
    EXPECT_EQ(SocketDir(), dir_); // an existing good directory is accepted as it is
}

TEST_F(BootstrapTest, ShouldPutTheSocketInsideTheDirectoryWithoutTouchingTheFileSystem) {
    EXPECT_EQ(PathFor("alpha"), dir_ + "/alpha.sock");
    struct stat st;
    EXPECT_NE(lstat(dir_.c_str(), &st), 0) << "computing a path must not create the directory";
    char small[8];
    EXPECT_EQ(shmx_socket_path("alpha", small, sizeof small), -ENAMETOOLONG);
    char buf[108];
    EXPECT_EQ(shmx_socket_path("no/slash", buf, sizeof buf), -SHMX_EINVAL);
}

TEST_F(BootstrapTest, ShouldFallBackToTmpWhenXdgRuntimeDirIsUnusable) {
    setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
    char buf[108];
    ASSERT_GT(shmx_socket_dir(buf, sizeof buf, 0), 0);
    EXPECT_EQ(std::string(buf), "/tmp/shmx-" + std::to_string(geteuid()));
    setenv("XDG_RUNTIME_DIR", (runtime_ + "/missing").c_str(), 1);
    ASSERT_GT(shmx_socket_dir(buf, sizeof buf, 0), 0);
    EXPECT_EQ(std::string(buf), "/tmp/shmx-" + std::to_string(geteuid()));
}

TEST_F(BootstrapTest, ShouldRefuseASocketDirectoryThatIsASymlink) {
    std::string real = runtime_ + "/elsewhere";
    ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
    ASSERT_EQ(symlink(real.c_str(), dir_.c_str()), 0);
    char buf[108];
    EXPECT_EQ(shmx_socket_dir(buf, sizeof buf, 1), -SHMX_EPERMS);
    shmx_host_t *h = nullptr;
    EXPECT_EQ(shmx_host_create("x", nullptr, &h), -SHMX_EPERMS);
    EXPECT_EQ(shmx_bootstrap_connect((dir_ + "/x.sock").c_str(), Deadline(0)), -SHMX_EPERMS);
    struct stat st;
    EXPECT_NE(stat((real + "/x.sock").c_str(), &st), 0) << "nothing may be created through the symlink";
}

TEST_F(BootstrapTest, ShouldRefuseASocketDirectoryOpenToOthers) {
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
    char buf[108];
    EXPECT_EQ(shmx_socket_dir(buf, sizeof buf, 1), -SHMX_EPERMS);
    struct stat st;
    ASSERT_EQ(lstat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0777u) << "a refused directory is never chmod-ed";
    shmx_host_t *h = nullptr;
    EXPECT_EQ(shmx_host_create("open-dir", nullptr, &h), -SHMX_EPERMS);
    EXPECT_EQ(h, nullptr);
}

TEST_F(BootstrapTest, ShouldRefuseASocketDirectoryOfAnotherUser) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    ASSERT_EQ(chown(dir_.c_str(), 65534, 65534), 0);
    char buf[108];
    EXPECT_EQ(shmx_socket_dir(buf, sizeof buf, 1), -SHMX_EPERMS);
    EXPECT_EQ(shmx_bootstrap_connect((dir_ + "/x.sock").c_str(), Deadline(0)), -SHMX_EPERMS);
}

TEST_F(BootstrapTest, ShouldRefuseASocketDirectoryThatIsAFile) {
    int fd = open(dir_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
    char buf[108];
    EXPECT_EQ(shmx_socket_dir(buf, sizeof buf, 1), -SHMX_EPERMS);
}

TEST_F(BootstrapTest, ShouldListenOnASocketWithMode0600) {
    std::string path = SocketDir() + "/m.sock";
    int fd = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(fd, 0) << shmx_strerror(fd);
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
}

TEST_F(BootstrapTest, ShouldReplaceAStaleSocket) {
    std::string path = SocketDir() + "/stale.sock";
    int first = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(first, 0);
    close(first); // a host that died: the file stays, nobody listens
    int second = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(second, 0) << shmx_strerror(second);
    int c = shmx_bootstrap_connect(path.c_str(), Deadline(kSecond));
    EXPECT_GE(c, 0) << shmx_strerror(c);
    if (c >= 0) close(c);
    close(second);
}

TEST_F(BootstrapTest, ShouldRefuseToReplaceALiveSocket) {
    std::string path = SocketDir() + "/live.sock";
    int first = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(first, 0);
    EXPECT_EQ(shmx_bootstrap_listen(path.c_str()), -EADDRINUSE);
    close(first);
}

TEST_F(BootstrapTest, ShouldRefuseARegularFileAtTheSocketPath) {
    std::string path = SocketDir() + "/file.sock";
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "keep", 4), 4);
    close(fd);
    EXPECT_EQ(shmx_bootstrap_listen(path.c_str()), -SHMX_EPERMS);
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_size, 4) << "the file must be left alone";
}

TEST_F(BootstrapTest, ShouldRefuseASymlinkAtTheSocketPathWithoutFollowingIt) {
    std::string path = SocketDir() + "/link.sock";
    std::string target = runtime_ + "/target.sock";
    ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
    EXPECT_EQ(shmx_bootstrap_listen(path.c_str()), -SHMX_EPERMS);
    struct stat st;
    EXPECT_NE(lstat(target.c_str(), &st), 0) << "nothing may be bound at the symlink's target";
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the symlink must be left alone";
}

TEST_F(BootstrapTest, ShouldRoundTripHelloAndWelcomeWithTheFdClosedOnExec) {
    int sv[2];
    SocketPair(sv);
    shmx_hello_t hello = {SHMX_TRANSPORT_SHM};
    ASSERT_EQ(shmx_bootstrap_send_hello(sv[0], &hello), 0);
    shmx_hello_t got_hello = {};
    ASSERT_EQ(shmx_bootstrap_recv_hello(sv[1], Deadline(kSecond), &got_hello), 0);
    EXPECT_EQ(got_hello.transport, SHMX_TRANSPORT_SHM);

    int passed = memfd_create("bootstrap-test", 0); // deliberately without MFD_CLOEXEC
    ASSERT_GE(passed, 0);
    shmx_welcome_t w = {};
    w.transport = SHMX_TRANSPORT_SHM;
    w.status = 0;
    w.channel_index = 5;
    w.epoch = 0xDEADBEEF;
    w.max_payload = 123456;
    w.segment_bytes = 0x123456789ULL;
    w.max_message = 0x4000001;
    ASSERT_EQ(shmx_bootstrap_send_welcome(sv[1], &w, passed), 0);
    shmx_welcome_t got = {};
    int fd = -1;
    ASSERT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &got, &fd), 0);
    EXPECT_EQ(got.transport, SHMX_TRANSPORT_SHM);
    EXPECT_EQ(got.status, 0);
    EXPECT_EQ(got.channel_index, 5u);
    EXPECT_EQ(got.epoch, 0xDEADBEEFu);
    EXPECT_EQ(got.max_payload, 123456u);
    EXPECT_EQ(got.segment_bytes, 0x123456789ULL);
    EXPECT_EQ(got.max_message, 0x4000001u);
    ASSERT_GE(fd, 0);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    struct stat a, b;
    ASSERT_EQ(fstat(passed, &a), 0);
    ASSERT_EQ(fstat(fd, &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    close(fd);
    close(passed);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldCarryAnErrorStatusWithoutAnFd) {
    int sv[2];
    SocketPair(sv);
    shmx_welcome_t w = {};
    w.transport = SHMX_TRANSPORT_SHM;
    w.status = -SHMX_EFULL;
    ASSERT_EQ(shmx_bootstrap_send_welcome(sv[1], &w, -1), 0);
    shmx_welcome_t got = {};
    int fd = 0;
    ASSERT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &got, &fd), 0);
    EXPECT_EQ(got.status, -SHMX_EFULL);
    EXPECT_EQ(fd, -1);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldRejectMalformedHellos) {
    struct Case {
        const char *what;
        std::vector<uint8_t> bytes;
    } cases[] = {
        {"bad magic", RawHello(0x12345678u, 1, SHMX_TRANSPORT_SHM, 0)},
        {"bad version", RawHello(SHMX_HELLO_MAGIC, 2, SHMX_TRANSPORT_SHM, 0)},
        {"reserved bits", RawHello(SHMX_HELLO_MAGIC, 1, SHMX_TRANSPORT_SHM, 1)},
        {"cut short", std::vector<uint8_t>(7, 0)},
    };
    for (auto &c : cases) {
        int sv[2];
        SocketPair(sv);
        SendRaw(sv[0], c.bytes.data(), c.bytes.size(), {});
        shutdown(sv[0], SHUT_WR);
        shmx_hello_t h;
        EXPECT_EQ(shmx_bootstrap_recv_hello(sv[1], Deadline(kSecond), &h), -SHMX_EPROTO) << c.what;
        close(sv[0]);
        close(sv[1]);
    }
}

TEST_F(BootstrapTest, ShouldStopWaitingForASilentGuestAtTheDeadline) {
    int sv[2];
    SocketPair(sv);
    shmx_hello_t h;
    EXPECT_EQ(shmx_bootstrap_recv_hello(sv[1], Deadline(50 * 1000 * 1000), &h), -ETIMEDOUT);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldAssembleAHelloSentInPieces) {
    int sv[2];
    SocketPair(sv);
    auto b = RawHello(SHMX_HELLO_MAGIC, 1, SHMX_TRANSPORT_UDS, 0);
    SendRaw(sv[0], b.data(), 5, {});
    SendRaw(sv[0], b.data() + 5, b.size() - 5, {});
    shmx_hello_t h = {};
    EXPECT_EQ(shmx_bootstrap_recv_hello(sv[1], Deadline(kSecond), &h), 0);
    EXPECT_EQ(h.transport, SHMX_TRANSPORT_UDS);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldCloseDescriptorsAttachedToAHello) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    int sv[2];
    SocketPair(sv);
    auto b = RawHello(SHMX_HELLO_MAGIC, 1, SHMX_TRANSPORT_SHM, 0);
    SendRaw(sv[0], b.data(), b.size(), {p[1], p[1]});
    close(p[1]);
    shmx_hello_t h;
    EXPECT_EQ(shmx_bootstrap_recv_hello(sv[1], Deadline(kSecond), &h), -SHMX_EPROTO);
    EXPECT_TRUE(AllWritersClosed(p[0])) << "descriptors a guest smuggled in must not stay open in the host";
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldKeepTheFirstFdOfAWelcomeAndCloseExtras) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    int sv[2];
    SocketPair(sv);
    auto b = RawWelcome(SHMX_WELCOME_MAGIC, SHMX_TRANSPORT_SHM, 0);
    SendRaw(sv[1], b.data(), b.size(), {p[1], p[1], p[1]});
    close(p[1]);
    shmx_welcome_t w;
    int fd = -1;
    ASSERT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &w, &fd), 0);
    ASSERT_GE(fd, 0);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_FALSE(AllWritersClosed(p[0])) << "the kept descriptor is still open";
    close(fd);
    EXPECT_TRUE(AllWritersClosed(p[0])) << "the extra descriptors were closed";
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldCloseTheFdsOfAWelcomeThatCarriesNone) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    int sv[2];
    SocketPair(sv);
    auto b = RawWelcome(SHMX_WELCOME_MAGIC, SHMX_TRANSPORT_UDS, 0);
    SendRaw(sv[1], b.data(), b.size(), {p[1]});
    close(p[1]);
    shmx_welcome_t w;
    int fd = 0;
    ASSERT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &w, &fd), 0);
    EXPECT_EQ(fd, -1);
    EXPECT_TRUE(AllWritersClosed(p[0]));
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldRejectFlawedWelcomes) {
    struct Case {
        const char *what;
        std::vector<uint8_t> bytes;
        int expect;
    } cases[] = {
        {"bad magic", RawWelcome(0x11111111u, SHMX_TRANSPORT_UDS, 0), -SHMX_EPROTO},
        {"shm without fd", RawWelcome(SHMX_WELCOME_MAGIC, SHMX_TRANSPORT_SHM, 0), -SHMX_EPROTO},
        {"unknown transport", RawWelcome(SHMX_WELCOME_MAGIC, 9, 0), -SHMX_EPROTO},
        {"positive status", RawWelcome(SHMX_WELCOME_MAGIC, SHMX_TRANSPORT_UDS, 5), -SHMX_EPROTO},
        {"cut short", std::vector<uint8_t>(10, 0), -SHMX_EHOSTGONE},
    };
    for (auto &c : cases) {
        int sv[2];
        SocketPair(sv);
        SendRaw(sv[1], c.bytes.data(), c.bytes.size(), {});
        shutdown(sv[1], SHUT_WR);
        shmx_welcome_t w;
        int fd = 0;
        EXPECT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &w, &fd), c.expect) << c.what;
        EXPECT_EQ(fd, -1) << c.what;
        close(sv[0]);
        close(sv[1]);
    }
}

TEST_F(BootstrapTest, ShouldRefuseMoreDescriptorsThanFitAsAProtocolError) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    int sv[2];
    SocketPair(sv);
    auto b = RawWelcome(SHMX_WELCOME_MAGIC, SHMX_TRANSPORT_SHM, 0);
    SendRaw(sv[1], b.data(), b.size(), std::vector<int>(64, p[1]));
    close(p[1]);
    shmx_welcome_t w;
    int fd = 0;
    EXPECT_EQ(shmx_bootstrap_recv_welcome(sv[0], Deadline(kSecond), &w, &fd), -SHMX_EPROTO);
    EXPECT_EQ(fd, -1);
    EXPECT_TRUE(AllWritersClosed(p[0])) << "every received copy closed, the truncated ones by the kernel";
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldRoundTripGrowRequests) {
    int sv[2];
    SocketPair(sv);
    ASSERT_EQ(shmx_bootstrap_send_grow(sv[0], 5), 0);
    uint8_t b[SHMX_GROW_BYTES];
    ASSERT_EQ(read(sv[1], b, sizeof b), (ssize_t)sizeof b);
    uint32_t cls = 0;
    ASSERT_EQ(shmx_bootstrap_parse_grow(b, &cls), 0);
    EXPECT_EQ(cls, 5u);
    EXPECT_EQ(b[0], 'G');
    EXPECT_EQ(b[3], 'W');
    for (size_t n = 0; n <= sizeof b; n++) EXPECT_TRUE(shmx_bootstrap_grow_prefix_ok(b, n)) << n;

    struct Case {
        const char *what;
        size_t at;
        uint8_t value;
    } cases[] = {{"bad magic", 0, 'X'}, {"bad version", 4, 2}, {"reserved half", 6, 1}, {"reserved word", 12, 1}};
    for (const Case &c : cases) {
        uint8_t bad[SHMX_GROW_BYTES];
        memcpy(bad, b, sizeof bad);
        bad[c.at] = c.value;
        EXPECT_EQ(shmx_bootstrap_parse_grow(bad, &cls), -SHMX_EPROTO) << c.what;
        EXPECT_EQ(shmx_bootstrap_grow_prefix_ok(bad, sizeof bad) != 0, c.at >= 8) << c.what;
        EXPECT_EQ(shmx_bootstrap_grow_prefix_ok(bad, c.at + 1) != 0, c.at >= 8) << c.what << ": seen at once";
    }
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldRoundTripExtentAnnouncementsWithTheirMemfd) {
    int sv[2];
    SocketPair(sv);
    int passed = memfd_create("bootstrap-extent", 0);
    ASSERT_GE(passed, 0);
    shmx_extent_msg_t m = {3, 2, 0x10203, 77, 0x123456789ULL};
    ASSERT_EQ(shmx_bootstrap_send_extent(sv[1], &m, passed), 0);
    EXPECT_EQ(shmx_bootstrap_send_extent(sv[1], &m, -1), -SHMX_EINVAL) << "an announcement always carries its fd";
    shmx_extent_msg_t got = {};
    int fd = -1;
    ASSERT_EQ(shmx_bootstrap_recv_extent(sv[0], Deadline(kSecond), &got, &fd), 0);
    EXPECT_EQ(got.id, 3u);
    EXPECT_EQ(got.cls, 2u);
    EXPECT_EQ(got.first_index, 0x10203u);
    EXPECT_EQ(got.slot_count, 77u);
    EXPECT_EQ(got.bytes, 0x123456789ULL);
    ASSERT_GE(fd, 0);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    struct stat a, b;
    ASSERT_EQ(fstat(passed, &a), 0);
    ASSERT_EQ(fstat(fd, &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    close(fd);
    close(passed);
    EXPECT_EQ(shmx_bootstrap_recv_extent(sv[0], Deadline(0), &got, &fd), -ETIMEDOUT) << "nothing more queued";
    close(sv[1]);
    EXPECT_EQ(shmx_bootstrap_recv_extent(sv[0], Deadline(kSecond), &got, &fd), -SHMX_EHOSTGONE);
    EXPECT_EQ(fd, -1);
    close(sv[0]);
}

TEST_F(BootstrapTest, ShouldRejectFlawedExtentAnnouncementsAndCloseTheirFds) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    std::vector<uint8_t> good(SHMX_EXTENT_BYTES, 0);
    const uint32_t magic = SHMX_EXTENT_MAGIC;
    memcpy(good.data(), &magic, 4);
    good[4] = 1;
    struct Case {
        const char *what;
        size_t at;
        uint8_t value;
        bool with_fd;
    } cases[] = {{"bad magic", 0, 'X', true}, {"bad version", 4, 9, true}, {"reserved half", 6, 1, true},
                 {"reserved tail", 39, 1, true}, {"no fd", 0, 'E', false}};
    for (const Case &c : cases) {
        int sv[2];
        SocketPair(sv);
        std::vector<uint8_t> bytes = good;
        bytes[c.at] = c.value;
        SendRaw(sv[1], bytes.data(), bytes.size(), c.with_fd ? std::vector<int>{p[1]} : std::vector<int>{});
        shmx_extent_msg_t m;
        int fd = 0;
        EXPECT_EQ(shmx_bootstrap_recv_extent(sv[0], Deadline(kSecond), &m, &fd), -SHMX_EPROTO) << c.what;
        EXPECT_EQ(fd, -1) << c.what;
        close(sv[0]);
        close(sv[1]);
    }
    close(p[1]);
    EXPECT_TRUE(AllWritersClosed(p[0])) << "every fd that came with a flawed announcement was closed";
    close(p[0]);
}

TEST_F(BootstrapTest, ShouldReadWhatIsThereAndCloseDescriptorsThatCameWithIt) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    int sv[2];
    SocketPair(sv);
    uint8_t buf[64];
    EXPECT_EQ(shmx_bootstrap_read_some(sv[0], buf, sizeof buf), -EAGAIN);
    const uint8_t bytes[5] = {1, 2, 3, 4, 5};
    SendRaw(sv[1], bytes, sizeof bytes, {p[1], p[1]});
    close(p[1]);
    EXPECT_EQ(shmx_bootstrap_read_some(sv[0], buf, 3), 3);
    EXPECT_EQ(buf[2], 3);
    EXPECT_TRUE(AllWritersClosed(p[0])) << "descriptors a guest sends are never kept";
    EXPECT_EQ(shmx_bootstrap_read_some(sv[0], buf, sizeof buf), 2);
    close(sv[1]);
    EXPECT_EQ(shmx_bootstrap_read_some(sv[0], buf, sizeof buf), 0) << "end of stream";
    close(p[0]);
    close(sv[0]);
}

TEST_F(BootstrapTest, ShouldReportThePeerUidAndPid) {
    int sv[2];
    SocketPair(sv);
    uid_t uid = 12345;
    pid_t pid = 0;
    ASSERT_EQ(shmx_bootstrap_peer_cred(sv[0], &uid, &pid), 0);
    EXPECT_EQ(uid, geteuid());
    EXPECT_EQ(pid, getpid());
    close(sv[0]);
    close(sv[1]);
}

TEST_F(BootstrapTest, ShouldWaitForAHostThatAppearsLater) {
    std::string path = SocketDir() + "/later.sock";
    std::atomic<int> listen_fd{-1};
    std::thread host([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        listen_fd.store(shmx_bootstrap_listen(path.c_str()));
    });
    int fd = shmx_bootstrap_connect(path.c_str(), Deadline(10 * kSecond));
    host.join();
    EXPECT_GE(fd, 0) << shmx_strerror(fd);
    EXPECT_GE(listen_fd.load(), 0);
    if (fd >= 0) {
        EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
        close(fd);
    }
    if (listen_fd.load() >= 0) close(listen_fd.load());
}

// A connect that finds its host at once needs nothing but its socket: no directory watch (closing
// an inotify descriptor waits for an SRCU grace period, milliseconds per connect, and takes a
// descriptor a process near its limit may not have).
TEST_F(BootstrapTest, ShouldConnectToALiveHostWithOnlyOneDescriptorFree) {
    std::string path = SocketDir() + "/onefree.sock";
    int listen_fd = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(listen_fd, 0) << shmx_strerror(listen_fd);
    int lowest = dup(0); // a new descriptor takes the lowest free number
    ASSERT_GE(lowest, 0);
    close(lowest);
    struct rlimit saved;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit one = saved;
    one.rlim_cur = (rlim_t)lowest + 1;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &one), 0);
    int fd = shmx_bootstrap_connect(path.c_str(), Deadline(5 * kSecond));
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    EXPECT_EQ(fd, lowest) << shmx_strerror(fd);
    if (fd >= 0) close(fd);
    close(listen_fd);
}

TEST_F(BootstrapTest, ShouldWaitForAStaleSocketToBeReplaced) {
    std::string path = SocketDir() + "/again.sock";
    int dead = shmx_bootstrap_listen(path.c_str());
    ASSERT_GE(dead, 0);
    close(dead); // stale: connect gets ECONNREFUSED and must wait, not fail
    std::atomic<int> listen_fd{-1};
    std::thread host([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        listen_fd.store(shmx_bootstrap_listen(path.c_str()));
    });
    int fd = shmx_bootstrap_connect(path.c_str(), Deadline(10 * kSecond));
    host.join();
    EXPECT_GE(fd, 0) << shmx_strerror(fd);
    if (fd >= 0) close(fd);
    if (listen_fd.load() >= 0) close(listen_fd.load());
}

TEST_F(BootstrapTest, ShouldGiveNoHostAfterTheTimeout) {
    std::string path = SocketDir() + "/nobody.sock";
    EXPECT_EQ(shmx_bootstrap_connect(path.c_str(), Deadline(100 * 1000 * 1000)), -SHMX_ENOHOST);
    EXPECT_EQ(shmx_bootstrap_connect(path.c_str(), Deadline(0)), -SHMX_ENOHOST);
}

TEST_F(BootstrapTest, ShouldCreateTheDirectoryWhenAGuestComesFirst) {
    std::string path = dir_ + "/first.sock";
    EXPECT_EQ(shmx_bootstrap_connect(path.c_str(), Deadline(0)), -SHMX_ENOHOST);
    struct stat st;
    ASSERT_EQ(lstat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

} // namespace
