// RELIABILITY.md "Permissions and naming" P1-P3 at the level of a whole host:
// paths pre-created by someone else (another user, a symlink, mode 0666), a
// process of another uid (a user made for the test) reaching or not reaching
// the bootstrap socket, allowed_uid, and the leftovers of a crashed host.
// The single-function cases are in bootstrap_test.cpp (listen, the socket
// directory), segment_test.cpp (named files) and names_test.cpp (claim, clean).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "shmx/names.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr uint32_t kShm = SHMX_TRANSPORT_SHM;
constexpr uint32_t kUds = SHMX_TRANSPORT_UDS;
constexpr const char *kOtherUser = "shmxtest2";

bool Exists(const std::string &p) {
    struct stat st;
    return lstat(p.c_str(), &st) == 0;
}

std::string BootTag() {
    char buf[16] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    ssize_t n = read(fd, buf, 8);
    close(fd);
    return n == 8 ? std::string(buf, 8) : "";
}

std::string NamedSegmentPath(const std::string &name, uid_t uid = geteuid()) {
    return "/dev/shm/shmx-" + std::to_string(uid) + "-" + BootTag() + "-" + name;
}

// A socket file at @path nobody listens on (bound, then closed). Returns 0 or -errno.
int MakeStaleSocket(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int ListenOn(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) return -1;
    return fd;
}

int RawConnect(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

// The uid and gid of the test's second user, made with useradd if missing. False with
// @why set when that cannot be done (not root, no useradd, useradd failed).
bool OtherUser(uid_t *uid, gid_t *gid, std::string *why) {
    if (geteuid() != 0) {
        *why = "needs root to create and become a second user";
        return false;
    }
    struct passwd *pw = getpwnam(kOtherUser);
    if (pw == nullptr) {
        if (access("/usr/sbin/useradd", X_OK) != 0 && access("/sbin/useradd", X_OK) != 0) {
            *why = "useradd is missing: cannot create the second user";
            return false;
        }
        std::string cmd = std::string("useradd -r -M -s /usr/sbin/nologin ") + kOtherUser + " >/dev/null 2>&1";
        int rc = system(cmd.c_str());
        pw = getpwnam(kOtherUser);
        if (pw == nullptr) {
            *why = "useradd -r " + std::string(kOtherUser) + " failed (status " + std::to_string(rc) + ")";
            return false;
        }
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return true;
}

// Become @uid/@gid for good (a forked child). False on failure.
bool BecomeUser(uid_t uid, gid_t gid) {
    return setgroups(0, nullptr) == 0 && setgid(gid) == 0 && setuid(uid) == 0 && geteuid() == uid;
}

class PermissionsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "pm-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
        char buf[108];
        ASSERT_GT(shmx_socket_dir(buf, sizeof buf, 1), 0);
        dir_ = buf;
        sock_ = dir_ + "/" + name_ + ".sock";
    }

    void TearDown() override {
        shmx_host_destroy(host_);
        for (const std::string &p : cleanup_) unlink(p.c_str());
        for (pid_t p : children_) {
            kill(p, SIGKILL);
            WaitChild(p, 5000);
        }
    }

    int CreateHost(const shmx_config_t &cfg) { return shmx_host_create(name_.c_str(), &cfg, &host_); }

    // A guest in this process completes one small message each way with the host.
    void ExpectRoundTrip(uint32_t transport) {
        std::atomic<int> rc{1};
        shmx_guest_t *g = nullptr;
        std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), transport, 5 * kSecond, &g); });
        shmx_channel_t *ch = nullptr;
        int arc = shmx_host_accept(host_, 5 * kSecond, &ch);
        t.join();
        ASSERT_EQ(arc, 0) << shmx_strerror(arc);
        ASSERT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
        ASSERT_GT(shmx_channel_send(shmx_guest_channel(g), SHMX_TYPE_DATA, 0, 0, "ping", 4, kSecond), 0);
        char buf[8];
        ASSERT_EQ(shmx_channel_receive_copy(ch, buf, sizeof buf, nullptr, kSecond), 4);
        ASSERT_GT(shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, "pong", 4, kSecond), 0);
        ASSERT_EQ(shmx_channel_receive_copy(shmx_guest_channel(g), buf, sizeof buf, nullptr, kSecond), 4);
        EXPECT_EQ(0, memcmp(buf, "pong", 4));
        shmx_guest_close(g);
        shmx_channel_free(ch);
    }

    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::string name_, dir_, sock_;
    std::vector<std::string> cleanup_;
    std::vector<pid_t> children_;
    PrivateRuntimeDir runtime_;
};

// ---------------------------------------------------------------------------
// P1: pre-created paths

TEST_F(PermissionsTest, ShouldRefuseASymlinkAtTheSocketPathAndNeverFollowIt) {
    std::string target = runtime_.path() + "/elsewhere.sock";
    ASSERT_EQ(symlink(target.c_str(), sock_.c_str()), 0);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS);
    EXPECT_EQ(host_, nullptr);
    EXPECT_FALSE(Exists(target)) << "nothing was bound at the link's target";
    struct stat st;
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link is left alone";
}

TEST_F(PermissionsTest, ShouldRefuseASocketOfAnotherUserAtTheSocketPath) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to plant a socket owned by another user";
    ASSERT_EQ(MakeStaleSocket(sock_), 0);
    ASSERT_EQ(lchown(sock_.c_str(), 12345, 12345), 0);
    ASSERT_EQ(chmod(sock_.c_str(), 0666), 0);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS);
    struct stat st;
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0) << "another user's socket is never removed";
    EXPECT_EQ(st.st_uid, 12345u);
    // The failed start left nothing of its own behind and the name can be taken once the path is free.
    EXPECT_FALSE(Exists(dir_ + "/" + name_ + ".lock"));
    unlink(sock_.c_str());
    ASSERT_EQ(CreateHost(cfg_), 0);
    ExpectRoundTrip(kShm);
}

TEST_F(PermissionsTest, ShouldRefuseARegularFileOfMode0666AtTheSocketPath) {
    int fd = open(sock_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fchmod(fd, 0666), 0);
    ASSERT_EQ(write(fd, "keep", 4), 4);
    close(fd);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS);
    struct stat st;
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_size, 4) << "the file is left alone";
}

TEST_F(PermissionsTest, ShouldRefuseALiveSocketOfMode0666AndReplaceAStaleOneByA0600One) {
    int live = ListenOn(sock_);
    ASSERT_GE(live, 0);
    ASSERT_EQ(chmod(sock_.c_str(), 0666), 0);
    EXPECT_EQ(CreateHost(cfg_), -EADDRINUSE) << "someone listens there: never taken over";
    struct stat st;
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666u) << "the other listener's socket is untouched";
    close(live);  // now stale: a socket of ours nobody listens on
    ASSERT_EQ(CreateHost(cfg_), 0);
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the replacement is private";
    ExpectRoundTrip(kShm);
}

TEST_F(PermissionsTest, ShouldRefuseASocketDirectoryThatIsASymlinkOpenToOthersOrAnotherUsers) {
    std::string real = runtime_.path() + "/real";
    ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
    ASSERT_EQ(rmdir(dir_.c_str()), 0);
    ASSERT_EQ(symlink(real.c_str(), dir_.c_str()), 0);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS) << "symlink";
    EXPECT_FALSE(Exists(real + "/" + name_ + ".sock")) << "nothing made through the link";
    EXPECT_FALSE(Exists(real + "/" + name_ + ".lock"));
    ASSERT_EQ(unlink(dir_.c_str()), 0);
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS) << "mode 0777";
    ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
    EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS) << "mode 0711";
    ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
    if (geteuid() == 0) {
        ASSERT_EQ(chown(dir_.c_str(), 12345, 12345), 0);
        EXPECT_EQ(CreateHost(cfg_), -SHMX_EPERMS) << "another user's directory";
        ASSERT_EQ(chown(dir_.c_str(), 0, 0), 0);
    }
    EXPECT_FALSE(Exists(sock_));
    ASSERT_EQ(CreateHost(cfg_), 0) << "a private directory of ours is fine";
}

TEST_F(PermissionsTest, ShouldRefuseANamedSegmentPathPreCreatedByAnotherUserAndLeaveIt) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to plant a file owned by another user";
    std::string path = NamedSegmentPath(name_);
    cleanup_.push_back(path);
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "trap", 4), 4);
    ASSERT_EQ(fchown(fd, 12345, 12345), 0);
    ASSERT_EQ(fchmod(fd, 0666), 0);
    close(fd);
    shmx_config_t cfg = cfg_;
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    cfg.transports = kShm;
    EXPECT_EQ(CreateHost(cfg), -EEXIST) << "shm only: the host refuses to start";
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0) << "never removed";
    EXPECT_EQ(st.st_uid, 12345u);
    EXPECT_EQ(st.st_size, 4) << "never written or truncated";
    EXPECT_FALSE(Exists(sock_));
}

// The same with both transports offered: the host should start without shared memory
// (hybrid fallback, as for a memfd it cannot create) and leave the file alone.
TEST_F(PermissionsTest, ShouldFallBackToTheSocketWhenTheNamedSegmentPathIsTaken) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to plant a file owned by another user";
    std::string path = NamedSegmentPath(name_);
    cleanup_.push_back(path);
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "trap", 4), 4);
    ASSERT_EQ(fchown(fd, 12345, 12345), 0);
    ASSERT_EQ(fchmod(fd, 0666), 0);
    close(fd);
    shmx_config_t cfg = cfg_;
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    cfg.transports = kShm | kUds;
    int rc = CreateHost(cfg);
    ASSERT_EQ(rc, 0) << "named mode, segment unavailable, uds offered: " << shmx_strerror(rc);
    struct stat st;
    EXPECT_EQ(shmx_host_transports(host_), kUds);
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 4);
    ExpectRoundTrip(SHMX_TRANSPORT_AUTO);
}

TEST_F(PermissionsTest, ShouldRefuseASymlinkAtTheNamedSegmentPathAndNeverFollowIt) {
    std::string path = NamedSegmentPath(name_);
    std::string target = "/dev/shm/shmx-pm-target-" + std::to_string(getpid());
    cleanup_.push_back(path);
    cleanup_.push_back(target);
    ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
    shmx_config_t cfg = cfg_;
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    cfg.transports = kShm;
    EXPECT_EQ(CreateHost(cfg), -EEXIST);
    EXPECT_FALSE(Exists(target)) << "nothing was created through the link";
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link is left alone";
}

// A 0666 file of our own at the name is a leftover nobody guards: the claim removes it
// and the host makes its own private file (a new inode, 0600), never reusing it.
TEST_F(PermissionsTest, ShouldReplaceAnUnguardedNamedSegmentOfOursByAPrivateOne) {
    std::string path = NamedSegmentPath(name_);
    cleanup_.push_back(path);
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fchmod(fd, 0666), 0);
    struct stat old;
    ASSERT_EQ(fstat(fd, &old), 0);
    shmx_config_t cfg = cfg_;
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    cfg.transports = kShm;
    ASSERT_EQ(CreateHost(cfg), 0);
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_NE(st.st_ino, old.st_ino) << "the planted file is not reused";
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_uid, geteuid());
    close(fd);
    ExpectRoundTrip(kShm);
}

// ---------------------------------------------------------------------------
// P2: another uid

// The socket directory is 0700: a process of another uid cannot even reach the socket.
TEST_F(PermissionsTest, ShouldKeepAnotherUserOutOfTheSocketDirectory) {
    uid_t uid;
    gid_t gid;
    std::string why;
    if (!OtherUser(&uid, &gid, &why)) GTEST_SKIP() << why;
    cfg_.allowed_uid = uid;  // even allowed, it cannot pass the directory
    ASSERT_EQ(CreateHost(cfg_), 0);
    const std::string sock = sock_, name = name_, runtime = runtime_.path();
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        int32_t out[2] = {INT32_MIN, INT32_MIN};
        if (BecomeUser(uid, gid)) {
            out[0] = RawConnect(sock);
            if (out[0] >= 0) close(out[0]);
            setenv("XDG_RUNTIME_DIR", runtime.c_str(), 1);  // the host's directory
            shmx_guest_t *g = nullptr;
            out[1] = shmx_guest_connect(name.c_str(), kShm, 200 * kMs, &g);
            if (g != nullptr) shmx_guest_close(g);
        }
        if (write(p[1], out, sizeof out) != (ssize_t)sizeof out) _exit(2);
        _exit(0);
    }
    close(p[1]);
    int32_t out[2] = {0, 0};
    ASSERT_EQ(read(p[0], out, sizeof out), (ssize_t)sizeof out);
    close(p[0]);
    WaitChild(pid, 10000);
    ASSERT_NE(out[0], INT32_MIN) << "the child could not become " << kOtherUser;
    EXPECT_EQ(out[0], -EACCES) << "a raw connect to the socket: " << strerror(-out[0]);
    // With the host's XDG_RUNTIME_DIR (0700, root's) the other user's library finds it
    // unusable and looks in /tmp/shmx-UID of its own: no host there.
    EXPECT_TRUE(out[1] == -SHMX_EPERMS || out[1] == -EACCES || out[1] == -SHMX_ENOHOST)
        << "shmx_guest_connect: " << shmx_strerror(out[1]);
    rmdir(("/tmp/shmx-" + std::to_string(uid)).c_str());  // made by the child if missing; kept if in use
    shmx_channel_t *ch = nullptr;
    EXPECT_EQ(shmx_host_accept(host_, 0, &ch), -ETIMEDOUT) << "nobody reached the host";
    ExpectRoundTrip(kShm);
}

// To meet the SO_PEERCRED check the other user must reach the socket: the test links
// the host's socket into a 0700 directory of that user (its own XDG_RUNTIME_DIR) and
// gives it the socket inode, so the other user connects with shmx_guest_connect.
class OtherUserGuest {
  public:
    OtherUserGuest(uid_t uid, gid_t gid, const std::string &host_sock, const std::string &name)
        : uid_(uid), gid_(gid), name_(name) {
        char tmpl[] = "/tmp/shmxouXXXXXX";
        if (mkdtemp(tmpl) == nullptr) return;
        runtime_ = tmpl;
        std::string dir = runtime_ + "/shmx";
        if (chown(tmpl, uid, gid) != 0 || chmod(tmpl, 0700) != 0 || mkdir(dir.c_str(), 0700) != 0 ||
            chown(dir.c_str(), uid, gid) != 0)
            return;
        link_ = dir + "/" + name + ".sock";
        if (link(host_sock.c_str(), link_.c_str()) != 0) return;
        if (chown(host_sock.c_str(), uid, gid) != 0) return;  // the inode, so the other user may connect
        ok_ = true;
    }
    ~OtherUserGuest() {
        if (!link_.empty()) unlink(link_.c_str());
        if (!runtime_.empty()) {
            rmdir((runtime_ + "/shmx").c_str());
            rmdir(runtime_.c_str());
        }
    }
    bool ok() const { return ok_; }

    // Run a guest as the other user: connect with @transport, send "hi", expect "ok" back.
    // Returns the connect code, or 1 when the exchange failed after a connect.
    pid_t Start(uint32_t transport, int result_fd) {
        pid_t pid = fork();
        if (pid != 0) return pid;
        int32_t rc = INT32_MIN;
        if (BecomeUser(uid_, gid_)) {
            setenv("XDG_RUNTIME_DIR", runtime_.c_str(), 1);
            shmx_guest_t *g = nullptr;
            rc = shmx_guest_connect(name_.c_str(), transport, 5 * kSecond, &g);
            if (rc == 0) {
                char buf[8];
                if (shmx_channel_send(shmx_guest_channel(g), SHMX_TYPE_DATA, 0, 0, "hi", 2, kSecond) <= 0 ||
                    shmx_channel_receive_copy(shmx_guest_channel(g), buf, sizeof buf, nullptr, 5 * kSecond) != 2 ||
                    memcmp(buf, "ok", 2) != 0)
                    rc = 1;
                shmx_guest_close(g);
            }
        }
        if (write(result_fd, &rc, sizeof rc) != (ssize_t)sizeof rc) _exit(2);
        _exit(0);
    }

  private:
    uid_t uid_;
    gid_t gid_;
    std::string name_, runtime_, link_;
    bool ok_ = false;
};

TEST_F(PermissionsTest, ShouldRefuseAnotherUserThatReachesTheSocketAfterThePeerCredCheck) {
    uid_t uid;
    gid_t gid;
    std::string why;
    if (!OtherUser(&uid, &gid, &why)) GTEST_SKIP() << why;
    ASSERT_EQ(CreateHost(cfg_), 0);  // allowed_uid: only our own uid
    OtherUserGuest other(uid, gid, sock_, name_);
    ASSERT_TRUE(other.ok()) << "could not make the socket reachable for " << kOtherUser;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = other.Start(kShm, p[1]);
    ASSERT_GT(pid, 0);
    close(p[1]);
    shmx_channel_t *ch = nullptr;
    EXPECT_EQ(shmx_host_accept(host_, 10 * kSecond, &ch), -SHMX_EPEERCRED);
    EXPECT_EQ(ch, nullptr);
    int32_t rc = 0;
    ASSERT_EQ(read(p[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    close(p[0]);
    WaitChild(pid, 10000);
    ASSERT_NE(rc, INT32_MIN) << "the child could not become " << kOtherUser;
    EXPECT_EQ(rc, -SHMX_EPEERCRED) << "the guest is told why: " << shmx_strerror(rc);
    EXPECT_EQ(shmx_host_channel_count(host_), 0u);
    ExpectRoundTrip(kShm);  // the host goes on
}

TEST_F(PermissionsTest, ShouldAdmitTheAllowedUidOverBothTransports) {
    uid_t uid;
    gid_t gid;
    std::string why;
    if (!OtherUser(&uid, &gid, &why)) GTEST_SKIP() << why;
    cfg_.allowed_uid = uid;
    ASSERT_EQ(CreateHost(cfg_), 0);
    OtherUserGuest other(uid, gid, sock_, name_);
    ASSERT_TRUE(other.ok()) << "could not make the socket reachable for " << kOtherUser;
    for (uint32_t transport : {kShm, kUds}) {
        SCOPED_TRACE(transport == kShm ? "shm" : "uds");
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = other.Start(transport, p[1]);
        ASSERT_GT(pid, 0);
        close(p[1]);
        shmx_channel_t *ch = nullptr;
        int arc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(arc, 0) << shmx_strerror(arc);
        if (ch != nullptr) {
            char buf[8];
            EXPECT_EQ(shmx_channel_receive_copy(ch, buf, sizeof buf, nullptr, 5 * kSecond), 2);
            EXPECT_GT(shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, "ok", 2, kSecond), 0);
        }
        int32_t rc = INT32_MIN;
        ASSERT_EQ(read(p[0], &rc, sizeof rc), (ssize_t)sizeof rc);
        close(p[0]);
        WaitChild(pid, 10000);
        if (ch != nullptr) shmx_channel_free(ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
    }
}

// ---------------------------------------------------------------------------
// P3: leftovers of a crashed host

TEST_F(PermissionsTest, ShouldRemoveACrashedHostsLeftoversOnTheNextStartAndNothingElse) {
    shmx_config_t cfg = cfg_;
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    std::string seg = NamedSegmentPath(name_);
    std::string other = NamedSegmentPath(name_ + "x");  // another name's leftover of ours
    cleanup_.push_back(seg);
    cleanup_.push_back(other);
    int fd = open(other.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
    int ready[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    const std::string name = name_;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) _exit(2);
        char c = 1;
        if (write(ready[1], &c, 1) != 1) _exit(3);
        for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1) << "the first host did not start";
    close(ready[0]);
    kill(pid, SIGKILL);
    WaitChild(pid, 5000);
    struct stat old_seg, old_sock;
    ASSERT_EQ(lstat(seg.c_str(), &old_seg), 0) << "a killed host leaves its segment";
    ASSERT_EQ(lstat(sock_.c_str(), &old_sock), 0) << "and its socket";
    // Held open, so that their inode numbers cannot be reused by the replacements.
    int keep_seg = open(seg.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int keep_sock = open(sock_.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    ASSERT_GE(keep_seg, 0);
    ASSERT_GE(keep_sock, 0);
    ASSERT_TRUE(Exists(dir_ + "/" + name_ + ".lock"));

    ASSERT_EQ(CreateHost(cfg), 0) << "the next start takes the name over";
    struct stat st;
    ASSERT_EQ(lstat(seg.c_str(), &st), 0);
    EXPECT_NE(st.st_ino, old_seg.st_ino) << "the stale segment was replaced";
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_NE(st.st_ino, old_sock.st_ino) << "the stale socket was replaced";
    EXPECT_TRUE(Exists(other)) << "another name's leftover is not this start's business";
    close(keep_seg);
    close(keep_sock);
    ExpectRoundTrip(kShm);
    shmx_host_destroy(host_);
    host_ = nullptr;
    EXPECT_FALSE(Exists(seg));
    EXPECT_FALSE(Exists(sock_));
}

// clean removes stale files of this user only: never another user's file that looks
// like ours, never a symlink's target.
TEST_F(PermissionsTest, ShouldCleanOnlyThisUsersStaleSegmentsAndNeverFollowALink) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to plant another user's file";
    char tmpl[] = "/tmp/shmxpmshmXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string shm = tmpl;
    std::string prefix = shm + "/shmx-" + std::to_string(geteuid()) + "-" + BootTag() + "-";
    std::string stale = prefix + "stale", foreign = prefix + "foreign", link = prefix + "link";
    std::string target = shm + "/precious";
    for (const std::string &p : {stale, foreign, target}) {
        int fd = open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0) << p;
        close(fd);
    }
    ASSERT_EQ(chown(foreign.c_str(), 12345, 12345), 0);
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
    std::vector<shmx_names_entry_t> v(16);
    int n = shmx_names_clean_in(dir_.c_str(), shm.c_str(), v.data(), (int)v.size());
    EXPECT_GE(n, 1) << shmx_strerror(n);
    EXPECT_FALSE(Exists(stale)) << "our stale segment goes";
    EXPECT_TRUE(Exists(foreign)) << "another user's file stays";
    EXPECT_TRUE(Exists(target)) << "a link's target is never touched";
    for (const std::string &p : {stale, foreign, link, target}) unlink(p.c_str());
    rmdir(shm.c_str());
}

}  // namespace
