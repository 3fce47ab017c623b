// Named resources (native/names.c): the lock that makes a name a host's,
// live and stale detection, claims that clean their own name's leftovers
// only, and a clean that never hurts a live host.
//
// Every test works in a private XDG_RUNTIME_DIR and, through the *_in
// variants, a private segment directory: the real /dev/shm holds other
// tests' and programs' segments of this user, which a clean must never see
// from here. (The default-directory calls are exercised with claim and list
// only; a default clean would judge the real /dev/shm.)
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

extern "C" {
#include "shmx/config.h"
#include "shmx/errors.h"
#include "shmx/names.h"
}

#include "test_process.h"

namespace {

std::string BootId() {
    char buf[64] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, 36);
        close(fd);
        if (n == 36) return std::string(buf, 36);
    }
    return "";
}

bool Exists(const std::string &path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

void WriteFile(const std::string &path, const std::string &text, mode_t mode) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(fchmod(fd, mode), 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), (ssize_t)text.size());
    close(fd);
}

// A socket file nobody listens on: bound, then its socket closed (the file stays).
void MakeStaleSocket(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof a.sun_path);
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0) << path;
    close(fd);
}

int ListenOn(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) return -1;
    return fd;
}

class NamesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty());
        sock_dir_ = runtime_.path() + "/shmx";
        ASSERT_EQ(mkdir(sock_dir_.c_str(), 0700), 0);
        char tmpl[] = "/tmp/shmxshmXXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        shm_dir_ = tmpl;
        boot_ = BootId();
        if (boot_.empty()) GTEST_SKIP() << "/proc/sys/kernel/random/boot_id is not readable";
    }
    void TearDown() override {
        for (pid_t p : children_) {
            kill(p, SIGKILL);
            WaitChild(p, 5000);
        }
        if (!shm_dir_.empty()) nftw(shm_dir_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
    }
    static int RemoveEntry(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }

    std::string Lock(const std::string &name) const { return sock_dir_ + "/" + name + ".lock"; }
    std::string Sock(const std::string &name) const { return sock_dir_ + "/" + name + ".sock"; }
    std::string Segment(const std::string &name, const std::string &boot = "") const {
        std::string tag = (boot.empty() ? boot_ : boot).substr(0, 8);
        return shm_dir_ + "/shmx-" + std::to_string(geteuid()) + "-" + tag + "-" + name;
    }

    int Claim(const std::string &name, shmx_names_lock_t *l, const std::string &dir = "") {
        return shmx_names_claim_in(dir.empty() ? sock_dir_.c_str() : dir.c_str(), shm_dir_.c_str(), name.c_str(), l);
    }

    std::vector<shmx_names_entry_t> List(const std::string &dir = "") {
        const char *d = dir.empty() ? sock_dir_.c_str() : dir.c_str();
        int n = shmx_names_list_in(d, shm_dir_.c_str(), nullptr, 0);
        EXPECT_GE(n, 0) << shmx_strerror(n);
        std::vector<shmx_names_entry_t> v(n > 0 ? n + 8 : 8);
        n = shmx_names_list_in(d, shm_dir_.c_str(), v.data(), (int)v.size());
        EXPECT_GE(n, 0) << shmx_strerror(n);
        v.resize(n > 0 ? n : 0);
        return v;
    }

    std::vector<shmx_names_entry_t> Clean(const std::string &dir = "") {
        std::vector<shmx_names_entry_t> v(64);
        int n = shmx_names_clean_in(dir.empty() ? sock_dir_.c_str() : dir.c_str(), shm_dir_.c_str(), v.data(), 64);
        EXPECT_GE(n, 0) << shmx_strerror(n);
        v.resize(n > 0 ? n : 0);
        return v;
    }

    static std::vector<shmx_names_entry_t> Named(const std::vector<shmx_names_entry_t> &v, const std::string &name) {
        std::vector<shmx_names_entry_t> out;
        for (const auto &e : v)
            if (name == e.name) out.push_back(e);
        return out;
    }

    // A child that claims @name, optionally creates its named segment and
    // listens on its socket, records, tells us, and waits to be killed.
    pid_t StartHolder(const std::string &name, bool named, bool listen_socket, const std::string &dir = "") {
        int p[2];
        EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            shmx_names_lock_t l;
            if (Claim(name, &l, dir) != 0) _exit(10);
            std::string seg = Segment(name);
            if (named) {
                int fd = open(seg.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0) _exit(11);
                close(fd);
            }
            std::string sock = (dir.empty() ? sock_dir_ : dir) + "/" + name + ".sock";
            if (listen_socket && ListenOn(sock) < 0) _exit(12);
            shmx_names_info_t info = {named ? (uint32_t)SHMX_SEGMENT_NAMED : (uint32_t)SHMX_SEGMENT_MEMFD,
                                      named ? seg.c_str() : nullptr, sock.c_str()};
            if (shmx_names_record(&l, &info) != 0) _exit(13);
            char c = 1;
            if (write(p[1], &c, 1) != 1) _exit(14);
            for (;;) pause();
        }
        close(p[1]);
        char c = 0;
        EXPECT_EQ(read(p[0], &c, 1), 1) << "the holder failed to start";
        close(p[0]);
        children_.push_back(pid);
        return pid;
    }

    void Kill(pid_t pid) {
        kill(pid, SIGKILL);
        WaitChild(pid, 5000);
        for (auto it = children_.begin(); it != children_.end(); ++it)
            if (*it == pid) {
                children_.erase(it);
                break;
            }
    }

    PrivateRuntimeDir runtime_;
    std::string sock_dir_, shm_dir_, boot_;
    std::vector<pid_t> children_;
};

TEST_F(NamesTest, shouldReportHostLiveWhileItHoldsTheLockAndStaleAfterSigkill) {
    pid_t pid = StartHolder("alpha", false, false);
    auto live = Named(List(), "alpha");
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0].live, 1);
    EXPECT_EQ(live[0].this_boot, 1);
    EXPECT_EQ(live[0].pid, pid);
    EXPECT_LE(llabs(live[0].start_time - (long long)time(nullptr)), 60);
    EXPECT_EQ(std::string(live[0].lock_path), Lock("alpha"));
    EXPECT_EQ(live[0].segment_mode, (uint32_t)SHMX_SEGMENT_MEMFD);

    Kill(pid);
    auto stale = Named(List(), "alpha");
    ASSERT_EQ(stale.size(), 1u);
    EXPECT_EQ(stale[0].live, 0) << "the lock dies with its holder, whatever its pid says";
    EXPECT_EQ(stale[0].pid, pid);
    EXPECT_EQ(stale[0].this_boot, 1);
}

TEST_F(NamesTest, shouldRefuseClaimOfLiveNameEvenFromTheSameProcess) {
    shmx_names_lock_t a, b;
    ASSERT_EQ(Claim("mine", &a), 0);
    EXPECT_EQ(Claim("mine", &b), -EADDRINUSE) << "an OFD lock conflicts within one process too";
    shmx_names_release(&a);
    EXPECT_FALSE(Exists(Lock("mine")));
    ASSERT_EQ(Claim("mine", &b), 0);
    shmx_names_release(&b);
    shmx_names_release(&b); // idempotent

    pid_t pid = StartHolder("theirs", false, true);
    EXPECT_EQ(Claim("theirs", &a), -EADDRINUSE);
    EXPECT_TRUE(Exists(Sock("theirs")));
    Kill(pid);
}

TEST_F(NamesTest, shouldCleanOnlyItsOwnNamesStaleLeftoversOnClaim) {
    pid_t pid = StartHolder("beta", true, true);
    Kill(pid);
    ASSERT_TRUE(Exists(Sock("beta")));
    ASSERT_TRUE(Exists(Segment("beta")));
    WriteFile(Segment("beta", "deadbeef-0000"), "old", 0600);
    // Another name's leftovers, and a segment whose name merely starts like ours.
    MakeStaleSocket(Sock("gamma"));
    WriteFile(Segment("gamma"), "x", 0600);
    WriteFile(Segment("beta2"), "x", 0600);

    shmx_names_lock_t l;
    ASSERT_EQ(Claim("beta", &l), 0);
    EXPECT_FALSE(Exists(Sock("beta")));
    EXPECT_FALSE(Exists(Segment("beta")));
    EXPECT_FALSE(Exists(Segment("beta", "deadbeef-0000")));
    EXPECT_TRUE(Exists(Sock("gamma")));
    EXPECT_TRUE(Exists(Segment("gamma")));
    EXPECT_TRUE(Exists(Segment("beta2")));
    struct stat st;
    ASSERT_EQ(stat(Lock("beta").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0) << "the dead host's record is gone until ours is written";
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    shmx_names_release(&l);
    EXPECT_FALSE(Exists(Lock("beta")));
}

TEST_F(NamesTest, shouldNeverRemoveASegmentItsHostGuardsFromAnotherSocketDirectory) {
    PrivateRuntimeDir other;
    std::string other_dir = other.path() + "/shmx";
    ASSERT_EQ(mkdir(other_dir.c_str(), 0700), 0);
    pid_t pid = StartHolder("delta", true, false, other_dir);

    // Our directory knows nothing of delta: claiming the name here must leave its segment alone.
    shmx_names_lock_t l;
    ASSERT_EQ(Claim("delta", &l), 0);
    EXPECT_TRUE(Exists(Segment("delta")));
    shmx_names_release(&l);

    auto seen = Named(List(), "delta");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].live, 1) << "a guarded segment is in use";
    EXPECT_EQ(std::string(seen[0].segment_path), Segment("delta"));
    EXPECT_TRUE(Clean().empty());
    EXPECT_TRUE(Exists(Segment("delta")));

    Kill(pid);
    auto removed = Clean();
    ASSERT_EQ(removed.size(), 1u);
    EXPECT_EQ(std::string(removed[0].segment_path), Segment("delta"));
    EXPECT_FALSE(Exists(Segment("delta")));
    EXPECT_TRUE(Exists(other_dir + "/delta.lock")) << "clean looks in its own socket directory only";
}

TEST_F(NamesTest, shouldCleanStaleEntriesAndNeverALiveHostsFiles) {
    pid_t live = StartHolder("live", true, true);
    pid_t dead = StartHolder("dead", true, true);
    Kill(dead);
    MakeStaleSocket(Sock("orphan"));                         // a socket without lock file
    WriteFile(Segment("old", "0badb007-1111"), "x", 0600);  // a segment of another boot
    WriteFile(Segment("lost"), "x", 0600);                   // a segment of this boot nobody guards
    WriteFile(Lock("ghost"),                                 // a record of another boot, no lock
              "shmx-names 1\npid 1\nboot 00000000-0000-0000-0000-000000000000\nstart 1\n"
              "segment memfd -\nsocket /nowhere\n",
              0600);

    auto before = List();
    EXPECT_EQ(Named(before, "live").size(), 1u);
    EXPECT_EQ(Named(before, "live")[0].live, 1);
    EXPECT_EQ(std::string(Named(before, "live")[0].socket_path), Sock("live"));
    EXPECT_EQ(std::string(Named(before, "live")[0].segment_path), Segment("live"));
    for (const char *n : {"dead", "orphan", "old", "lost", "ghost"}) {
        auto e = Named(before, n);
        ASSERT_EQ(e.size(), 1u) << n;
        EXPECT_EQ(e[0].live, 0) << n;
    }
    EXPECT_EQ(Named(before, "dead")[0].pid, dead);
    EXPECT_EQ(Named(before, "old")[0].this_boot, 0);
    EXPECT_EQ(Named(before, "ghost")[0].this_boot, 0);

    auto removed = Clean();
    EXPECT_EQ(removed.size(), 5u);
    auto d = Named(removed, "dead");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(std::string(d[0].lock_path), Lock("dead"));
    EXPECT_EQ(std::string(d[0].socket_path), Sock("dead"));
    EXPECT_EQ(std::string(d[0].segment_path), Segment("dead"));
    for (const std::string &p : {Lock("dead"), Sock("dead"), Segment("dead"), Sock("orphan"),
                                 Segment("old", "0badb007-1111"), Segment("lost"), Lock("ghost")})
        EXPECT_FALSE(Exists(p)) << p;
    for (const std::string &p : {Lock("live"), Sock("live"), Segment("live")}) EXPECT_TRUE(Exists(p)) << p;

    auto after = List();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_STREQ(after[0].name, "live");
    EXPECT_EQ(after[0].live, 1);
    EXPECT_EQ(after[0].pid, live);
    EXPECT_TRUE(Clean().empty()) << "nothing stale is left";
}

TEST_F(NamesTest, shouldRefuseASymlinkedLockFileAndNeverTouchItsTarget) {
    std::string target = shm_dir_ + "/precious";
    WriteFile(target, "keep", 0600);
    ASSERT_EQ(symlink(target.c_str(), Lock("sym").c_str()), 0);
    shmx_names_lock_t l;
    EXPECT_EQ(Claim("sym", &l), -SHMX_EPERMS);
    EXPECT_TRUE(Named(List(), "sym").empty());
    EXPECT_TRUE(Clean().empty());
    struct stat st;
    ASSERT_EQ(stat(target.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 4);
    EXPECT_TRUE(Exists(Lock("sym")));
}

TEST_F(NamesTest, shouldRefuseALockFileOthersCouldWrite) {
    WriteFile(Lock("wide"), "", 0666);
    shmx_names_lock_t l;
    EXPECT_EQ(Claim("wide", &l), -SHMX_EPERMS);
    MakeStaleSocket(Sock("wide"));
    auto seen = Named(List(), "wide");
    ASSERT_EQ(seen.size(), 1u) << "only the socket is shown, as a leftover without a lock";
    EXPECT_STREQ(seen[0].lock_path, "");
    EXPECT_TRUE(Clean().empty()) << "its lock cannot be taken, so nothing of that name is removed";
    EXPECT_TRUE(Exists(Sock("wide")));
}

TEST_F(NamesTest, shouldRefuseClaimWhileAnOlderHostListensWithoutALock) {
    int fd = ListenOn(Sock("legacy"));
    ASSERT_GE(fd, 0);
    shmx_names_lock_t l;
    EXPECT_EQ(Claim("legacy", &l), -EADDRINUSE);
    EXPECT_TRUE(Exists(Sock("legacy")));
    EXPECT_FALSE(Exists(Lock("legacy"))) << "a refused claim leaves no lock file behind";
    auto seen = Named(List(), "legacy");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].live, 1);
    EXPECT_TRUE(Clean().empty());
    close(fd);
}

TEST_F(NamesTest, shouldReleaseOnlyTheLockFileItHolds) {
    shmx_names_lock_t l;
    ASSERT_EQ(Claim("swap", &l), 0);
    // Someone replaced the file under the name (never a claimer: they only take an existing or new one).
    ASSERT_EQ(unlink(Lock("swap").c_str()), 0);
    WriteFile(Lock("swap"), "other", 0600);
    shmx_names_release(&l);
    EXPECT_TRUE(Exists(Lock("swap")));
}

TEST_F(NamesTest, shouldRejectBadArguments) {
    shmx_names_lock_t l = {};
    shmx_names_info_t info = {SHMX_SEGMENT_MEMFD, nullptr, "/x.sock"};
    EXPECT_EQ(Claim("bad/name", &l), -SHMX_EINVAL);
    EXPECT_EQ(Claim("", &l), -SHMX_EINVAL);
    EXPECT_EQ(shmx_names_record(&l, &info), -SHMX_EINVAL) << "not held";
    ASSERT_EQ(Claim("args", &l), 0);
    info.socket_path = "/a\nb";
    EXPECT_EQ(shmx_names_record(&l, &info), -SHMX_EINVAL);
    info = {SHMX_SEGMENT_NAMED, nullptr, "/x.sock"};
    EXPECT_EQ(shmx_names_record(&l, &info), -SHMX_EINVAL);
    shmx_names_release(&l);
    EXPECT_EQ(shmx_names_list_in(sock_dir_.c_str(), shm_dir_.c_str(), nullptr, 1), -SHMX_EINVAL);
    shmx_names_release(nullptr);
}

TEST_F(NamesTest, shouldRefuseASocketDirectoryOpenToOthers) {
    ASSERT_EQ(chmod(sock_dir_.c_str(), 0755), 0);
    shmx_names_lock_t l;
    EXPECT_EQ(Claim("open", &l), -SHMX_EPERMS);
    EXPECT_EQ(shmx_names_list_in(sock_dir_.c_str(), shm_dir_.c_str(), nullptr, 0), -SHMX_EPERMS);
}

TEST_F(NamesTest, shouldClaimAndListInTheDefaultSocketDirectory) {
    // The default directory is $XDG_RUNTIME_DIR/shmx of the private runtime; claim and list only (see top).
    shmx_names_lock_t l;
    ASSERT_EQ(shmx_names_claim("deflt", &l), 0);
    EXPECT_EQ(std::string(l.path), sock_dir_ + "/deflt.lock");
    shmx_names_info_t info = {SHMX_SEGMENT_MEMFD, nullptr, Sock("deflt").c_str()};
    std::string sock = Sock("deflt");
    info.socket_path = sock.c_str();
    ASSERT_EQ(shmx_names_record(&l, &info), 0);
    std::vector<shmx_names_entry_t> v(256);
    int n = shmx_names_list(v.data(), (int)v.size());
    ASSERT_GE(n, 1) << shmx_strerror(n);
    v.resize(n < 256 ? n : 256);
    auto e = Named(v, "deflt");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].live, 1);
    EXPECT_EQ(e[0].pid, getpid());
    shmx_names_release(&l);
}

} // namespace
