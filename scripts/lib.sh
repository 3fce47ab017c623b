# Shared by the scripts: repository root, package installation, build steps.
# Sourced, not run.

SHMX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SHMX_ROOT

# Debian packages the build and the tests need.
# clang and libclang-rt-dev (libFuzzer, only recommended by clang) build the fuzz harnesses.
# spin model-checks tests-native/models (scripts/models).
SHMX_DEBIAN_PACKAGES=(cmake make gcc g++ googletest libgtest-dev zlib1g-dev maven openjdk-17-jdk-headless valgrind python3 clang libclang-rt-dev spin)

shmx_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Install whatever is missing of the build's packages and of any named as
# arguments (needs root on a fresh machine; a no-op once installed).
shmx_install_packages() {
    local missing=()
    local p
    for p in "${SHMX_DEBIAN_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    shmx_log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configure and build one CMake tree: shmx_cmake_build DIR [cmake args...]
# Output goes to DIR/build.log and is shown only when the build fails.
shmx_cmake_build() {
    local dir="$1"; shift
    mkdir -p "$dir"
    if ! { cmake -S "$SHMX_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
           cmake --build "$dir" -j "$(nproc)"; } >"$dir/build.log" 2>&1; then
        cat "$dir/build.log" >&2
        echo "build in $dir failed (log: $dir/build.log)" >&2
        return 1
    fi
}

# The jar, built if missing: prints its path.
shmx_jar() {
    local jar
    jar=$(ls "$SHMX_ROOT"/target/shmx-*.jar 2>/dev/null | grep -v -e sources -e javadoc | head -n 1)
    if [ -z "$jar" ] || [ ! -f "$SHMX_ROOT/build/lib/libshmx.so" ]; then
        (cd "$SHMX_ROOT" && mvn -q -B -DskipTests package) >&2 || return 1
        jar=$(ls "$SHMX_ROOT"/target/shmx-*.jar | grep -v -e sources -e javadoc | head -n 1)
    fi
    printf '%s\n' "$jar"
}
