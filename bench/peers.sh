# The peers postfach is measured against (issue "Benchmark against mbsync,
# fetchmail and getmail6"), each in its fairest durable configuration, and
# the raw limit. Sourced by scripts/bench after bench/lib.sh.
#
# A peer run: peer_<tool> PROTO PORT DIR writes its config into DIR, fetches
# every mail of USER_ADDR into a Maildir under DIR and leaves the mail on the
# server. run_peer times it with /usr/bin/time (user+sys CPU and "Maximum
# resident set size" of the peer and its children, e.g. fetchmail's MDAs)
# and checks that exactly EXPECT files arrived.
# shellcheck shell=bash

PEER_PACKAGES=(isync fetchmail getmail6 time)

# install_peers: Debian's packages of the peers, if missing (outer, as root).
install_peers() {
    local missing=() p
    for p in "${PEER_PACKAGES[@]}"; do
        [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] ||
            missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing peers: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null ||
        die "apt-get install ${missing[*]} failed"
}

# peers_for KIND: the peers to run (--peers, default all) that speak KIND;
# mbsync is IMAP only.
PEERS="mbsync mbsync-nofsync fetchmail getmail"
peers_for() {
    local p
    for p in $PEERS; do
        [[ "$1" == pop3 && "$p" == mbsync* ]] || echo "$p"
    done
}

maildir() { mkdir -p "$1"/{cur,new,tmp}; }

# mbsync (isync 1.4): IMAP -> Maildir, its default FSync yes (an fsync per
# mail and per state update); mbsync-nofsync is the same with FSync no.
# CertificateFile names the server's own certificate: isync 1.4 matches
# the host name against DNS names only, never an IP SAN, and a certificate
# listed there is trusted as is (a pin), so the host stays 127.0.0.1.
peer_mbsync() { mbsync_conf "$@" yes; }
peer_mbsync-nofsync() { mbsync_conf "$@" no; }
mbsync_conf() {
    local port="$2" dir="$3" fsync="$4"
    maildir "$dir/md"
    (
        umask 077
        cat >"$dir/mbsyncrc" <<EOF
FSync $fsync
IMAPAccount bench
Host 127.0.0.1
Port $port
User $USER_ADDR
Pass "$USER_PASS"
SSLType IMAPS
CertificateFile $POSTFACH_TEST_CERT

IMAPStore far
Account bench

MaildirStore near
Path $dir/md/
Inbox $dir/md

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
SyncState $dir/
EOF
    )
    PEER_CMD=(mbsync -q -c "$dir/mbsyncrc" bench)
}

# fetchmail 6.4: keep mode, every mail (fetchall), headers untouched
# (no rewrite), TLS verified against the test CA. Delivery through an MDA
# that writes one file per mail the maildir way with an fsync (dd
# conv=fsync) before the rename: fetchmail itself has no Maildir writer.
peer_fetchmail() {
    local proto="$1" port="$2" dir="$3"
    maildir "$dir/md"
    (
        umask 077
        cat >"$dir/fetchmailrc" <<EOF
set no syslog
set no bouncemail
poll 127.0.0.1 service $port protocol ${proto^^} auth password
  user "$USER_ADDR" password "$USER_PASS"
  ssl sslcertck sslcertfile "$POSTFACH_TEST_CA" sslcommonname localhost
  ${PEER_DELETE:+no }keep fetchall no rewrite
  mda "f=\$(mktemp -p $dir/md/tmp) && dd of=\$f conv=fsync status=none && mv \$f $dir/md/new/"
EOF
    )
    PEER_CMD=(env FETCHMAILHOME="$dir" fetchmail -f "$dir/fetchmailrc" --pidfile "$dir/pid"
        -i "$dir/ids" --nodetach --silent)
}

# getmail6: Simple{IMAP,POP3}SSLRetriever into its Maildir destination
# (which fsyncs each file before the rename), read_all, delete off. getmail
# refuses to deliver as root, so its delivery child runs as the test env's
# mail user (it forks one per mail either way).
peer_getmail() {
    local proto="$1" port="$2" dir="$3" extra="" owner
    owner="$(id -nu "$POSTFACH_TEST_MAIL_UID")"
    maildir "$dir/md"
    chown -R "$owner" "$dir/md"
    [[ "$proto" == imap ]] && extra='mailboxes = ("INBOX",)'
    (
        umask 077
        cat >"$dir/getmailrc" <<EOF
[retriever]
type = Simple${proto^^}SSLRetriever
server = 127.0.0.1
port = $port
username = $USER_ADDR
password = $USER_PASS
ca_certs = $POSTFACH_TEST_CA
$extra

[destination]
type = Maildir
path = $dir/md/
user = $owner

[options]
read_all = true
delete = ${PEER_DELETE:-false}
verbose = 0
message_log_syslog = false
EOF
    )
    PEER_CMD=(getmail --getmaildir "$dir" --rcfile "$dir/getmailrc")
}

# time_peer TOOL DIR EXPECT: runs PEER_CMD under /usr/bin/time; sets WALL,
# PEER_CPU, DOVECOT_CPU (s) and RSS_KB. Fails unless DIR's maildirs then
# hold EXPECT mails in all.
time_peer() {
    local tool="$1" dir="$2" expect="$3" v0 v1 t0 t1 got rc=0
    v0="$(dovecot_ticks)"
    t0="$EPOCHREALTIME"
    /usr/bin/time -f '%U %S %M' -o "$dir/time" "${PEER_CMD[@]}" >"$dir/log" 2>&1 || rc=$?
    t1="$EPOCHREALTIME"
    v1="$(dovecot_ticks)"
    got="$(find "$dir" -type f \( -path '*/new/*' -o -path '*/cur/*' \) | wc -l)"
    # fetchmail exits 1 for "no mail", which is not a failure here.
    if [[ "$got" != "$expect" ]] || { [[ $rc -ne 0 ]] && ! [[ $tool == fetchmail && $rc -eq 1 ]]; }; then
        die "$tool: exit $rc, $got of $expect mails; $(tail -5 "$dir/log")"
    fi
    WALL="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    read -r PEER_CPU RSS_KB < <(tail -n 1 "$dir/time" | awk '{ printf "%.2f %d\n", $1 + $2, $3 }')
    DOVECOT_CPU="$(ticks_to_s $((v1 - v0)))"
}

# run_peer TOOL PROTO PORT DIR EXPECT: one timed first fetch of USER_ADDR.
run_peer() {
    local tool="$1" proto="$2" port="$3" dir="$4" expect="$5"
    mkdir -p "$dir"
    "peer_$tool" "$proto" "$port" "$dir"
    time_peer "$tool" "$dir" "$expect"
}

# --- many accounts: one config over POLL_ADDRS/POLL_PASSES ------------------

# Which peers take part in the many-accounts round: fetchmail (one
# .fetchmailrc, servers polled one after the other, as its daemon mode
# would). mbsync -a over one channel per account (poll_conf_mbsync, --peers
# mbsync-poll) keeps every account's connection open until it ends, and
# is left out by default: its round measures holding 1,000 sessions, not a
# check for new mail.
poll_peers_for() {
    local p
    for p in $PEERS; do
        case "$p" in
        fetchmail) echo "$p" ;;
        mbsync-poll) [[ "$1" == imap ]] && echo mbsync ;;
        esac
    done
}

# poll_conf_fetchmail PROTO PORT DIR: every account in one rc file. IMAP
# without fetchall: mail fetchmail has seen carries \Seen and is not new;
# POP3 keeps the seen UIDLs in the id file (-i).
poll_conf_fetchmail() {
    local proto="$1" port="$2" dir="$3" i
    maildir "$dir/md"
    (
        umask 077
        printf 'set no syslog\nset no bouncemail\n'
        for i in "${!POLL_ADDRS[@]}"; do
            printf 'poll 127.0.0.1 service %s protocol %s auth password%s\n' \
                "$port" "${proto^^}" "$([[ $proto == pop3 ]] && echo ' uidl')"
            printf '  user "%s" password "%s"\n' "${POLL_ADDRS[$i]}" "${POLL_PASSES[$i]}"
            printf '  ssl sslcertck sslcertfile "%s" sslcommonname localhost\n' "$POSTFACH_TEST_CA"
            printf '  keep no rewrite\n'
            printf '  mda "f=$(mktemp -p %s/md/tmp) && dd of=$f conv=fsync status=none && mv $f %s/md/new/"\n' "$dir" "$dir"
        done
    ) >"$dir/fetchmailrc"
    chmod 600 "$dir/fetchmailrc"
    PEER_CMD=(env FETCHMAILHOME="$dir" fetchmail -f "$dir/fetchmailrc" --pidfile "$dir/pid"
        -i "$dir/ids" --nodetach --silent)
}

# poll_conf_mbsync PROTO PORT DIR: one account, store and channel each.
poll_conf_mbsync() {
    local port="$2" dir="$3" i
    (
        umask 077
        for i in "${!POLL_ADDRS[@]}"; do
            mkdir -p "$dir/md$i"
            printf 'IMAPAccount a%s\nHost 127.0.0.1\nPort %s\nUser %s\nPass "%s"\nSSLType IMAPS\nCertificateFile %s\n\n' \
                "$i" "$port" "${POLL_ADDRS[$i]}" "${POLL_PASSES[$i]}" "$POSTFACH_TEST_CERT"
            printf 'IMAPStore f%s\nAccount a%s\n\nMaildirStore n%s\nPath %s/md%s/\nInbox %s/md%s\n\n' \
                "$i" "$i" "$i" "$dir" "$i" "$dir" "$i"
            printf 'Channel c%s\nFar :f%s:\nNear :n%s:\nPatterns INBOX\nSync Pull\nCreate Near\nSyncState *\n\n' \
                "$i" "$i" "$i"
        done
    ) >"$dir/mbsyncrc"
    PEER_CMD=(mbsync -q -c "$dir/mbsyncrc" -a)
}

# raw_limit NAME: examples/bench_raw against the big mailbox: pipelined
# IMAP UID FETCH, pipelined POP3 RETR, and durable writing of the bytes.
raw_limit() {
    local name="$1" dir="$WORK/raw" out what wall n
    mkdir -p "$dir"
    out="$(printf '%s\n' "$USER_PASS" | "$TARGET/examples/bench_raw" --port-imap "$POSTFACH_TEST_IMAPS_PORT" \
        --port-pop3 "$POSTFACH_TEST_POP3S_PORT" --user "$USER_ADDR" --ca "$POSTFACH_TEST_CA" --dir "$dir")" ||
        die "bench_raw failed: $out"
    local net_wall="" write_wall=""
    while read -r what wall n _; do
        wall="${wall#wall_s=}" n="${n#mails=}"
        [[ "$n" == "$MAILS" ]] || die "bench_raw $what: $n of $MAILS mails"
        case "$what" in
        imap) [[ "$name" == imap-tls ]] && net_wall="$wall" ;;
        pop3) [[ "$name" == pop3-tls ]] && net_wall="$wall" ;;
        write) write_wall="$wall" ;;
        esac
    done <<<"$out"
    [[ -n "$net_wall" && -n "$write_wall" ]] || die "bench_raw printed no time for $name: $out"
    # The raw limit is fetching and then writing durably: the two walls add.
    record "$name" raw-limit "$MAILS" mails "$(awk -v a="$net_wall" -v b="$write_wall" 'BEGIN { print a + b }')" 0 0 0
    record "$name" raw-net "$MAILS" mails "$net_wall" 0 0 0
    record "$name" raw-write "$MAILS" mails "$write_wall" 0 0 0
}
