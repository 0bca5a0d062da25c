# tests/lib/postfix.sh - private, throwaway Postfix instances for end-to-end tests.
#
# Source this from a bash test script:
#
#   . "$srcdir/tests/lib/postfix.sh"
#   pf_require posttls-finger            # exits 77 (skip) if something is missing
#   d=$(mktemp -d) ; trap 'pf_stop "$d"; rm -rf "$d"' EXIT
#   pf_init "$d"
#   p1=$(pf_free_port) ; p2=$(pf_free_port)
#   pf_conf "$d" smtpd_tls_chain_files="$key,$cert"
#   pf_smtpd_service "$d" "$p1" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
#   pf_smtpd_service "$d" "$p2" -o smtpd_tls_security_level=may
#   pf_start "$d"
#   posttls-finger -c -L summary,peercert -d sha256 -w "[127.0.0.1]:$p1"   # SMTPS
#   posttls-finger -c -L summary,peercert -d sha256 -l encrypt "[127.0.0.1]:$p2"
#       (prints, on stdout: "...: subject_CN=..., issuer_CN=..., fingerprint=AA:BB:...,
#        pkey_fingerprint=CC:DD:..."; pin with -l fingerprint ... "$fp" and expect
#        "Verified TLS connection established"; exit status is 0 either way)
#   pf_wait_log "$d" "postfix/$p2/smtpd.*TLS connection established from" 10
#   pf_stop "$d"
#
# Layout of an instance DIR:
#   DIR/etc/main.cf, DIR/etc/master.cf   configuration (postfix -c DIR/etc)
#   DIR/spool                            queue_directory (daemons' cwd; chroot is off)
#   DIR/data                             data_directory (owned by mail_owner)
#   DIR/maillog                          maillog_file (written by postlogd)
#   DIR/start.log                        output of the last "postfix start"
#
# Guarantees:
#   - Never writes the machine's /etc/postfix, queue or data directories:
#     everything lives under DIR.  (postfix-script only *reads*
#     /etc/postfix/main.cf for multi_instance_directories and
#     /etc/postfix/postfix-files via meta_directory.)  No
#     alternate_config_directories entry is needed: "postfix -c DIR start",
#     sendmail -C DIR/etc and postqueue -c DIR/etc run by root do not check
#     that list (only set-gid postdrop/postqueue run by non-root users do).
#     Logging goes to DIR/maillog, except messages a program emits before it
#     has read main.cf, and fatal errors of master(8) during start-up (e.g. a
#     failed bind), which Postfix sends to syslog; pf_start pre-checks the
#     ports so that the common failure is reported on stderr instead.
#   - Listens on 127.0.0.1 only, IPv4 only; no DNS: smtp/lmtp DNS support
#     disabled, smtpd peer-name lookup off, myhostname/mydomain fixed, no
#     relaying anywhere unless a test opts in (default_transport=error).
#     Only numeric next-hops such as relayhost=[127.0.0.1]:PORT are
#     guaranteed DNS-free (a hostname next-hop goes through getaddrinfo).
#   - Mail for @smtptls-test.example is accepted and discarded; local
#     delivery is disabled.  To make the Postfix SMTP client talk to a test
#     server:  pf_conf "$d" default_transport=smtp "relayhost=[127.0.0.1]:$port"
#   - smtpd_tls_loglevel=1 and smtp_tls_loglevel=1, so "TLS connection
#     established" lines appear in DIR/maillog.
#   - Each pf_smtpd_service port logs as postfix/PORT/smtpd[pid].
#   - No sleep-based synchronisation: "postfix start" runs master -w (returns
#     once master has bound its sockets); pf_start then confirms that each
#     inet port is LISTENing and owned by this instance's master (bounded
#     poll, no connection is made so the maillog stays clean).  pf_stop waits
#     for process exit with pidfds (event-driven, bounded).
#
# Requirements: root (master(8) must start as root), postfix >= 3.4
# (postlogd/maillog_file), python3 >= 3.9 on Linux >= 5.3 (pidfd_open),
# iproute2 ss (optional; falls back to a /dev/tcp probe), coreutils timeout.
#
# All diagnostics go to stderr; nothing is written to stdout except the
# documented return values (so the TAP stream stays clean).

PF_START_TIMEOUT=${PF_START_TIMEOUT:-20}   # seconds: postfix start + ports listening
PF_STOP_TIMEOUT=${PF_STOP_TIMEOUT:-10}     # seconds: graceful stop before SIGKILL
PF_LOG_TIMEOUT=${PF_LOG_TIMEOUT:-10}       # seconds: default for pf_wait_log
PF_PYTHON=${PF_PYTHON:-python3}
PF_PORT_LOCK_DIR=${PF_PORT_LOCK_DIR:-${TMPDIR:-/tmp}/smtptls-test-ports}
PF_HOSTNAME=${PF_HOSTNAME:-smtptls-test.example}

_pf_err() { printf 'postfix.sh: %s\n' "$*" >&2; return 1; }

# _pf_dir DIR -> canonical absolute path of an existing instance dir.
_pf_dir() {
    local d
    [ -n "${1-}" ] || { _pf_err "missing instance directory argument"; return 1; }
    d=$(cd -- "$1" 2>/dev/null && pwd -P) || { _pf_err "no such directory: $1"; return 1; }
    printf '%s\n' "$d"
}

_pf_daemon_dir() { postconf -dh daemon_directory; }

# pf_require [TOOL...] - exit 77 (skip) unless a private Postfix can run here.
pf_require() {
    local t why=
    for t in postfix postconf timeout "$PF_PYTHON" "$@"; do
        command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null 2>&1 \
            || { why="missing tool: $t"; break; }
    done
    if [ -z "$why" ] && [ "$(id -u)" != 0 ]; then why="Postfix master must be started as root"; fi
    if [ -z "$why" ] && ! "$PF_PYTHON" -c 'import os,sys; os.pidfd_open; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
        why="$PF_PYTHON lacks os.pidfd_open (need Python >= 3.9)"
    fi
    if [ -n "$why" ]; then
        # under tests/lib/tap.sh a TAP skip; otherwise automake's exit 77
        if declare -F plan_skip_all >/dev/null; then plan_skip_all "$why"; fi
        printf '# SKIP: %s\n' "$why" >&2
        exit 77
    fi
    case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
    return 0
}

# pf_free_port - print a TCP port that is free on 127.0.0.1.
# Ports come from below the kernel's ephemeral range (so outgoing connections
# can never steal them) and are reserved with an atomic lock directory
# $PF_PORT_LOCK_DIR/PORT owned by this test script ($$) until the script
# exits, so parallel tests never get the same port even between
# pf_free_port and the moment a server binds it.
pf_free_port() {
    "$PF_PYTHON" - "$PF_PORT_LOCK_DIR" "$$" <<'PY'
import os, random, shutil, socket, sys, time
lockdir, owner = sys.argv[1], sys.argv[2]
try:
    os.makedirs(lockdir, exist_ok=True)
    if os.stat(lockdir).st_uid == os.geteuid():
        os.chmod(lockdir, 0o1777)
except OSError as e:
    sys.exit("postfix.sh: pf_free_port: %s: %s" % (lockdir, e))
try:
    lo, hi = map(int, open('/proc/sys/net/ipv4/ip_local_port_range').read().split())
except OSError:
    lo, hi = 32768, 60999
if lo > 21000:
    cands = list(range(20000, lo))
elif hi < 64000:
    cands = list(range(hi + 1, 65536))
else:
    cands = []          # no room outside the ephemeral range: ask the kernel

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True

def reserve(port):
    path = os.path.join(lockdir, str(port))
    try:
        os.mkdir(path)
    except FileExistsError:
        try:
            pid = int(open(os.path.join(path, 'owner')).read())
            stale = not alive(pid)
        except (OSError, ValueError):
            try:        # half-created lock: stale after a minute
                stale = time.time() - os.stat(path).st_mtime > 60
            except OSError:
                stale = False
        if not stale:
            return False
        tmp = '%s.stale.%d' % (path, os.getpid())
        try:
            os.rename(path, tmp)
        except OSError:
            return False
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.mkdir(path)
        except OSError:
            return False
    except OSError:
        return False
    tmp = os.path.join(path, 'owner.%d' % os.getpid())
    with open(tmp, 'w') as f:
        f.write(owner + '\n')
    os.rename(tmp, os.path.join(path, 'owner'))
    return True

def reap_stale():
    # Drop locks whose owning test script is gone, so the directory stays small.
    for name in os.listdir(lockdir):
        path = os.path.join(lockdir, name)
        try:
            if '.stale.' in name:
                if time.time() - os.stat(path).st_mtime > 60:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            if alive(int(open(os.path.join(path, 'owner')).read())):
                continue
            tmp = '%s.stale.%d' % (path, os.getpid())
            os.rename(path, tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        except (OSError, ValueError):
            pass

reap_stale()
for port in (random.sample(cands, min(500, len(cands))) + [0] * 20):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', port))   # no SO_REUSEADDR: skip TIME_WAIT leftovers too
        port = s.getsockname()[1]
        if reserve(port):
            print(port)
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
sys.exit("postfix.sh: pf_free_port: no free port found")
PY
}

# _pf_settle DIR - backdate a just-written main.cf.  Every Postfix program
# reads main.cf with dict_load_file(), which sleeps in 300 ms steps until the
# file's mtime is at least ~1 s in the past ("let the file settle"), so a
# fresh main.cf would cost up to 2 s in *each* postfix/master/postsuper call.
# Our writes are complete (postconf -e renames atomically), so this is safe.
_pf_settle() {
    local f=$1/etc/main.cf mt now
    mt=$(stat -c %Y "$f" 2>/dev/null) || return 0
    now=${EPOCHSECONDS:-$(date +%s)}
    if [ "$mt" -ge $(( now - 2 )) ]; then
        touch -m -d "@$(( now - 3 ))" "$f"
    fi
}

# pf_conf DIR name=value... - postconf -e on the instance's main.cf.
pf_conf() {
    local dir
    dir=$(_pf_dir "${1-}") || return 1
    shift
    postconf -c "$dir/etc" -e "$@" && _pf_settle "$dir"
}

# pf_init DIR - create a fresh instance configuration under DIR.
pf_init() {
    local dir owner
    [ -n "${1-}" ] || { _pf_err "pf_init: missing directory"; return 1; }
    mkdir -p -- "$1" || return 1
    dir=$(_pf_dir "$1") || return 1
    case $dir in
        *[[:space:]]*|*'$'*|*,*) _pf_err "pf_init: unsupported characters in path: $dir"; return 1 ;;
        /) _pf_err "pf_init: refusing /"; return 1 ;;
    esac
    [ "$dir/etc" != "$(postconf -dh config_directory)" ] || { _pf_err "pf_init: refusing the default config directory"; return 1; }
    if [ -f "$dir/etc/main.cf" ] && ! "$(_pf_daemon_dir)/master" -c "$dir/etc" -t 2>/dev/null; then
        _pf_err "pf_init: an instance is running in $dir; pf_stop it first"; return 1
    fi
    owner=$(postconf -dh mail_owner) || return 1
    mkdir -p "$dir/etc" "$dir/spool" "$dir/data" || return 1
    # The data directory must belong to mail_owner: master opens
    # data/master.lock with mail_owner's privileges.  Daemons running as
    # mail_owner open data/ files by absolute path, so every ancestor must be
    # searchable by it (mktemp -d makes 0700 directories).
    chmod 0755 "$dir" "$dir/etc" "$dir/spool" && chown root: "$dir/etc" "$dir/spool" \
        && chown "$owner:" "$dir/data" && chmod 0700 "$dir/data" || return 1
    if command -v runuser >/dev/null 2>&1 && ! runuser -u "$owner" -- test -w "$dir/data"; then
        _pf_err "pf_init: $dir/data is not reachable by user $owner (check permissions of its parents)"
        return 1
    fi
    : >"$dir/maillog"
    cat >"$dir/etc/main.cf" <<EOF
# Generated by tests/lib/postfix.sh for a throwaway test instance.
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = $PF_HOSTNAME
mydomain = $PF_HOSTNAME
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled in this test instance
default_transport = error:5.4.4 this test instance does not relay (set default_transport and relayhost)
relay_domains = $PF_HOSTNAME
transport_maps = inline:{ $PF_HOSTNAME=discard: }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP smtptls-test
smtpd_tls_loglevel = 1
smtp_tls_loglevel = 1
biff = no
append_dot_mydomain = no
readme_directory = no
EOF
    # Standard services only, no port-25 listener, chroot off everywhere
    # (a chroot would need copies of /etc files and libraries in spool/).
    cat >"$dir/etc/master.cf" <<'EOF'
# Generated by tests/lib/postfix.sh. chroot must stay "n".
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
        -o syslog_name=postfix/$service_name
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    _pf_settle "$dir"
}

# pf_smtpd_service DIR PORT [-o name=value ...] - add an smtpd on 127.0.0.1:PORT.
pf_smtpd_service() {
    local dir port kv lines
    dir=$(_pf_dir "${1-}") || return 1
    port=${2-}
    shift 2 || true
    case $port in ''|*[!0-9]*) _pf_err "pf_smtpd_service: bad port '$port'"; return 1 ;; esac
    if postconf -c "$dir/etc" -M "127.0.0.1:$port/inet" 2>/dev/null | grep -q .; then
        _pf_err "pf_smtpd_service: 127.0.0.1:$port already configured"; return 1
    fi
    lines="127.0.0.1:$port inet n - n - - smtpd"$'\n'"  -o syslog_name=postfix/$port"$'\n'
    while [ $# -gt 0 ]; do
        case $1 in
            -o) [ $# -ge 2 ] || { _pf_err "pf_smtpd_service: -o needs name=value"; return 1; }
                kv=$2; shift 2 ;;
            -o?*) kv=${1#-o}; shift ;;
            *) _pf_err "pf_smtpd_service: expected -o name=value, got '$1'"; return 1 ;;
        esac
        case $kv in
            [A-Za-z]*=*) ;;
            *) _pf_err "pf_smtpd_service: expected name=value, got '$kv'"; return 1 ;;
        esac
        case $kv in
            *[[:space:]]*) lines+="  -o { ${kv%%=*} = ${kv#*=} }"$'\n' ;;
            *) lines+="  -o $kv"$'\n' ;;
        esac
    done
    printf '%s' "$lines" >>"$dir/etc/master.cf"
}

# _pf_inet_ports DIR - ports of all inet services in master.cf.
_pf_inet_ports() {
    postconf -c "$1/etc" -M 2>/dev/null | awk '$2 == "inet" {
        n = split($1, a, ":"); p = a[n]
        if (p ~ /^[0-9]+$/) print p
        else { cmd = "getent services " p "/tcp"; cmd | getline l; close(cmd)
               split(l, b, /[ \t\/]+/); if (b[2] != "") print b[2] } }'
}

_pf_master_pid() {
    local pid
    [ -r "$1/spool/pid/master.pid" ] || return 1
    read -r pid <"$1/spool/pid/master.pid" || return 1
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    printf '%s\n' "$pid"
}

_pf_fail_report() {
    local dir=$1; shift
    {
        printf 'postfix.sh: %s\n' "$*"
        if [ -s "$dir/start.log" ]; then printf '# --- %s/start.log ---\n' "$dir"; sed 's/^/# /' "$dir/start.log"; fi
        printf '# --- tail of %s/maillog ---\n' "$dir"
        tail -n 30 "$dir/maillog" 2>/dev/null | sed 's/^/# /'
    } >&2
}

# _pf_listening PORT PID - true if 127.0.0.1:PORT is in LISTEN state, owned by PID.
_pf_listening() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | grep -q "pid=$2,"
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# pf_start DIR - start the instance, wait until every inet port listens.
pf_start() {
    local dir daemon_dir pid port ports deadline
    dir=$(_pf_dir "${1-}") || return 1
    daemon_dir=$(_pf_daemon_dir) || return 1
    [ -f "$dir/etc/main.cf" ] || { _pf_err "pf_start: $dir is not initialised (pf_init)"; return 1; }
    if ! "$daemon_dir/master" -c "$dir/etc" -t 2>/dev/null; then
        _pf_err "pf_start: instance in $dir is already running"; return 1
    fi
    _pf_settle "$dir"
    postconf -c "$dir/etc" -M >/dev/null || { _pf_err "pf_start: bad $dir/etc/master.cf"; return 1; }
    ports=$(_pf_inet_ports "$dir")
    [ -n "$ports" ] || _pf_err "pf_start: warning: no inet service in $dir/etc/master.cf" || true
    # master(8) logs a failed bind() to syslog, not to maillog_file (postlogd
    # is not up yet), so check the ports first to give a useful error.
    # shellcheck disable=SC2086  # $ports: intentional word splitting
    if [ -n "$ports" ] && ! "$PF_PYTHON" - $ports <<'PY'
import socket, sys
bad = 0
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as master does
    try:
        s.bind(('127.0.0.1', int(p)))
    except OSError as e:
        sys.stderr.write('postfix.sh: pf_start: cannot bind 127.0.0.1:%s: %s\n' % (p, e.strerror))
        bad = 1
    finally:
        s.close()
sys.exit(bad)
PY
    then
        for port in $ports; do ss -Hltnp "sport = :$port" 2>/dev/null | sed 's/^/# in use: /' >&2; done
        return 1
    fi
    deadline=$(( ${EPOCHREALTIME/./} + PF_START_TIMEOUT * 1000000 ))
    # master -w (inside "postfix start") returns only after the master has
    # initialised: all listening sockets are bound by then.
    if ! timeout "$PF_START_TIMEOUT" postfix -c "$dir/etc" start >"$dir/start.log" 2>&1; then
        _pf_fail_report "$dir" "pf_start: 'postfix -c $dir/etc start' failed (errors from master(8) itself go to syslog, not to maillog)"
        pf_stop "$dir" 2>/dev/null
        return 1
    fi
    pid=$(_pf_master_pid "$dir") || { _pf_fail_report "$dir" "pf_start: no master.pid"; pf_stop "$dir"; return 1; }
    for port in $ports; do
        until _pf_listening "$port" "$pid"; do
            if [ "${EPOCHREALTIME/./}" -ge "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
                _pf_fail_report "$dir" "pf_start: port $port not listening after ${PF_START_TIMEOUT}s"
                pf_stop "$dir" 2>/dev/null
                return 1
            fi
            sleep 0.05      # bounded port poll; normally never reached
        done
    done
}

# pf_stop DIR - stop the instance; make sure none of its processes is left.
# Idempotent, quiet when nothing runs, safe in an EXIT trap.
pf_stop() {
    local dir daemon_dir
    dir=$(cd -- "${1-}" 2>/dev/null && pwd -P) || return 0
    [ -d "$dir/spool" ] || return 0
    daemon_dir=$(_pf_daemon_dir) || return 1
    "$PF_PYTHON" - "$dir/spool" "$daemon_dir" "$PF_STOP_TIMEOUT" <<'PY'
import os, select, signal, sys, time
spool, daemon_dir, timeout = os.path.realpath(sys.argv[1]), sys.argv[2], float(sys.argv[3])

def ancestors():
    s, pid = set(), os.getpid()
    while pid > 1:
        s.add(pid)
        try:
            st = open('/proc/%d/stat' % pid).read()
            pid = int(st[st.rindex(')') + 2:].split()[1])
        except (OSError, ValueError):
            break
    return s

def rl(pid, what):
    try:
        return os.readlink('/proc/%d/%s' % (pid, what))
    except OSError:
        return ''

def in_spool(p):
    return p == spool or p.startswith(spool + '/')

master = None
try:
    pid = int(open(os.path.join(spool, 'pid', 'master.pid')).read().split()[0])
    if rl(pid, 'exe') == os.path.join(daemon_dir, 'master') and in_spool(rl(pid, 'cwd')):
        master = pid
except (OSError, ValueError, IndexError):
    pass
skip = ancestors()

def members():
    """Live (non-zombie) processes of this instance: the master's process
    group, plus any Postfix program whose cwd is inside this queue dir."""
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) in skip:
            continue
        pid = int(d)
        try:
            st = open('/proc/%d/stat' % pid).read()
        except OSError:
            continue
        f = st[st.rindex(')') + 2:].split()
        if f[0] in 'ZX':
            continue
        if (master is not None and int(f[2]) == master) or (
                in_spool(rl(pid, 'cwd')) and rl(pid, 'exe').startswith(('/usr/lib/postfix/', daemon_dir + '/', '/usr/sbin/post'))):
            out.append(pid)
    return out

def wait_gone(deadline):
    while True:
        left = members()
        if not left:
            return []
        fds = []
        for pid in left:
            try:
                fds.append(os.pidfd_open(pid))
            except OSError:
                pass
        rest = deadline - time.monotonic()
        if rest <= 0:
            for fd in fds: os.close(fd)
            return left
        if fds:
            p = select.poll()
            for fd in fds:
                p.register(fd, select.POLLIN)
            p.poll(rest * 1000)   # returns when any of them exits
            for fd in fds: os.close(fd)

def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass

deadline = time.monotonic() + timeout
if master is not None:
    signal_all([master], signal.SIGTERM)   # master then SIGTERMs its process group
    while True:                           # wait for the master itself (pidfd)
        try:
            fd = os.pidfd_open(master)
        except OSError:
            break
        p = select.poll()
        p.register(fd, select.POLLIN)
        ready = p.poll(max(0, deadline - time.monotonic()) * 1000)
        os.close(fd)
        if ready or time.monotonic() >= deadline:
            break
left = members()
if left:                                  # orphans (e.g. master was SIGKILLed)
    signal_all(left, signal.SIGTERM)
    left = wait_gone(max(deadline, time.monotonic() + 2))
if left:
    sys.stderr.write('postfix.sh: pf_stop: SIGKILL to %s\n' % left)
    signal_all(left, signal.SIGKILL)
    left = wait_gone(time.monotonic() + 5)
if left:
    sys.exit('postfix.sh: pf_stop: processes still alive: %s' % left)
PY
}

# pf_wait_log DIR ERE [TIMEOUT] - wait (inotify via tail -F, bounded) until a
# line of DIR/maillog matches ERE; print that line.  Matches lines already in
# the log too, so use something unique (a port, a queue id...).
pf_wait_log() {
    local dir re t fd tp rc
    dir=$(_pf_dir "${1-}") || return 1
    re=${2-}; t=${3:-$PF_LOG_TIMEOUT}
    exec {fd}< <(exec timeout "$t" tail -n +1 -F -- "$dir/maillog" 2>/dev/null)
    tp=$!
    rc=0
    grep -m 1 -E -- "$re" <&"$fd" || rc=$?
    kill "$tp" 2>/dev/null || true
    exec {fd}<&-
    [ $rc -eq 0 ] || _pf_err "pf_wait_log: no line matching /$re/ in $dir/maillog within ${t}s"
}
